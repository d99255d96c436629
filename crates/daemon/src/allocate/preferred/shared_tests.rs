//! Tests of the shared (replica / MIG) greedy policies: grouping by parent GPU.

use super::Groups;
use crate::allocate::preferred::SharedPolicy;
use crate::resources::{Device, MigPlacement};

/// MIG device `slot` on GPU `gpu` (all GPUs on NUMA node 0).
fn mig(gpu: u32, slot: u32) -> Device {
    Device {
        id: format!("MIG-{gpu}-{slot}"),
        uuid: format!("MIG-{gpu}-{slot}"),
        index: format!("{gpu}:{slot}"),
        gpu_uuid: format!("GPU-{gpu}"),
        gpu_index: gpu,
        mig: Some(MigPlacement {
            gpu_instance_id: slot + 1,
            compute_instance_id: 0,
        }),
        replica: None,
        numa_node: Some(0),
        paths: Vec::new(),
    }
}

#[test]
fn mig_devices_are_grouped_by_parent_gpu() {
    // GPU 1's devices come first in the list; groups still follow GPU index.
    let devices = vec![mig(1, 0), mig(1, 1), mig(0, 0), mig(0, 1), mig(0, 2)];
    let groups = Groups::new(&devices);
    let all: Vec<usize> = (0..devices.len()).collect();
    // distributed: one per parent GPU, GPU 0 first.
    assert_eq!(
        groups.choose(SharedPolicy::Distributed, &all, &[], 2),
        vec![2, 0]
    );
    // packed: fill GPU 0 first.
    assert_eq!(
        groups.choose(SharedPolicy::Packed, &all, &[], 2),
        vec![2, 3]
    );
    // GPU 0 has one device in use: packed keeps filling it, distributed avoids it.
    let free = [0, 1, 3, 4];
    assert_eq!(groups.choose(SharedPolicy::Packed, &free, &[], 1), vec![3]);
    assert_eq!(
        groups.choose(SharedPolicy::Distributed, &free, &[], 1),
        vec![0]
    );
}

#[test]
fn runs_dry_without_panicking() {
    let devices = vec![mig(0, 0), mig(0, 1)];
    let groups = Groups::new(&devices);
    assert_eq!(
        groups.choose(SharedPolicy::Distributed, &[1], &[0], 3),
        vec![1]
    );
    assert_eq!(
        groups.choose(SharedPolicy::Packed, &[], &[], 1),
        Vec::<usize>::new()
    );
}
