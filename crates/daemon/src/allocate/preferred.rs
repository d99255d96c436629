//! GetPreferredAllocation policy (pure, no I/O): a [`Preferrer`] is built once
//! per resource when the plan changes, then answers the kubelet's questions on
//! its hot path (which has no timeout) with a few small vectors per call.
//!
//! - Whole GPUs: the set with the best pair affinity, scored as NVIDIA's
//!   go-gpuallocator does (NVLink, same or cross NUMA node), on as few NUMA nodes
//!   as possible ([`whole`]).
//! - Replicas and MIG devices: NVIDIA's greedy `distributed` / `packed`
//!   policies over physical GPUs, kept on one NUMA node where possible ([`shared`]).

mod shared;
mod whole;

use std::sync::Arc;

use crate::gpu::Inventory;
use crate::resources::{DeviceIndex, Resource, device_index};

/// How replicas and MIG devices are spread (`sharedDevicesAllocationPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SharedPolicy {
    /// Prefer the physical GPUs with the fewest replicas handed out.
    #[default]
    Distributed,
    /// Prefer the physical GPUs with the most replicas handed out.
    Packed,
}

impl SharedPolicy {
    /// Parses a policy name: `distributed` or `packed`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "distributed" => Some(Self::Distributed),
            "packed" => Some(Self::Packed),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Distributed => "distributed",
            Self::Packed => "packed",
        }
    }
}

/// Preferred-allocation tables of one resource (pair affinity for whole GPUs,
/// physical-GPU groups for shared devices), answering the kubelet's requests.
#[derive(Debug, Clone)]
pub struct Preferrer {
    /// The resource, shared with its snapshots.
    resource: Arc<Resource>,
    /// Device ID → position in `resource.devices`, shared with its snapshots.
    index: Arc<DeviceIndex>,
    strategy: Strategy,
}

#[derive(Debug, Clone)]
enum Strategy {
    Whole(whole::Affinity),
    Shared(shared::Groups, SharedPolicy),
}

/// Per-call mark of a known device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    None,
    Required,
    Candidate,
}

impl Preferrer {
    /// Precomputes the resource's tables, on copies of the resource and
    /// its index (tests and benches; the daemon shares them, see [`Preferrer::shared`]).
    pub fn new(resource: &Resource, inventory: &Inventory, policy: SharedPolicy) -> Preferrer {
        let index = Arc::new(device_index(resource));
        Preferrer::shared(Arc::new(resource.clone()), index, inventory, policy)
    }

    /// Precomputes the resource's tables over the resource and index the
    /// snapshots share. Whole GPUs (no replica, no MIG) use the affinity
    /// search; anything else uses the greedy shared policy.
    pub fn shared(
        resource: Arc<Resource>,
        index: Arc<DeviceIndex>,
        inventory: &Inventory,
        policy: SharedPolicy,
    ) -> Preferrer {
        let devices = &resource.devices;
        let whole_gpus = devices
            .iter()
            .all(|d| d.replica.is_none() && d.mig.is_none());
        let strategy = if whole_gpus {
            Strategy::Whole(whole::Affinity::new(devices, inventory))
        } else {
            Strategy::Shared(shared::Groups::new(devices), policy)
        };
        Preferrer {
            resource,
            index,
            strategy,
        }
    }

    /// The resource these tables were built for.
    pub fn resource(&self) -> &Arc<Resource> {
        &self.resource
    }

    /// Device ID → position in the resource's device list.
    pub fn index(&self) -> &Arc<DeviceIndex> {
        &self.index
    }

    /// Chooses `size` device IDs: every `must_include` ID first (in the given
    /// order, duplicates dropped), then the best picks from `available`.
    /// Unknown available IDs are ignored. When `available` ∪ `must_include`
    /// cannot reach `size`, returns everything usable (never an error).
    pub fn choose(
        &self,
        available: &[String],
        must_include: &[String],
        size: usize,
    ) -> Vec<String> {
        let mut out: Vec<String> = Vec::with_capacity(size.max(must_include.len()));
        let devices = &self.resource.devices;
        let mut marks = vec![Mark::None; devices.len()];
        let mut required = Vec::with_capacity(must_include.len());
        for id in must_include {
            if out.contains(id) {
                continue;
            }
            out.push(id.clone());
            if let Some(&i) = self.index.get(id)
                && let Some(mark) = marks.get_mut(i)
            {
                *mark = Mark::Required;
                required.push(i);
            }
        }
        let picks = size.saturating_sub(out.len());
        if picks == 0 {
            return out;
        }
        let mut candidates = Vec::with_capacity(available.len().min(devices.len()));
        for id in available {
            if let Some(&i) = self.index.get(id)
                && let Some(mark) = marks.get_mut(i)
                && *mark == Mark::None
            {
                *mark = Mark::Candidate;
                candidates.push(i);
            }
        }
        let chosen = if candidates.len() <= picks {
            candidates.sort_unstable();
            candidates
        } else {
            match &self.strategy {
                Strategy::Whole(affinity) => {
                    candidates.sort_unstable();
                    affinity.choose(&required, &candidates, picks)
                }
                Strategy::Shared(groups, policy) => {
                    groups.choose(*policy, &candidates, &required, picks)
                }
            }
        };
        out.extend(
            chosen
                .iter()
                .filter_map(|&i| devices.get(i).map(|d| d.id.clone())),
        );
        out
    }
}

#[cfg(test)]
#[path = "preferred_tests.rs"]
mod tests;
