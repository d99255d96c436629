//! Checks that go beyond decoding: flag values (NVIDIA's `validateFlags`,
//! reference §1.7) and sharing entries that would replicate one device twice.

use super::ReplicatedDevices;
use super::devices::{parse_mig_index, parse_uint};
use super::error::ConfigError;
use super::flags::Flags;
use super::sharing::{ReplicatedResources, Sharing, SharingStrategy};

const DEVICE_LIST_STRATEGIES: [&str; 4] = ["envvar", "volume-mounts", "cdi-annotations", "cdi-cri"];

/// NVIDIA's `validateFlags` over merged flags (`None` = the CLI default), every
/// error listed, in NVIDIA's order. Left to the caller: the CDI-needs-NVML check
/// and IMEX ([`super::Imex::validate`]).
pub fn validate_flags(flags: &Flags, sharing: SharingStrategy) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    let mut fail = |message: String| errors.push(ConfigError::new(message));
    let plugin = flags.plugin.clone().unwrap_or_default();

    let default_list = vec!["envvar".to_string()];
    for s in plugin
        .device_list_strategy
        .as_ref()
        .unwrap_or(&default_list)
    {
        if !DEVICE_LIST_STRATEGIES.contains(&s.as_str()) {
            fail(format!(
                "invalid --device-list-strategy option: invalid strategy: {s}"
            ));
        }
    }
    let id = plugin.device_id_strategy.as_deref().unwrap_or("uuid");
    if !["uuid", "index"].contains(&id) {
        fail(format!("invalid --device-id-strategy option: {id}"));
    }
    if let Some(policy) = &plugin.shared_devices_allocation_policy
        && !["distributed", "packed"].contains(&policy.as_str())
    {
        fail(format!(
            "invalid --shared-devices-allocation-policy option: {policy}"
        ));
    }
    let mig = flags.mig_strategy.as_deref().unwrap_or("none");
    if sharing == SharingStrategy::Mps {
        if mig == "mixed" {
            fail("using --mig-strategy=mixed is not supported with MPS".to_string());
        }
        if flags.mps_root.as_deref().unwrap_or("").is_empty() {
            fail("using MPS requires --mps-root to be specified".to_string());
        }
    }
    let discovery = flags.device_discovery_strategy.as_deref().unwrap_or("auto");
    if !["auto", "nvml", "tegra"].contains(&discovery) {
        fail(format!(
            "invalid --device-discovery-strategy option {discovery}"
        ));
    }
    if !["none", "single", "mixed"].contains(&mig) {
        fail(format!("unknown MIG strategy: {mig}"));
    }
    errors
}

/// Entries for the same resource whose selections surely overlap. A count
/// against a list depends on the node and is caught when planning.
pub(super) fn sharing_overlaps(sharing: &Sharing) -> Vec<ConfigError> {
    let sections = [
        ("timeSlicing", &sharing.time_slicing),
        ("mps", &sharing.mps),
    ];
    let mut errors = Vec::new();
    for (section, rr) in sections {
        if let Some(rr) = rr {
            overlaps_in(section, rr, &mut errors);
        }
    }
    errors
}

fn overlaps_in(section: &str, rr: &ReplicatedResources, errors: &mut Vec<ConfigError>) {
    for (i, a) in rr.resources.iter().enumerate() {
        for (j, b) in rr.resources.iter().enumerate().skip(i + 1) {
            if a.name != b.name {
                continue;
            }
            if let Some(device) = common_device(&a.devices, &b.devices) {
                errors.push(ConfigError::new(format!(
                    "sharing.{section}.resources[{i}] and [{j}] both select {device} of {}; each device of a resource may be replicated by one entry only",
                    a.name
                )));
            }
        }
    }
}

/// A description of a device both selections surely contain.
fn common_device(a: &ReplicatedDevices, b: &ReplicatedDevices) -> Option<String> {
    use ReplicatedDevices::{All, Count, List};
    match (a, b) {
        (All, _) | (_, All) => Some("all devices".to_string()),
        (Count(_), Count(_)) => Some("the first device".to_string()),
        (Count(_), List(_)) | (List(_), Count(_)) => None,
        (List(x), List(y)) => x
            .iter()
            .find(|r| y.iter().any(|s| same_ref(r, s)))
            .map(|r| format!("device {r}")),
    }
}

/// Same reference, comparing indices by value (`"00"` is GPU 0).
fn same_ref(a: &str, b: &str) -> bool {
    match (parse_uint(a), parse_uint(b)) {
        (Some(x), Some(y)) => return x == y,
        (Some(_), None) | (None, Some(_)) => return false,
        (None, None) => {}
    }
    match (parse_mig_index(a), parse_mig_index(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}
