//! From the decoded file to the plan's sharing options.

use super::devices::{parse_legacy_mig_uuid, parse_mig_index, parse_uint};
use super::{Config, ReplicatedDevices, SharingStrategy};
use crate::resources::{DeviceRef, DeviceSelector, ReplicaRule, SharingKind, SharingOptions};

/// The active sharing settings (NVIDIA: MPS wins when it has replicas), or
/// `None` when nothing is shared. `failRequestsGreaterThanOne` defaults to
/// false for time-slicing and true for MPS.
pub fn sharing_options(config: &Config) -> Option<SharingOptions> {
    let kind = match config.sharing_strategy() {
        SharingStrategy::None => return None,
        SharingStrategy::TimeSlicing => SharingKind::TimeSlicing,
        SharingStrategy::Mps => SharingKind::Mps,
    };
    let active = config.replicated_resources()?;
    let rules = active
        .resources
        .iter()
        .map(|r| ReplicaRule {
            name: r.name.clone(),
            rename: r.rename.clone(),
            devices: match &r.devices {
                ReplicatedDevices::All => DeviceSelector::All,
                ReplicatedDevices::Count(n) => DeviceSelector::First(*n),
                ReplicatedDevices::List(refs) => {
                    DeviceSelector::Refs(refs.iter().map(|s| device_ref(s)).collect())
                }
            },
            replicas: r.replicas,
        })
        .collect();
    Some(SharingOptions {
        kind,
        fail_requests_greater_than_one: active
            .fail_requests_greater_than_one
            .unwrap_or(kind == SharingKind::Mps),
        rules,
    })
}

/// A `devices:` list entry as a plan reference (anything not an index is a UUID).
pub fn device_ref(s: &str) -> DeviceRef {
    if let Some(n) = parse_uint(s) {
        return DeviceRef::GpuIndex(n);
    }
    if let Some((gpu, slot)) = parse_mig_index(s) {
        return DeviceRef::MigIndex { gpu, slot };
    }
    if let Some((gpu_uuid, gi, ci)) = parse_legacy_mig_uuid(s) {
        return DeviceRef::LegacyMig {
            gpu_uuid: gpu_uuid.to_string(),
            gpu_instance_id: gi,
            compute_instance_id: ci,
        };
    }
    DeviceRef::Uuid(s.to_string())
}

impl Config {
    /// See [`sharing_options`].
    pub fn sharing_options(&self) -> Option<SharingOptions> {
        sharing_options(self)
    }
}
