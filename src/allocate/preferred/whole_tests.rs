//! Tests of the whole-GPU affinity search: pair scores, NUMA first, exact and
//! greedy paths.

use super::{EXACT_LIMIT, Topology};
use crate::gpu::{Gpu, Inventory, NvLink};
use crate::resources::Device;

fn gpu(index: u32, numa: Option<u32>, links: &[(u32, u32)]) -> Gpu {
    Gpu {
        index,
        uuid: format!("GPU-{index}"),
        name: "test".into(),
        memory_mib: 1,
        pci_bus_id: format!("0000:{index:02x}:00.0"),
        minor: index,
        numa_node: numa,
        compute_capability: None,
        nvlinks: links
            .iter()
            .map(|&(peer, links)| NvLink { peer, links })
            .collect(),
        mig_enabled: false,
        mig_devices: Vec::new(),
    }
}

fn device(g: &Gpu) -> Device {
    Device {
        id: g.uuid.clone(),
        uuid: g.uuid.clone(),
        index: g.index.to_string(),
        gpu_uuid: g.uuid.clone(),
        gpu_index: g.index,
        mig: None,
        replica: None,
        numa_node: g.numa_node,
        paths: Vec::new(),
    }
}

fn topology(gpus: Vec<Gpu>) -> Topology {
    let devices: Vec<Device> = gpus.iter().map(device).collect();
    Topology::new(
        &devices,
        &Inventory {
            driver_version: None,
            gpus,
        },
    )
}

#[test]
fn pair_scores_follow_go_gpuallocator() {
    let t = topology(vec![
        gpu(0, Some(0), &[(1, 12)]),
        gpu(1, Some(0), &[(0, 12)]),
        gpu(2, Some(1), &[]),
        gpu(3, None, &[(0, 2)]),
    ]);
    let cases = [
        ((0, 1), 1220), // 12 NVLinks + same NUMA node
        ((1, 0), 1220),
        ((0, 2), 10),  // cross NUMA
        ((0, 3), 210), // link listed by the peer only; unknown NUMA = cross
        ((2, 3), 10),
        ((2, 2), 0),
    ];
    for ((a, b), want) in cases {
        assert_eq!(t.score(a, b), want, "{a}-{b}");
    }
}

#[test]
fn one_numa_node_beats_more_links_across_nodes() {
    let t = topology(vec![
        gpu(0, Some(0), &[(2, 12)]),
        gpu(1, Some(0), &[]),
        gpu(2, Some(1), &[(0, 12)]),
    ]);
    assert_eq!(t.choose(&[], &[0, 1, 2], 2), vec![0, 1]);
    // With GPU 0 required, its NUMA neighbour still wins.
    assert_eq!(t.choose(&[0], &[1, 2], 1), vec![1]);
}

/// `count` GPUs on two NUMA nodes, NVLink pairs (2k, 2k+1) with 12 links.
fn paired(count: u32) -> Topology {
    topology(
        (0..count)
            .map(|i| gpu(i, Some(u32::from(i >= count / 2)), &[(i ^ 1, 12)]))
            .collect(),
    )
}

#[test]
fn exact_search_takes_nvlink_pairs_on_sixteen_gpus() {
    let t = paired(16);
    let all: Vec<usize> = (0..16).collect();
    assert_eq!(t.choose(&[], &all, 2), vec![0, 1]);
    assert_eq!(t.choose(&[], &all, 8), (0..8).collect::<Vec<_>>());
    // GPUs 1 and 8 taken: a whole pair is left alone.
    let some: Vec<usize> = all.iter().copied().filter(|&i| i != 1 && i != 8).collect();
    assert_eq!(t.choose(&[], &some, 2), vec![2, 3]);
    assert_eq!(t.choose(&[9], &some, 1), vec![10]);
}

#[test]
fn greedy_search_beyond_the_exact_limit_takes_pairs() {
    let count = EXACT_LIMIT as u32 + 4;
    let t = paired(count);
    let all: Vec<usize> = (0..count as usize).collect();
    assert_eq!(t.choose(&[], &all, 2), vec![0, 1]);
    assert_eq!(t.choose(&[], &all, 4), vec![0, 1, 2, 3]);
    assert_eq!(t.choose(&[13], &all[..13], 1), vec![12]);
    let without_zero: Vec<usize> = all.iter().copied().skip(1).collect();
    assert_eq!(t.choose(&[], &without_zero, 1), vec![1]);
}
