//! Table tests of the public preferred-allocation API: NVIDIA's §4.1 vectors for
//! replicas, NVLink/NUMA choices on the 8×A100 node, and edge cases.

use std::collections::BTreeMap;

use super::{Preferrer, SharedPolicy};
use crate::gpu::Inventory;
use crate::gpu::simulated::{BUILTIN_NODE, parse_node};
use crate::resources::{Device, PlanOptions, Resource, plan};

fn ids(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// `(uuid, gpu index, NUMA node)` per GPU, `replicas` each: IDs `<uuid>::<n>`.
fn replicas(gpus: &[(&str, u32, Option<u32>)], replicas: u32) -> Resource {
    let mut devices = Vec::new();
    for &(uuid, index, numa) in gpus {
        for n in 0..replicas {
            devices.push(Device {
                id: format!("{uuid}::{n}"),
                uuid: uuid.to_string(),
                index: index.to_string(),
                gpu_uuid: uuid.to_string(),
                gpu_index: index,
                mig: None,
                replica: Some(n),
                numa_node: numa,
                paths: vec![format!("/dev/nvidia{index}")],
            });
        }
    }
    Resource {
        name: "nvidia.com/gpu".into(),
        devices,
        sharing: None,
    }
}

/// Replicas chosen per physical GPU.
fn per_gpu(chosen: &[String]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for id in chosen {
        let gpu = id.split_once("::").map_or(id.as_str(), |(g, _)| g);
        *counts.entry(gpu.to_string()).or_default() += 1;
    }
    counts
}

fn all_ids(resource: &Resource) -> Vec<String> {
    resource.devices.iter().map(|d| d.id.clone()).collect()
}

const NO_NUMA: [(&str, u32, Option<u32>); 3] =
    [("GPU-0", 0, None), ("GPU-1", 1, None), ("GPU-2", 2, None)];

#[test]
fn nvidia_vectors() {
    use SharedPolicy::{Distributed, Packed};
    // (policy, GPUs, replicas each, available (None = all), size, sorted counts per GPU)
    type Case = (
        SharedPolicy,
        usize,
        u32,
        Option<&'static [&'static str]>,
        usize,
        &'static [usize],
    );
    let cases: [Case; 8] = [
        (Distributed, 2, 4, None, 2, &[1, 1]),
        (Distributed, 2, 4, None, 4, &[2, 2]),
        (Distributed, 3, 2, None, 3, &[1, 1, 1]),
        (
            Distributed,
            2,
            2,
            Some(&["GPU-0::0", "GPU-0::1", "GPU-1::1"]),
            2,
            &[1, 1],
        ),
        (Packed, 2, 4, None, 2, &[2]),
        (Packed, 3, 2, None, 3, &[1, 2]),
        (Packed, 2, 4, None, 4, &[4]),
        (Packed, 2, 4, None, 5, &[1, 4]),
    ];
    for (policy, gpus, n, available, size, want) in cases {
        let resource = replicas(&NO_NUMA[..gpus], n);
        let available = available.map_or_else(|| all_ids(&resource), ids);
        let p = Preferrer::new(&resource, &Inventory::default(), policy);
        let got = p.choose(&available, &[], size);
        assert_eq!(
            got.len(),
            size,
            "{policy:?} {gpus}x{n} size {size}: {got:?}"
        );
        let mut counts: Vec<usize> = per_gpu(&got).into_values().collect();
        counts.sort_unstable();
        assert_eq!(counts, want, "{policy:?} {gpus}x{n} size {size}: {got:?}");
    }
}

#[test]
fn shared_choices_are_exact_and_deterministic() {
    let resource = replicas(&NO_NUMA[..2], 4);
    let all = all_ids(&resource);
    let cases: [(SharedPolicy, &[&str], usize, &[&str]); 4] = [
        (
            SharedPolicy::Distributed,
            &[],
            3,
            &["GPU-0::0", "GPU-1::0", "GPU-0::1"],
        ),
        (
            SharedPolicy::Packed,
            &[],
            3,
            &["GPU-0::0", "GPU-0::1", "GPU-0::2"],
        ),
        // must_include counts as allocated on its GPU.
        (
            SharedPolicy::Distributed,
            &["GPU-0::3"],
            2,
            &["GPU-0::3", "GPU-1::0"],
        ),
        (
            SharedPolicy::Packed,
            &["GPU-1::2"],
            2,
            &["GPU-1::2", "GPU-1::0"],
        ),
    ];
    for (policy, must, size, want) in cases {
        let p = Preferrer::new(&resource, &Inventory::default(), policy);
        assert_eq!(
            p.choose(&all, &ids(must), size),
            ids(want),
            "{policy:?} {must:?} {size}"
        );
    }
}

#[test]
fn distributed_prefers_least_allocated_gpu() {
    let resource = replicas(&NO_NUMA, 2);
    // GPU-0 has both replicas handed out, GPU-1 one, GPU-2 none.
    let available = ids(&["GPU-1::1", "GPU-2::0", "GPU-2::1"]);
    let p = Preferrer::new(&resource, &Inventory::default(), SharedPolicy::Distributed);
    assert_eq!(p.choose(&available, &[], 1), ids(&["GPU-2::0"]));
    let p = Preferrer::new(&resource, &Inventory::default(), SharedPolicy::Packed);
    assert_eq!(p.choose(&available, &[], 1), ids(&["GPU-1::1"]));
}

#[test]
fn replicas_stay_on_the_numa_node_of_must_include_or_one_that_fits() {
    let gpus = [
        ("GPU-0", 0, Some(0)),
        ("GPU-1", 1, Some(0)),
        ("GPU-2", 2, Some(1)),
        ("GPU-3", 3, Some(1)),
    ];
    let resource = replicas(&gpus, 2);
    let all = all_ids(&resource);
    let p = Preferrer::new(&resource, &Inventory::default(), SharedPolicy::Distributed);
    let cases: [(&[&str], usize, &[&str]); 4] = [
        (&["GPU-2::0"], 2, &["GPU-2::0", "GPU-3::0"]),
        (&[], 2, &["GPU-0::0", "GPU-1::0"]),
        (&[], 3, &["GPU-0::0", "GPU-1::0", "GPU-0::1"]),
        // No node holds 5: spread over all GPUs.
        (
            &[],
            5,
            &["GPU-0::0", "GPU-1::0", "GPU-2::0", "GPU-3::0", "GPU-0::1"],
        ),
    ];
    for (must, size, want) in cases {
        let mut available = all.clone();
        available.retain(|id| !must.contains(&id.as_str()));
        assert_eq!(
            p.choose(&available, &ids(must), size),
            ids(want),
            "{must:?} {size}"
        );
    }
}

#[test]
fn shared_policy_parses_nvidia_names() {
    assert_eq!(
        SharedPolicy::parse("distributed"),
        Some(SharedPolicy::Distributed)
    );
    assert_eq!(SharedPolicy::parse("packed"), Some(SharedPolicy::Packed));
    assert_eq!(SharedPolicy::parse(""), None);
    assert_eq!(SharedPolicy::parse("spread"), None);
    assert_eq!(SharedPolicy::default(), SharedPolicy::Distributed);
}

fn dgx() -> (Preferrer, Vec<String>) {
    let node = parse_node(BUILTIN_NODE, "dgx-a100").unwrap();
    let plan = plan(&node.inventory, &PlanOptions::default()).unwrap();
    let resource = plan.get("nvidia.com/gpu").unwrap();
    let p = Preferrer::new(resource, &node.inventory, SharedPolicy::Distributed);
    (p, all_ids(resource))
}

#[test]
fn whole_gpus_on_dgx_a100() {
    let (p, uuids) = dgx();
    let gpu = |i: usize| uuids[i].clone();
    let gpus = |list: &[usize]| list.iter().map(|&i| gpu(i)).collect::<Vec<_>>();
    let all: Vec<usize> = (0..8).collect();
    // (available GPU indices, must_include, size, expected in answer order)
    type Case<'a> = (&'a [usize], &'a [usize], usize, &'a [usize]);
    let cases: [Case; 13] = [
        (&all, &[], 2, &[0, 1]),
        (&all, &[], 4, &[0, 1, 2, 3]),
        (&all, &[], 8, &[0, 1, 2, 3, 4, 5, 6, 7]),
        (&all, &[], 1, &[0]),
        (&[4, 5, 6, 7], &[], 2, &[4, 5]),
        (&[0, 2, 4, 6], &[], 2, &[0, 2]),
        (&[1, 2, 3, 4, 5, 6, 7], &[], 4, &[4, 5, 6, 7]),
        // GPU 1 is taken: GPU 0 lost its NVLink partner, so it goes first.
        (&[0, 2, 3, 4, 5, 6, 7], &[], 1, &[0]),
        (&all, &[4], 2, &[4, 5]),
        (&all, &[6], 4, &[6, 4, 5, 7]),
        (&[1, 2, 3], &[0], 2, &[0, 1]),
        // more than available: everything there is.
        (&[2, 5], &[], 3, &[2, 5]),
        (&[], &[], 2, &[]),
    ];
    for (available, must, size, want) in cases {
        let got = p.choose(&gpus(available), &gpus(must), size);
        assert_eq!(
            got,
            gpus(want),
            "available {available:?} must {must:?} size {size}"
        );
    }
}

#[test]
fn edge_cases() {
    let (p, uuids) = dgx();
    let two = vec![uuids[0].clone(), uuids[1].clone()];
    // unknown available IDs are ignored
    let with_unknown = vec!["GPU-nope".to_string(), uuids[0].clone(), uuids[1].clone()];
    assert_eq!(p.choose(&with_unknown, &[], 2), two);
    // size 0
    assert_eq!(p.choose(&uuids, &[], 0), Vec::<String>::new());
    // must_include is kept even when unknown or not available, once each
    let must = vec![
        "GPU-unknown".to_string(),
        uuids[5].clone(),
        uuids[5].clone(),
    ];
    assert_eq!(
        p.choose(&[], &must, 2),
        vec!["GPU-unknown".to_string(), uuids[5].clone()]
    );
    // must_include larger than size is still returned whole
    assert_eq!(p.choose(&uuids, &two, 1), two);
    // duplicates in available are counted once
    let dup = vec![uuids[3].clone(), uuids[3].clone()];
    assert_eq!(p.choose(&dup, &[], 2), vec![uuids[3].clone()]);
}

#[test]
fn mig_devices_on_h100_count_allocation_per_parent_gpu() {
    let text = include_str!("../../../../config/nodes/h100-mig.yaml");
    let node = parse_node(text, "h100-mig").unwrap();
    let options = PlanOptions {
        mig_strategy: crate::resources::MigStrategy::Mixed,
        ..PlanOptions::default()
    };
    let plan = plan(&node.inventory, &options).unwrap();
    let resource = plan.get("nvidia.com/mig-1g.10gb").unwrap();
    // GPU 0 has one 1g.10gb device, GPU 1 seven; two of GPU 1's are in use.
    let on_gpu = |i: u32| -> Vec<String> {
        resource
            .devices
            .iter()
            .filter(|d| d.gpu_index == i)
            .map(|d| d.id.clone())
            .collect()
    };
    let (gpu0, gpu1) = (on_gpu(0), on_gpu(1));
    assert_eq!((gpu0.len(), gpu1.len()), (1, 7));
    let available: Vec<String> = gpu0.iter().chain(&gpu1[2..]).cloned().collect();
    let cases = [
        (SharedPolicy::Distributed, 1, vec![gpu0[0].clone()]),
        (SharedPolicy::Packed, 1, vec![gpu1[2].clone()]),
        (
            SharedPolicy::Distributed,
            2,
            vec![gpu0[0].clone(), gpu1[2].clone()],
        ),
    ];
    for (policy, size, want) in cases {
        let p = Preferrer::new(resource, &node.inventory, policy);
        assert_eq!(p.choose(&available, &[], size), want, "{policy:?} {size}");
    }
}
