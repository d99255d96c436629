//! `gpu-device-plugin check-config FILE`: validates a config file against a
//! node (simulated, or the built-in one) and lists the resources it would
//! advertise, or every error.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use std::path::Path;

use crate::config::{MAX_CONFIG_FILE_BYTES, Overrides, Settings, read_bounded, v1};
use crate::daemon::prepare;
use crate::gpu::Inventory;
use crate::resources::Resource;

/// One resource the config would advertise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceLine {
    pub name: String,
    pub devices: usize,
    /// `-` when not shared, `N` when every device has N replicas, else per device.
    pub replicas: String,
}

/// The outcome of a check.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckReport {
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
    pub resources: Vec<ResourceLine>,
    /// With a CDI strategy: where the spec goes and what it is named by.
    pub cdi: Option<String>,
}

impl CheckReport {
    pub fn valid(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Checks the config file at `path`: read with the
/// [`MAX_CONFIG_FILE_BYTES`] cap (a read error is the report's one error),
/// then as [`check_config`].
pub fn check_config_file(path: &Path, overrides: &Overrides, inventory: &Inventory) -> CheckReport {
    match read_bounded(path, MAX_CONFIG_FILE_BYTES) {
        Ok(text) => check_config(&text, overrides, inventory),
        Err(e) => CheckReport {
            errors: vec![e.to_string()],
            ..CheckReport::default()
        },
    }
}

/// Checks `text` (the file's content) merged with `overrides` on `inventory`.
pub fn check_config(text: &str, overrides: &Overrides, inventory: &Inventory) -> CheckReport {
    let check = v1::check(text);
    let mut report = CheckReport {
        errors: check.errors.iter().map(ToString::to_string).collect(),
        warnings: check.ignored_keys.iter().map(ToString::to_string).collect(),
        resources: Vec::new(),
        cdi: None,
    };
    let Some(config) = check.config else {
        return report;
    };
    let settings = match Settings::resolve(overrides, &config) {
        Ok(s) => s,
        Err(e) => {
            report.errors.extend(
                e.0.into_iter()
                    .map(|m| format!("unable to validate flags: {m}")),
            );
            return report;
        }
    };
    if !report.errors.is_empty() {
        return report;
    }
    if settings.uses_cdi() {
        report.cdi = Some(cdi_line(&settings));
        report.errors.extend(cdi_name_errors(inventory, &settings));
    }
    match prepare(inventory, &settings, &config, &[], &|_| true) {
        Ok(prepared) => {
            report.resources = prepared
                .resources
                .values()
                .map(|p| ResourceLine {
                    name: p.resource.name.clone(),
                    devices: p.resource.devices.len(),
                    replicas: replicas(&p.resource),
                })
                .collect();
        }
        Err(e) => report.errors.push(e.to_string()),
    }
    report
}

/// Where the CDI spec is written and what names it.
fn cdi_line(settings: &Settings) -> String {
    let path = settings
        .cdi
        .root
        .join(crate::cdi::spec_file_name(crate::cdi::CLASS));
    format!(
        "CDI: devices are passed as {}=<{}> from {} (hooks: {})",
        crate::cdi::KIND,
        match settings.device_id_strategy {
            crate::allocate::response::DeviceIdStrategy::Uuid => "uuid",
            crate::allocate::response::DeviceIdStrategy::Index => "index",
        },
        path.display(),
        settings.cdi.hook_path
    )
}

/// Device names the CDI spec could not hold (legacy MIG UUIDs with `/`).
fn cdi_name_errors(inventory: &Inventory, settings: &Settings) -> Vec<String> {
    let id = settings.device_id_strategy;
    let mut names = Vec::new();
    for gpu in &inventory.gpus {
        names.push(crate::cdi::device_name(
            id,
            &gpu.uuid,
            &gpu.index.to_string(),
        ));
        for (slot, mig) in gpu.mig_devices.iter().enumerate() {
            let index = format!("{}:{slot}", gpu.index);
            names.push(crate::cdi::device_name(id, &mig.uuid, &index));
        }
    }
    names
        .iter()
        .filter_map(|n| crate::cdi::check_name(n).err())
        .map(|e| e.to_string())
        .collect()
}

/// Replicas per physical device (GPU index, or `gpu:slot` for MIG).
fn replicas(resource: &Resource) -> String {
    if resource.sharing.is_none() {
        return "-".into();
    }
    let mut per: BTreeMap<&str, usize> = BTreeMap::new();
    for d in &resource.devices {
        *per.entry(d.index.as_str()).or_default() += 1;
    }
    let mut counts = per.values();
    let first = counts.next().copied().unwrap_or(0);
    if counts.all(|c| *c == first) {
        return first.to_string();
    }
    per.iter()
        .map(|(index, n)| format!("{index}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The report as text.
pub fn render(origin: &str, node: &str, report: &CheckReport) -> String {
    let mut out = String::new();
    for w in &report.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    if !report.valid() {
        let _ = writeln!(out, "{origin}: invalid ({} error(s))", report.errors.len());
        for e in &report.errors {
            let _ = writeln!(out, "error: {e}");
        }
        return out;
    }
    let _ = writeln!(out, "{origin}: valid; on {node} it advertises:");
    let _ = writeln!(
        out,
        "{:<32} {:>7}  REPLICAS PER DEVICE",
        "RESOURCE", "DEVICES"
    );
    for r in &report.resources {
        let _ = writeln!(out, "{:<32} {:>7}  {}", r.name, r.devices, r.replicas);
    }
    if report.resources.is_empty() {
        let _ = writeln!(out, "(nothing)");
    }
    if let Some(cdi) = &report.cdi {
        let _ = writeln!(out, "{cdi}");
    }
    out
}

#[cfg(test)]
#[path = "check_config_tests.rs"]
mod tests;
