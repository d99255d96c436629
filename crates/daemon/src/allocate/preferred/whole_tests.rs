//! Tests of the whole-GPU affinity search: pair scores, NUMA first, exact and
//! greedy paths.

use super::{Affinity, EXACT_LIMIT};
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

fn affinity(gpus: Vec<Gpu>) -> Affinity {
    let devices: Vec<Device> = gpus.iter().map(device).collect();
    Affinity::new(
        &devices,
        &Inventory {
            driver_version: None,
            cuda_driver_version: None,
            gpus,
            faults: Vec::new(),
        },
    )
}

#[test]
fn pair_scores_follow_go_gpuallocator() {
    let t = affinity(vec![
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
    let t = affinity(vec![
        gpu(0, Some(0), &[(2, 12)]),
        gpu(1, Some(0), &[]),
        gpu(2, Some(1), &[(0, 12)]),
    ]);
    assert_eq!(t.choose(&[], &[0, 1, 2], 2), vec![0, 1]);
    // With GPU 0 required, its NUMA neighbour still wins.
    assert_eq!(t.choose(&[0], &[1, 2], 1), vec![1]);
}

/// `count` GPUs on two NUMA nodes, NVLink pairs (2k, 2k+1) with 12 links.
fn paired(count: u32) -> Affinity {
    affinity(
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

/// The best set by brute force over every combination, ranked as the module
/// comment says (first of equal sets wins).
fn brute_force(t: &Affinity, required: &[usize], candidates: &[usize], picks: usize) -> Vec<usize> {
    let m = candidates.len();
    let mut best: Option<((u32, u64, u64), Vec<usize>)> = None;
    let mut subsets: Vec<Vec<usize>> = (0u32..1 << m)
        .filter(|mask| mask.count_ones() as usize == picks)
        .map(|mask| {
            (0..m)
                .filter(|p| mask & (1 << p) != 0)
                .map(|p| candidates[p])
                .collect()
        })
        .collect();
    subsets.sort();
    for set in subsets {
        let all: Vec<usize> = required.iter().chain(&set).copied().collect();
        let numa = all
            .iter()
            .fold(0u64, |acc, &d| acc | t.bucket(d))
            .count_ones();
        let mut internal = 0;
        for (k, &a) in all.iter().enumerate() {
            for &b in &all[k + 1..] {
                internal += t.score(a, b);
            }
        }
        let external: u64 = all
            .iter()
            .flat_map(|&a| {
                candidates
                    .iter()
                    .filter(|c| !set.contains(c))
                    .map(move |&c| (a, c))
            })
            .map(|(a, c)| t.score(a, c))
            .sum();
        let key = (numa, u64::MAX - internal, external);
        if best.as_ref().is_none_or(|(k, _)| key < *k) {
            best = Some((key, set));
        }
    }
    best.map(|(_, s)| s).unwrap_or_default()
}

#[test]
fn exact_search_matches_brute_force_on_irregular_nodes() {
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move |bound: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % bound
    };
    let mut checked = 0;
    for round in 0..150 {
        let count = 6 + next(9) as u32; // 6..=14 GPUs
        let mut gpus = Vec::new();
        for i in 0..count {
            let numa = match next(4) {
                0 => None,
                n => Some((n % 2) as u32),
            };
            let mut links = Vec::new();
            for p in (0..count).filter(|&p| p != i) {
                if next(3) == 0 {
                    links.push((p, [1, 2, 4, 12][next(4) as usize]));
                }
            }
            gpus.push(gpu(i, numa, &links));
        }
        let t = affinity(gpus);
        let candidates: Vec<usize> = (0..count as usize).filter(|_| next(5) != 0).collect();
        let required: Vec<usize> = (0..count as usize)
            .filter(|d| !candidates.contains(d) && next(3) == 0)
            .take(2)
            .collect();
        if candidates.len() < 2 {
            continue;
        }
        let picks = 1 + next(candidates.len() as u64 - 1) as usize;
        assert_eq!(
            t.choose(&required, &candidates, picks),
            brute_force(&t, &required, &candidates, picks),
            "round {round}: required {required:?} candidates {candidates:?} picks {picks}"
        );
        checked += 1;
    }
    assert!(checked >= 120, "only {checked} rounds checked");
}
