//! The usage metrics as OpenMetrics text (gauges and one counter family,
//! appended to the registry's output before `# EOF`): our own families by
//! Prometheus conventions, and, when asked, DCGM exporter's default names,
//! types, units and labels. A value a device does not report is absent,
//! never zero. Pure: tested in `render_tests.rs`.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::Arc;

use super::attribution::{Attribution, Holder, device_label};
use crate::gpu::usage::MIB;
use crate::gpu::{Gpu, Inventory, MigDevice, Usage};
use crate::resources::Resource;

/// XIDs the health watch saw on one GPU.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XidCount {
    pub count: u64,
    /// The last XID seen (DCGM's `DCGM_FI_DEV_XID_ERRORS`).
    pub last: u64,
}

/// Everything one rendering reads.
pub struct View<'a> {
    pub inventory: &'a Inventory,
    pub resources: &'a BTreeMap<String, Arc<Resource>>,
    pub samples: &'a HashMap<String, Usage>,
    pub xids: &'a HashMap<String, XidCount>,
    pub attribution: &'a Attribution,
    pub dcgm: bool,
}

/// One served physical device and its labels.
struct Row<'a> {
    resource: &'a str,
    device: &'a str,
    uuid: &'a str,
    gpu: &'a Gpu,
    mig: Option<&'a MigDevice>,
}

impl Row<'_> {
    fn memory_total_bytes(&self) -> u64 {
        self.mig.map_or(self.gpu.memory_mib, |m| m.memory_mib) * MIB
    }

    fn labels(&self) -> String {
        let mut s = String::new();
        label(&mut s, "resource", self.resource);
        label(&mut s, "device", self.device);
        label(&mut s, "uuid", self.uuid);
        label(&mut s, "gpu", &self.gpu.index.to_string());
        label(&mut s, "model", &self.gpu.name);
        if let Some(m) = self.mig {
            label(&mut s, "gpu_instance_id", &m.gpu_instance_id.to_string());
            label(&mut s, "mig_profile", &m.profile);
        }
        s
    }

    /// DCGM exporter's fixed labels, in its order.
    fn dcgm_labels(&self, driver: Option<&str>) -> String {
        let mut s = String::new();
        label(&mut s, "gpu", &self.gpu.index.to_string());
        label(&mut s, "UUID", &self.gpu.uuid);
        label(&mut s, "pci_bus_id", &dcgm_bus_id(&self.gpu.pci_bus_id));
        label(&mut s, "device", &format!("nvidia{}", self.gpu.index));
        label(&mut s, "modelName", &self.gpu.name);
        if let Some(m) = self.mig {
            label(&mut s, "GPU_I_PROFILE", &m.profile);
            label(&mut s, "GPU_I_ID", &m.gpu_instance_id.to_string());
        }
        if let Some(v) = driver {
            label(&mut s, "DCGM_FI_DRIVER_VERSION", v);
        }
        s
    }
}

/// `0000:07:00.0` → DCGM's `00000000:07:00.0`.
fn dcgm_bus_id(sysfs: &str) -> String {
    match sysfs.split_once(':') {
        Some((domain, rest)) => format!(
            "{:0>8}:{}",
            domain.to_ascii_uppercase(),
            rest.to_ascii_uppercase()
        ),
        None => sysfs.to_string(),
    }
}

/// Appends `name="value"` (escaped) with a separating comma.
fn label(out: &mut String, name: &str, value: &str) {
    if !out.is_empty() {
        out.push(',');
    }
    out.push_str(name);
    out.push_str("=\"");
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn holder_labels(h: &Holder) -> String {
    let mut s = String::new();
    label(&mut s, "container", &h.container);
    label(&mut s, "namespace", &h.namespace);
    label(&mut s, "pod", &h.pod);
    s
}

/// One physical device per (resource, device), in plan order.
fn rows<'a>(view: &View<'a>) -> Vec<Row<'a>> {
    let mut out: Vec<Row<'a>> = Vec::new();
    for r in view.resources.values() {
        for d in &r.devices {
            if out
                .iter()
                .any(|row| row.resource == r.name && row.uuid == d.uuid)
            {
                continue;
            }
            let Some(gpu) = view.inventory.gpus.iter().find(|g| g.uuid == d.gpu_uuid) else {
                continue;
            };
            let mig = d
                .mig
                .and_then(|_| gpu.mig_devices.iter().find(|m| m.uuid == d.uuid));
            if d.mig.is_some() && mig.is_none() {
                continue;
            }
            out.push(Row {
                resource: &r.name,
                device: device_label(d),
                uuid: &d.uuid,
                gpu,
                mig,
            });
        }
    }
    out
}

struct Family<'a> {
    name: &'a str,
    kind: &'a str,
    help: &'a str,
    unit: Option<&'a str>,
    samples: Vec<(String, String)>,
}

impl Family<'_> {
    fn write(&self, out: &mut String) {
        if self.samples.is_empty() {
            return;
        }
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} {}", self.name, self.kind);
        if let Some(unit) = self.unit {
            let _ = writeln!(out, "# UNIT {} {unit}", self.name);
        }
        let suffix = if self.kind == "counter" { "_total" } else { "" };
        for (labels, value) in &self.samples {
            let _ = writeln!(out, "{}{suffix}{{{labels}}} {value}", self.name);
        }
    }
}

fn gauge<'a>(name: &'a str, help: &'a str, unit: Option<&'a str>) -> Family<'a> {
    Family {
        name,
        kind: "gauge",
        help,
        unit,
        samples: Vec::new(),
    }
}

/// A float as Prometheus text writes it.
fn num(v: f64) -> String {
    format!("{v}")
}

/// The usage families, OpenMetrics text without `# EOF`.
pub fn render(view: &View) -> String {
    let rows = rows(view);
    let mut out = String::new();
    own(view, &rows, &mut out);
    if view.dcgm {
        dcgm(view, &rows, &mut out);
    }
    out
}

fn own(view: &View, rows: &[Row], out: &mut String) {
    let p = crate::metrics::PREFIX;
    let names: Vec<String> = [
        "gpu_utilization_ratio",
        "memory_utilization_ratio",
        "memory_used_bytes",
        "memory_total_bytes",
        "temperature_celsius",
        "power_watts",
        "sm_clock_hertz",
        "device_allocated",
        "xid_errors",
    ]
    .iter()
    .map(|n| format!("{p}_{n}"))
    .collect();
    let mut util = gauge(
        &names[0],
        "Fraction of the last sample period a kernel ran on the device (NVML utilization.gpu / 100)",
        Some("ratio"),
    );
    let mut mem_util = gauge(
        &names[1],
        "Fraction of the last sample period device memory was read or written (NVML utilization.memory / 100)",
        Some("ratio"),
    );
    let mut used = gauge(
        &names[2],
        "Device memory in use (NVML memory info used)",
        Some("bytes"),
    );
    let mut total = gauge(&names[3], "Device memory size", Some("bytes"));
    let mut temp = gauge(&names[4], "GPU temperature", Some("celsius"));
    let mut power = gauge(&names[5], "Board power draw", Some("watts"));
    let mut clock = gauge(&names[6], "SM clock", Some("hertz"));
    for row in rows {
        let labels = row.labels();
        let u = view.samples.get(row.uuid);
        let push = |f: &mut Family, v: Option<f64>| {
            if let Some(v) = v {
                f.samples.push((labels.clone(), num(v)));
            }
        };
        push(
            &mut util,
            u.and_then(|u| u.gpu_util_percent)
                .map(|p| f64::from(p) / 100.0),
        );
        push(
            &mut mem_util,
            u.and_then(|u| u.memory_util_percent)
                .map(|p| f64::from(p) / 100.0),
        );
        push(
            &mut used,
            u.and_then(|u| u.memory_used_bytes).map(|b| b as f64),
        );
        push(&mut total, Some(row.memory_total_bytes() as f64));
        push(&mut temp, u.and_then(|u| u.temperature_c).map(f64::from));
        push(
            &mut power,
            u.and_then(|u| u.power_mw).map(|mw| f64::from(mw) / 1000.0),
        );
        push(
            &mut clock,
            u.and_then(|u| u.sm_clock_mhz).map(|m| f64::from(m) * 1e6),
        );
    }
    let mut allocated = gauge(
        &names[7],
        "1 for each container holding a device of a resource (kubelet PodResources)",
        None,
    );
    for a in &view.attribution.allocated {
        let mut s = String::new();
        label(&mut s, "resource", &a.resource);
        label(&mut s, "device", &a.device);
        label(&mut s, "pod", &a.holder.pod);
        label(&mut s, "namespace", &a.holder.namespace);
        label(&mut s, "container", &a.holder.container);
        allocated.samples.push((s, "1".into()));
    }
    let mut xids = Family {
        name: &names[8],
        kind: "counter",
        help: "XID errors the health watch saw per GPU",
        unit: None,
        samples: Vec::new(),
    };
    for gpu in &view.inventory.gpus {
        let mut s = String::new();
        label(&mut s, "uuid", &gpu.uuid);
        label(&mut s, "gpu", &gpu.index.to_string());
        label(&mut s, "model", &gpu.name);
        let n = view.xids.get(&gpu.uuid).map_or(0, |x| x.count);
        xids.samples.push((s, n.to_string()));
    }
    for f in [
        &util, &mem_util, &used, &total, &temp, &power, &clock, &allocated, &xids,
    ] {
        f.write(out);
    }
}

fn dcgm(view: &View, rows: &[Row], out: &mut String) {
    let driver = view.inventory.driver_version.as_deref();
    let mut fams = [
        gauge("DCGM_FI_DEV_SM_CLOCK", "SM clock frequency (in MHz).", None),
        gauge("DCGM_FI_DEV_GPU_TEMP", "GPU temperature (in C).", None),
        gauge("DCGM_FI_DEV_POWER_USAGE", "Power draw (in W).", None),
        gauge("DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %).", None),
        gauge(
            "DCGM_FI_DEV_MEM_COPY_UTIL",
            "Memory utilization (in %).",
            None,
        ),
        gauge(
            "DCGM_FI_DEV_FB_FREE",
            "Frame buffer memory free (in MiB).",
            None,
        ),
        gauge(
            "DCGM_FI_DEV_FB_USED",
            "Frame buffer memory used (in MiB).",
            None,
        ),
        gauge(
            "DCGM_FI_DEV_XID_ERRORS",
            "Value of the last XID error encountered.",
            None,
        ),
    ];
    // One series per physical device (a MIG device is its GPU instance), as
    // many times as containers hold it, each with their labels.
    let mut seen = std::collections::HashSet::new();
    for row in rows {
        if !seen.insert(row.uuid) {
            continue;
        }
        let base = row.dcgm_labels(driver);
        let holders: Vec<String> = match view.attribution.holders.get(row.uuid) {
            Some(h) if !h.is_empty() => h
                .iter()
                .map(|h| format!("{base},{}", holder_labels(h)))
                .collect(),
            _ => vec![base],
        };
        let u = view.samples.get(row.uuid);
        let values = [
            u.and_then(|u| u.sm_clock_mhz).map(f64::from),
            u.and_then(|u| u.temperature_c).map(f64::from),
            u.and_then(|u| u.power_mw).map(|mw| f64::from(mw) / 1000.0),
            u.and_then(|u| u.gpu_util_percent).map(f64::from),
            u.and_then(|u| u.memory_util_percent).map(f64::from),
            u.and_then(|u| u.memory_free_bytes)
                .map(|b| (b / MIB) as f64),
            u.and_then(|u| u.memory_used_bytes)
                .map(|b| (b / MIB) as f64),
            Some(view.xids.get(&row.gpu.uuid).map_or(0, |x| x.last) as f64),
        ];
        for (f, v) in fams.iter_mut().zip(values) {
            if let Some(v) = v {
                for labels in &holders {
                    f.samples.push((labels.clone(), num(v)));
                }
            }
        }
    }
    for f in &fams {
        f.write(out);
    }
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
