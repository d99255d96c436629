//! Who holds which device: the kubelet's PodResources answer (container →
//! device IDs of a resource) mapped onto the physical GPUs and MIG devices
//! of the served resources. A replica ID (`<uuid>::<n>`) maps to its
//! physical device, so a time-sliced GPU shared by three pods is held by all
//! three. Pure: the tables are tested in `attribution_tests.rs`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::resources::{Device, Resource};

/// One device ID held by one container, as the kubelet lists it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Assignment {
    pub resource: String,
    pub device_id: String,
    pub pod: String,
    pub namespace: String,
    pub container: String,
}

/// A container holding (part of) a device.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Holder {
    pub pod: String,
    pub namespace: String,
    pub container: String,
}

/// One `device_allocated` row: a container holding a device of a resource,
/// the device named as in the usage series (`device` label).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Allocated {
    pub resource: String,
    pub device: String,
    pub holder: Holder,
}

/// The attribution of every served physical device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attribution {
    /// Physical device UUID (GPU, or MIG device) → containers holding it.
    pub holders: BTreeMap<String, BTreeSet<Holder>>,
    /// Every (resource, device, container), once.
    pub allocated: BTreeSet<Allocated>,
}

/// The `device` label of an advertised device: its ID without the replica
/// suffix, so every replica of a GPU names the same device.
pub fn device_label(device: &Device) -> &str {
    match device.replica {
        Some(_) => device
            .id
            .rsplit_once("::")
            .map_or(&device.id, |(base, _)| base),
        None => &device.id,
    }
}

/// Maps `assignments` onto the devices of `resources`; IDs of resources we
/// do not serve, or no longer advertise, are left out.
pub fn attribute(
    resources: &BTreeMap<String, Arc<Resource>>,
    assignments: &[Assignment],
) -> Attribution {
    let by_id: HashMap<(&str, &str), &Device> = resources
        .values()
        .flat_map(|r| {
            r.devices
                .iter()
                .map(move |d| ((r.name.as_str(), d.id.as_str()), d))
        })
        .collect();
    let mut out = Attribution::default();
    for a in assignments {
        let Some(device) = by_id.get(&(a.resource.as_str(), a.device_id.as_str())) else {
            continue;
        };
        let holder = Holder {
            pod: a.pod.clone(),
            namespace: a.namespace.clone(),
            container: a.container.clone(),
        };
        out.holders
            .entry(device.uuid.clone())
            .or_default()
            .insert(holder.clone());
        out.allocated.insert(Allocated {
            resource: a.resource.clone(),
            device: device_label(device).to_string(),
            holder,
        });
    }
    out
}

#[cfg(test)]
#[path = "attribution_tests.rs"]
mod tests;
