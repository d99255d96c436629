//! GPU Feature Discovery's node labels as a pure function of the inventory
//! and the sharing config (reference §A, GFD v0.20.0): same keys, value
//! formats and per-MIG-strategy rules.
//!
//! Where GFD is random this is deterministic: on a node with more than one
//! GPU model, the `nvidia.com/gpu.*` keys describe the model with the most
//! GPUs, ties going to the model of the lowest NVML index; a MIG profile's
//! `product` names the parent model of the lowest-index GPU carrying it.
//!
//! `cuda.runtime*` come from the CUDA driver-API version NVML reports
//! (absent when it cannot be read, e.g. no libcuda). Labels that need data
//! the inventory does not carry are not produced: `gpu.clique` (fabric
//! info), `vgpu.*` (PCI capability scan), and the MIG attributes
//! `multiprocessors` and `engines.*`. `slices.gi` / `slices.ci` come from
//! the profile name. `mig.capable` is true when a GPU has MIG enabled.

use std::collections::BTreeMap;

use crate::config::v1::{Sharing, SharingStrategy};
use crate::gpu::{FaultKind, Gpu, Inventory, MigDevice, is_display_device};
use crate::resources::MigStrategy;

/// The label map (key → value), sorted by key.
pub type Labels = BTreeMap<String, String>;

const P: &str = "nvidia.com/";

/// Everything the labels are computed from.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LabelInput {
    pub inventory: Inventory,
    pub mig_strategy: MigStrategy,
    pub sharing: Sharing,
    /// Contents of the machine-type file (`/sys/class/dmi/id/product_name`),
    /// `None` when unreadable.
    pub machine: Option<String>,
    /// The sysfs PCI class of each GPU by bus id (`0x030200`); missing = unknown.
    pub pci_classes: BTreeMap<String, String>,
    /// `nvidia.com/gfd.timestamp`; `None` = no timestamp label.
    pub timestamp: Option<u64>,
}

/// GFD's `sanitise`: drop characters outside `[A-Za-z0-9-_. ]`, then join
/// the whitespace-separated pieces with `-`.
pub fn sanitise(input: &str) -> String {
    let kept: String = input
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ' '))
        .collect();
    kept.split_whitespace().collect::<Vec<_>>().join("-")
}

/// GFD's `getArchFamily`.
pub fn arch_family(major: u32, minor: u32) -> &'static str {
    match (major, minor) {
        (1, _) => "tesla",
        (2, _) => "fermi",
        (3, _) => "kepler",
        (5, _) => "maxwell",
        (6, _) => "pascal",
        (7, 0..=4) => "volta",
        (7, _) => "turing",
        (8, 0..=8) => "ampere",
        (8, 9) => "ada-lovelace",
        (9, _) => "hopper",
        (10 | 12, _) => "blackwell",
        (13, _) => "rubin",
        _ => "undefined",
    }
}

/// The product name: sanitised parts, empty ones dropped, joined with `-`.
fn product(parts: &[&str], shared: bool) -> String {
    let mut parts: Vec<String> = parts
        .iter()
        .map(|p| sanitise(p))
        .filter(|p| !p.is_empty())
        .collect();
    if shared {
        parts.push("SHARED".into());
    }
    parts.join("-")
}

/// A MIG profile as GFD's resource and label names spell it (`+` → `.`).
fn profile_name(profile: &str) -> String {
    profile.replace('+', ".")
}

/// `(slices.gi, slices.ci)` from a profile name: `<G>g...` or `<C>c.<G>g...`.
fn slices(profile: &str) -> Option<(u32, u32)> {
    let mut parts = profile.split('.');
    let first = parts.next()?;
    if let Some(c) = first.strip_suffix('c') {
        let g = parts.next()?.strip_suffix('g')?;
        return Some((g.parse().ok()?, c.parse().ok()?));
    }
    let g: u32 = first.strip_suffix('g')?.parse().ok()?;
    Some((g, g))
}

/// Replicas and sharing of one resource name, by GFD's rules.
struct Share {
    replicas: u32,
    strategy: &'static str,
    /// Append `-SHARED` to the product.
    suffix: bool,
}

fn share(sharing: &Sharing, resource: &str) -> Share {
    let active = sharing.replicated_resources();
    let replicas = active
        .and_then(|a| a.resources.iter().find(|r| r.name == resource))
        .map(|r| r.replicas)
        .filter(|r| *r > 0)
        .unwrap_or(1);
    let shared = replicas > 1;
    Share {
        replicas,
        strategy: if shared {
            sharing.strategy().as_str()
        } else {
            "none"
        },
        suffix: shared && !active.is_some_and(|a| a.rename_by_default),
    }
}

fn put(labels: &mut Labels, key: &str, value: impl ToString) {
    labels.insert(format!("{P}{key}"), value.to_string());
}

/// GFD's labels for this node.
pub fn gfd_labels(input: &LabelInput) -> Labels {
    let mut labels = Labels::new();
    if let Some(ts) = input.timestamp {
        put(&mut labels, "gfd.timestamp", ts);
    }
    // A lost GPU (kept in the daemon's inventory by its last description)
    // is gone for the labels, as for NVML.
    let lost: Vec<u32> = input
        .inventory
        .faults
        .iter()
        .filter(|f| f.kind == FaultKind::Lost)
        .map(|f| f.index)
        .collect();
    let gpus: Vec<&Gpu> = input
        .inventory
        .gpus
        .iter()
        .filter(|g| !is_display_device(&g.name) && !lost.contains(&g.index))
        .collect();
    if gpus.is_empty() {
        return labels;
    }
    let machine = input.machine.as_deref().map(|m| sanitise(m.trim()));
    put(
        &mut labels,
        "gpu.machine",
        machine
            .filter(|m| !m.is_empty())
            .as_deref()
            .unwrap_or("unknown"),
    );
    driver_labels(&mut labels, input.inventory.driver_version.as_deref());
    cuda_labels(&mut labels, input.inventory.cuda_driver_version);
    put(
        &mut labels,
        "mig.capable",
        gpus.iter().any(|g| g.mig_enabled),
    );
    put(
        &mut labels,
        "mps.capable",
        input.sharing.strategy() == SharingStrategy::Mps,
    );
    full_gpu_labels(&mut labels, &gpus, &input.sharing);
    put(&mut labels, "gpu.mode", gpu_mode(&gpus, &input.pci_classes));
    match input.mig_strategy {
        MigStrategy::None => {}
        MigStrategy::Single => single_labels(&mut labels, &gpus, &input.sharing),
        MigStrategy::Mixed => mixed_labels(&mut labels, &gpus, &input.sharing),
    }
    labels
}

fn driver_labels(labels: &mut Labels, version: Option<&str>) {
    let Some(version) = version else { return };
    let parts: Vec<&str> = version.split('.').collect();
    let numeric = parts
        .iter()
        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if !numeric || !(2..=3).contains(&parts.len()) {
        // GFD aborts labeling here; the rest of the labels are still useful.
        return;
    }
    let rev = parts.get(2).copied().unwrap_or("");
    for (legacy, key, value) in [
        ("cuda.driver.major", "cuda.driver-version.major", parts[0]),
        ("cuda.driver.minor", "cuda.driver-version.minor", parts[1]),
        ("cuda.driver.rev", "cuda.driver-version.revision", rev),
    ] {
        put(labels, legacy, value);
        put(labels, key, value);
    }
    put(labels, "cuda.driver-version.full", version);
}

/// `cuda.runtime*`: the CUDA driver-API version as GFD reads it from NVML,
/// major = v / 1000, minor = (v % 1000) / 10.
fn cuda_labels(labels: &mut Labels, version: Option<u32>) {
    let Some(v) = version else { return };
    let (major, minor) = (v / 1000, (v % 1000) / 10);
    put(labels, "cuda.runtime.major", major);
    put(labels, "cuda.runtime.minor", minor);
    put(labels, "cuda.runtime-version.major", major);
    put(labels, "cuda.runtime-version.minor", minor);
    put(
        labels,
        "cuda.runtime-version.full",
        format!("{major}.{minor}"),
    );
}

fn gpu_mode(gpus: &[&Gpu], classes: &BTreeMap<String, String>) -> &'static str {
    let all = |class: &str| {
        gpus.iter()
            .all(|g| classes.get(&g.pci_bus_id).map(String::as_str) == Some(class))
    };
    if all("0x030000") {
        "graphics"
    } else if all("0x030200") {
        "compute"
    } else {
        "unknown"
    }
}

/// The model the `nvidia.com/gpu.*` keys describe (module doc).
fn primary_model<'a>(gpus: &[&'a Gpu]) -> &'a str {
    let mut best: Option<(&str, usize)> = None;
    for g in gpus {
        let n = gpus.iter().filter(|o| o.name == g.name).count();
        if best.is_none_or(|(_, m)| n > m) {
            best = Some((&g.name, n));
        }
    }
    best.map_or("", |(name, _)| name)
}

fn full_gpu_labels(labels: &mut Labels, gpus: &[&Gpu], sharing: &Sharing) {
    let model = primary_model(gpus);
    let same: Vec<&&Gpu> = gpus.iter().filter(|g| g.name == model).collect();
    let Some(first) = same.first() else { return };
    // MIG-enabled GPUs are labeled without sharing; MIG-disabled ones of the
    // same model override them.
    let whole = same.iter().any(|g| !g.mig_enabled);
    let s = if whole {
        share(sharing, "nvidia.com/gpu")
    } else {
        Share {
            replicas: 0,
            strategy: "none",
            suffix: false,
        }
    };
    put(labels, "gpu.count", same.len());
    put(labels, "gpu.replicas", s.replicas);
    put(labels, "gpu.sharing-strategy", s.strategy);
    put(labels, "gpu.product", product(&[model], s.suffix));
    if first.memory_mib > 0 {
        put(labels, "gpu.memory", first.memory_mib);
    }
    let cc = first.compute_capability.as_deref().and_then(|cc| {
        let (major, minor) = cc.split_once('.')?;
        Some((major.parse::<u32>().ok()?, minor.parse::<u32>().ok()?))
    });
    if let Some((major, minor)) = cc.filter(|(major, _)| *major != 0) {
        put(labels, "gpu.family", arch_family(major, minor));
        put(labels, "gpu.compute.major", major);
        put(labels, "gpu.compute.minor", minor);
    }
}

/// One MIG profile's label set under `prefix` (`gpu` or `mig-<profile>`).
fn mig_set(
    labels: &mut Labels,
    prefix: &str,
    resource: &str,
    parent: &str,
    devices: &[&MigDevice],
    sharing: &Sharing,
) {
    let Some(first) = devices.first() else { return };
    let profile = profile_name(&first.profile);
    let s = share(sharing, resource);
    put(labels, &format!("{prefix}.count"), devices.len());
    put(labels, &format!("{prefix}.replicas"), s.replicas);
    put(labels, &format!("{prefix}.sharing-strategy"), s.strategy);
    put(
        labels,
        &format!("{prefix}.product"),
        product(&[parent, "MIG", &profile], s.suffix),
    );
    put(labels, &format!("{prefix}.memory"), first.memory_mib);
    if let Some((gi, ci)) = slices(&first.profile) {
        put(labels, &format!("{prefix}.slices.gi"), gi);
        put(labels, &format!("{prefix}.slices.ci"), ci);
    }
}

fn single_labels(labels: &mut Labels, gpus: &[&Gpu], sharing: &Sharing) {
    put(labels, "mig.strategy", "single");
    let mig: Vec<&&Gpu> = gpus.iter().filter(|g| g.mig_enabled).collect();
    let Some(first) = mig.first() else { return };
    let devices: Vec<&MigDevice> = mig.iter().flat_map(|g| &g.mig_devices).collect();
    let mut profiles: Vec<&str> = devices.iter().map(|d| d.profile.as_str()).collect();
    profiles.sort_unstable();
    profiles.dedup();
    let invalid = mig.iter().any(|g| g.mig_devices.is_empty())
        || mig.len() != gpus.len()
        || profiles.len() > 1;
    if invalid {
        put(
            labels,
            "gpu.product",
            format!("{}-MIG-INVALID", sanitise(&first.name)),
        );
        put(labels, "gpu.count", 0);
        put(labels, "gpu.replicas", 0);
        put(labels, "gpu.sharing-strategy", "");
        put(labels, "gpu.memory", 0);
        return;
    }
    mig_set(
        labels,
        "gpu",
        "nvidia.com/gpu",
        &first.name,
        &devices,
        sharing,
    );
}

fn mixed_labels(labels: &mut Labels, gpus: &[&Gpu], sharing: &Sharing) {
    put(labels, "mig.strategy", "mixed");
    // Profile → (parent model of the first GPU carrying it, its devices).
    let mut profiles: BTreeMap<String, (&str, Vec<&MigDevice>)> = BTreeMap::new();
    for g in gpus.iter().filter(|g| g.mig_enabled) {
        for d in &g.mig_devices {
            profiles
                .entry(profile_name(&d.profile))
                .or_insert_with(|| (&g.name, Vec::new()))
                .1
                .push(d);
        }
    }
    for (profile, (parent, devices)) in &profiles {
        let prefix = format!("mig-{profile}");
        let resource = format!("nvidia.com/mig-{profile}");
        mig_set(labels, &prefix, &resource, parent, devices, sharing);
    }
}

#[cfg(test)]
#[path = "labels_tests.rs"]
mod tests;
