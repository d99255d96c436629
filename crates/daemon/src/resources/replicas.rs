//! Time-slicing and MPS replicas: each selected device of a shared resource is
//! replaced by `replicas` copies with IDs `<id>::<n>` (NVIDIA reference §3.3),
//! published under the rule's `rename` or the original name. Unlike NVIDIA we
//! honour `rename` and `devices`, so several rules for one resource with
//! disjoint selections give per-GPU replica counts.

use std::collections::BTreeMap;

use super::wire::{self, Shape};
use super::{Device, Plan, PlanError, Resource, Sharing, SharingKind};

/// Validated sharing settings (from `sharing.timeSlicing` or `sharing.mps`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharingOptions {
    pub kind: SharingKind,
    pub fail_requests_greater_than_one: bool,
    pub rules: Vec<ReplicaRule>,
}

/// One sharing entry: replicate the selected devices of `name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaRule {
    /// Fully qualified resource name the rule applies to.
    pub name: String,
    /// Fully qualified name the replicas are published under; `None` keeps `name`.
    pub rename: Option<String>,
    pub devices: DeviceSelector,
    /// Copies per selected device (at least 2 once validated).
    pub replicas: u32,
}

/// Which devices of a resource a rule takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceSelector {
    All,
    /// The first N devices of the resource, in NVML order.
    First(u64),
    /// Devices matching any of these references.
    Refs(Vec<DeviceRef>),
}

/// A reference to a device in a `devices:` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceRef {
    /// A GPU by NVML index; selects the GPU, or every MIG device on it.
    GpuIndex(u64),
    /// A MIG device by `<gpu index>:<slot>`.
    MigIndex { gpu: u64, slot: u64 },
    /// A GPU or MIG UUID; a GPU UUID also selects every MIG device on it.
    Uuid(String),
    /// Legacy `MIG-GPU-<uuid>/<gi>/<ci>`.
    LegacyMig {
        gpu_uuid: String,
        gpu_instance_id: u64,
        compute_instance_id: u64,
    },
}

/// Why replicas cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplicaError {
    #[error("sharing using MPS is not supported for MIG devices")]
    MpsOnMig,
    #[error(
        "device {device} of {resource} is selected by more than one sharing entry; give each device to one entry only"
    )]
    Overlap { resource: String, device: String },
}

impl DeviceRef {
    pub fn matches(&self, d: &Device) -> bool {
        match self {
            DeviceRef::GpuIndex(n) => u64::from(d.gpu_index) == *n,
            DeviceRef::MigIndex { gpu, slot } => {
                d.mig.is_some() && d.index == format!("{gpu}:{slot}")
            }
            DeviceRef::Uuid(u) => d.uuid == *u || d.gpu_uuid == *u,
            DeviceRef::LegacyMig {
                gpu_uuid,
                gpu_instance_id,
                compute_instance_id,
            } => {
                d.gpu_uuid == *gpu_uuid
                    && d.mig.is_some_and(|m| {
                        u64::from(m.gpu_instance_id) == *gpu_instance_id
                            && u64::from(m.compute_instance_id) == *compute_instance_id
                    })
            }
        }
    }
}

/// Replaces the selected devices by their replicas. Resources no rule names
/// are kept as they are; rules naming resources absent here are skipped.
/// Every resulting resource must fit one ListAndWatch message; that is
/// checked from the counts before any copy is made, so an absurd `replicas`
/// costs no memory.
pub(crate) fn apply(plan: Plan, sharing: Option<&SharingOptions>) -> Result<Plan, PlanError> {
    let Some(sharing) = sharing else {
        for resource in plan.values() {
            wire::shape_of(resource).check(&resource.name)?;
        }
        return Ok(plan);
    };
    let owned = assign(plan, sharing)?;
    let shared = Sharing {
        kind: sharing.kind,
        fail_requests_greater_than_one: sharing.fail_requests_greater_than_one,
    };
    let mut out: Plan = BTreeMap::new();
    for (name, resource, owners) in owned {
        for (device, owner) in resource.devices.into_iter().zip(owners) {
            let Some(rule) = owner else {
                push(&mut out, &name, device, resource.sharing.clone());
                continue;
            };
            let target = rule.rename.as_deref().unwrap_or(&name);
            for n in 0..rule.replicas {
                let copy = Device {
                    id: format!("{}::{n}", device.id),
                    replica: Some(n),
                    ..device.clone()
                };
                push(&mut out, target, copy, Some(shared.clone()));
            }
        }
    }
    Ok(out)
}

/// A resource with, per device, the rule that replicates it.
type Owned<'a> = (String, Resource, Vec<Option<&'a ReplicaRule>>);

/// Finds each device's rule and checks, without expanding anything, that
/// replicas may be made of it and that every resulting resource fits the
/// kubelet's message limit.
fn assign(plan: Plan, sharing: &SharingOptions) -> Result<Vec<Owned<'_>>, PlanError> {
    let mut owned = Vec::with_capacity(plan.len());
    let mut shapes: BTreeMap<String, Shape> = BTreeMap::new();
    for (name, resource) in plan {
        let rules: Vec<&ReplicaRule> = sharing.rules.iter().filter(|r| r.name == name).collect();
        let owners = owners(&name, &resource.devices, &rules)?;
        for (device, owner) in resource.devices.iter().zip(&owners) {
            let (target, replicas) = match owner {
                None => (&name, None),
                Some(rule) => (rule.rename.as_ref().unwrap_or(&name), Some(rule.replicas)),
            };
            if replicas.is_some() && sharing.kind == SharingKind::Mps && device.mig.is_some() {
                return Err(ReplicaError::MpsOnMig.into());
            }
            let shape = match shapes.get_mut(target) {
                Some(shape) => shape,
                None => shapes.entry(target.clone()).or_default(),
            };
            match replicas {
                None => shape.keep(device.id.len(), device.numa_node),
                Some(r) => shape.replicate(device.id.len(), device.numa_node, r),
            }
        }
        owned.push((name, resource, owners));
    }
    for (name, shape) in &shapes {
        shape.check(name)?;
    }
    Ok(owned)
}

/// For each device, the rule that selects it; two rules on one device is an error.
fn owners<'a>(
    name: &str,
    devices: &[Device],
    rules: &[&'a ReplicaRule],
) -> Result<Vec<Option<&'a ReplicaRule>>, ReplicaError> {
    let mut owners: Vec<Option<&ReplicaRule>> = vec![None; devices.len()];
    for rule in rules {
        for (i, (slot, device)) in owners.iter_mut().zip(devices).enumerate() {
            if !selects(&rule.devices, i, device) {
                continue;
            }
            if slot.is_some() {
                return Err(ReplicaError::Overlap {
                    resource: name.to_string(),
                    device: format!("{} ({})", device.index, device.uuid),
                });
            }
            *slot = Some(*rule);
        }
        if let DeviceSelector::Refs(refs) = &rule.devices {
            for r in refs
                .iter()
                .filter(|r| !devices.iter().any(|d| r.matches(d)))
            {
                tracing::warn!(resource = name, reference = ?r, "sharing devices entry matches no device of this resource");
            }
        }
    }
    Ok(owners)
}

fn selects(selector: &DeviceSelector, position: usize, device: &Device) -> bool {
    match selector {
        DeviceSelector::All => true,
        DeviceSelector::First(n) => u64::try_from(position).is_ok_and(|p| p < *n),
        DeviceSelector::Refs(refs) => refs.iter().any(|r| r.matches(device)),
    }
}

fn push(plan: &mut Plan, name: &str, device: Device, sharing: Option<Sharing>) {
    let resource = plan.entry(name.to_string()).or_insert_with(|| Resource {
        name: name.to_string(),
        devices: Vec::new(),
        sharing: None,
    });
    if resource.sharing.is_none() {
        resource.sharing = sharing;
    }
    resource.devices.push(device);
}

#[cfg(test)]
#[path = "replicas_tests.rs"]
mod tests;
