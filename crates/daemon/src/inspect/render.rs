//! Rendering an `Inspection` as a terminal table or as JSON (pure).

use std::fmt::Write as _;

use super::{AllocateView, Inspection, PodView, PodsReport, SocketReport};

/// Pretty JSON, one document.
pub fn render_json(inspection: &Inspection) -> String {
    // Plain data of strings, bools and numbers: serialization cannot fail.
    serde_json::to_string_pretty(inspection).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// One line about the plugin's own endpoint, then its `/readyz` reasons.
fn plugin_line(out: &mut String, p: &super::plugin_status::PluginStatus) {
    if let Some(e) = &p.error {
        let _ = writeln!(out, "plugin at {}: {e}\n", p.address);
        return;
    }
    let config = p.config_selected.as_deref().unwrap_or("(not per-node)");
    let ready = if p.ready { "ready" } else { "NOT ready" };
    let _ = writeln!(out, "plugin at {}: config {config}, {ready}", p.address);
    for owner in ["dra", "device-plugin"] {
        let gpus: Vec<&str> = p
            .gpu_owners
            .iter()
            .filter(|(_, o)| o.as_str() == owner)
            .map(|(u, _)| u.as_str())
            .collect();
        if !gpus.is_empty() {
            let _ = writeln!(out, "  GPUs served by {owner}: {}", gpus.join(", "));
        }
    }
    for reason in &p.reasons {
        let _ = writeln!(out, "  {reason}");
    }
    out.push('\n');
}

/// A table per socket.
pub fn render_table(inspection: &Inspection) -> String {
    let mut out = String::new();
    if let Some(p) = &inspection.plugin {
        plugin_line(&mut out, p);
    }
    if inspection.sockets.is_empty() {
        let _ = writeln!(out, "no device-plugin sockets in {}", inspection.directory);
    }
    let with_pods = inspection.pods.is_some();
    for (i, s) in inspection.sockets.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        socket_table(&mut out, s, with_pods);
    }
    if let Some(p) = &inspection.pods {
        pods_footer(&mut out, p);
    }
    if !inspection.unknown_ids.is_empty() {
        let _ = writeln!(
            out,
            "\nno socket advertises: {}",
            inspection.unknown_ids.join(", ")
        );
    }
    out
}

fn socket_table(out: &mut String, s: &SocketReport, with_pods: bool) {
    let _ = write!(out, "SOCKET {}", s.socket);
    if let Some(o) = &s.options {
        let healthy = s.devices.iter().filter(|d| d.health == "Healthy").count();
        let _ = write!(
            out,
            "  devices={} healthy={} preStartRequired={} getPreferredAllocationAvailable={}",
            s.devices.len(),
            healthy,
            o.pre_start_required,
            o.get_preferred_allocation_available
        );
    }
    out.push('\n');
    if let Some(e) = &s.error {
        let _ = writeln!(out, "  error: {e}");
    }
    if !s.devices.is_empty() {
        let width = s
            .devices
            .iter()
            .map(|d| d.id.len())
            .max()
            .unwrap_or(2)
            .max(2);
        let pods_head = if with_pods { "  PODS" } else { "" };
        let _ = writeln!(
            out,
            "  {:<width$}  {:<9}  {:<4}{pods_head}",
            "ID", "HEALTH", "NUMA"
        );
        for d in &s.devices {
            let numa = if d.numa.is_empty() {
                "-".to_string()
            } else {
                d.numa
                    .iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            };
            if with_pods {
                let pods = if d.pods.is_empty() {
                    "-".to_string()
                } else {
                    d.pods
                        .iter()
                        .map(PodView::path)
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let _ = writeln!(
                    out,
                    "  {:<width$}  {:<9}  {numa:<4}  {pods}",
                    d.id, d.health
                );
            } else {
                let _ = writeln!(out, "  {:<width$}  {:<9}  {numa}", d.id, d.health);
            }
        }
    }
    if let Some(a) = &s.allocate {
        allocate_table(out, a);
    }
}

fn allocate_table(out: &mut String, a: &AllocateView) {
    let _ = writeln!(out, "  Allocate {} →", a.ids.join(","));
    if let Some(e) = &a.error {
        let _ = writeln!(out, "    error: {e}");
        return;
    }
    for (k, v) in &a.envs {
        let _ = writeln!(out, "    env        {k}={v}");
    }
    for m in &a.mounts {
        let ro = if m.read_only { " (ro)" } else { "" };
        let _ = writeln!(
            out,
            "    mount      {} -> {}{ro}",
            m.host_path, m.container_path
        );
    }
    for d in &a.device_specs {
        let _ = writeln!(
            out,
            "    device     {} -> {} ({})",
            d.host_path, d.container_path, d.permissions
        );
    }
    for (k, v) in &a.annotations {
        let _ = writeln!(out, "    annotation {k}={v}");
    }
    for c in &a.cdi_devices {
        let _ = writeln!(out, "    cdi        {c}");
    }
}

fn pods_footer(out: &mut String, p: &PodsReport) {
    if let Some(e) = &p.error {
        let _ = writeln!(out, "\npod resources: {e}");
    }
    for u in &p.unmatched {
        let _ = writeln!(
            out,
            "\nheld but not advertised: {} {} by {}",
            u.resource,
            u.id,
            u.holder.path()
        );
    }
}
