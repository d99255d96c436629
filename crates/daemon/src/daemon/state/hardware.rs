//! The hardware input: each inventory read merged with what the daemon last
//! knew, so that a GPU that stops answering keeps its place in the plan (its
//! devices advertised Unhealthy) instead of vanishing or taking the node down.

use std::collections::{BTreeMap, BTreeSet};

use crate::gpu::{FaultKind, Gpu, GpuFault, Inventory};

/// The last good description of every GPU, and the inventory to plan from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hardware {
    /// Last description read of each GPU, by NVML index.
    known: BTreeMap<u32, Gpu>,
    /// What the plan is built from: the GPUs that answered, plus the last
    /// known description of those that did not.
    pub inventory: Option<Inventory>,
}

/// One read, merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    /// GPUs (by UUID) that answered.
    pub present: BTreeSet<String>,
    /// Faults by GPU UUID.
    pub faults: BTreeMap<String, FaultKind>,
    /// Faults on GPUs never read before: they cannot be advertised.
    pub unknown: Vec<GpuFault>,
    /// Whether the inventory to plan from changed.
    pub changed: bool,
}

impl Hardware {
    /// Merges a fresh read. A faulted GPU is identified by its UUID when the
    /// read has it, else by its NVML index; a GPU neither answering nor
    /// faulted left the node and is forgotten.
    pub fn apply(&mut self, read: Inventory) -> Merged {
        let mut present = BTreeSet::new();
        let mut faults = BTreeMap::new();
        let mut unknown = Vec::new();
        let mut gpus: BTreeMap<u32, Gpu> = BTreeMap::new();
        for gpu in &read.gpus {
            present.insert(gpu.uuid.clone());
            gpus.insert(gpu.index, gpu.clone());
        }
        for fault in &read.faults {
            let known = match &fault.uuid {
                Some(uuid) => read
                    .gpus
                    .iter()
                    .chain(self.known.values())
                    .find(|g| &g.uuid == uuid),
                None => self.known.get(&fault.index),
            };
            match known {
                Some(gpu) => {
                    faults.insert(gpu.uuid.clone(), fault.kind.clone());
                    gpus.entry(gpu.index).or_insert_with(|| gpu.clone());
                }
                None => unknown.push(fault.clone()),
            }
        }
        self.known = gpus.clone();
        let inventory = Inventory {
            driver_version: read.driver_version,
            cuda_driver_version: read.cuda_driver_version,
            gpus: gpus.into_values().collect(),
            faults: read.faults,
        };
        let changed = self.inventory.as_ref().is_none_or(|old| {
            old.gpus != inventory.gpus
                || old.driver_version != inventory.driver_version
                || old.cuda_driver_version != inventory.cuda_driver_version
        });
        self.inventory = Some(inventory);
        Merged {
            present,
            faults,
            unknown,
            changed,
        }
    }

    /// UUIDs of the GPUs in the inventory to plan from.
    pub fn gpu_uuids(&self) -> Vec<String> {
        self.inventory
            .iter()
            .flat_map(|i| i.gpus.iter().map(|g| g.uuid.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu(index: u32) -> Gpu {
        Gpu {
            index,
            uuid: format!("GPU-{index}"),
            name: "NVIDIA A100-SXM4-80GB".into(),
            memory_mib: 81920,
            pci_bus_id: format!("0000:0{index}:00.0"),
            minor: index,
            numa_node: Some(0),
            compute_capability: Some("8.0".into()),
            nvlinks: Vec::new(),
            mig_enabled: false,
            mig_devices: Vec::new(),
        }
    }

    fn read(gpus: &[u32], faults: &[(u32, Option<&str>, FaultKind)]) -> Inventory {
        Inventory {
            driver_version: None,
            cuda_driver_version: None,
            gpus: gpus.iter().map(|i| gpu(*i)).collect(),
            faults: faults
                .iter()
                .map(|(index, uuid, kind)| GpuFault {
                    index: *index,
                    uuid: uuid.map(str::to_string),
                    kind: kind.clone(),
                })
                .collect(),
        }
    }

    fn planned(h: &Hardware) -> Vec<u32> {
        h.inventory
            .iter()
            .flat_map(|i| i.gpus.iter().map(|g| g.index))
            .collect()
    }

    #[test]
    fn a_lost_gpu_keeps_its_last_description_by_index() {
        let mut h = Hardware::default();
        let first = h.apply(read(&[0, 1, 2], &[]));
        assert!(first.changed);
        let m = h.apply(read(&[0, 2], &[(1, None, FaultKind::Lost)]));
        assert_eq!(planned(&h), [0, 1, 2]);
        assert!(!m.changed, "same GPUs to plan from");
        assert_eq!(m.faults.get("GPU-1"), Some(&FaultKind::Lost));
        assert!(!m.present.contains("GPU-1"));
        assert!(m.unknown.is_empty());
        let back = h.apply(read(&[0, 1, 2], &[]));
        assert!(back.faults.is_empty());
        assert!(back.present.contains("GPU-1"));
    }

    #[test]
    fn a_fault_on_a_gpu_never_read_cannot_be_advertised() {
        let mut h = Hardware::default();
        let m = h.apply(read(&[0], &[(1, None, FaultKind::Lost)]));
        assert_eq!(planned(&h), [0]);
        assert_eq!(m.unknown.len(), 1);
        assert!(m.faults.is_empty());
    }

    #[test]
    fn a_gpu_that_needs_recovery_stays_with_its_fresh_description() {
        let mut h = Hardware::default();
        h.apply(read(&[0, 1], &[]));
        let kind = FaultKind::NeedsRecovery(crate::gpu::RecoveryAction::GpuReset);
        let m = h.apply(read(&[0, 1], &[(1, Some("GPU-1"), kind.clone())]));
        assert_eq!(planned(&h), [0, 1]);
        assert!(m.present.contains("GPU-1"));
        assert_eq!(m.faults.get("GPU-1"), Some(&kind));
    }

    #[test]
    fn a_gpu_gone_from_the_count_leaves_the_plan() {
        let mut h = Hardware::default();
        h.apply(read(&[0, 1], &[]));
        let m = h.apply(read(&[0], &[]));
        assert!(m.changed);
        assert_eq!(planned(&h), [0]);
        // ... and a later fault at its index is no longer matched to it.
        let m = h.apply(read(&[0], &[(1, None, FaultKind::Lost)]));
        assert_eq!(m.unknown.len(), 1);
    }
}
