//! Latency of the preferred-allocation policy (`Preferrer::choose`, the body of
//! GetPreferredAllocation): p50 and p99 in µs over plain `Instant` loops after a
//! warm-up, one JSON line per figure. Run: `cargo bench --bench preferred`.

use std::hint::black_box;
use std::time::Instant;

use gpu_device_plugin::allocate::preferred::{Preferrer, SharedPolicy};
use gpu_device_plugin::gpu::simulated::{BUILTIN_NODE, parse_node};
use gpu_device_plugin::gpu::{Gpu, Inventory, NvLink};
use gpu_device_plugin::resources::{Device, PlanOptions, Resource, plan};

const WARMUP: usize = 2_000;
const SAMPLES: usize = 20_000;

fn measure(case: &str, preferrer: &Preferrer, available: &[String], size: usize) {
    for _ in 0..WARMUP {
        black_box(preferrer.choose(black_box(available), &[], size));
    }
    let mut micros = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let start = Instant::now();
        let chosen = preferrer.choose(black_box(available), &[], size);
        micros.push(start.elapsed().as_secs_f64() * 1e6);
        black_box(chosen);
    }
    micros.sort_by(f64::total_cmp);
    let p50 = micros[micros.len() / 2];
    let p99 = micros[micros.len() * 99 / 100];
    println!(
        r#"{{"bench":"preferred","case":"{case}","size":{size},"p50_us":{p50:.2},"p99_us":{p99:.2}}}"#
    );
}

fn ids(resource: &Resource) -> Vec<String> {
    resource.devices.iter().map(|d| d.id.clone()).collect()
}

/// How the GPUs of a synthetic node are wired.
#[derive(Clone, Copy, PartialEq)]
enum Layout {
    /// Two NUMA nodes; NVLink pairs 12 links, the rest of the quad 4, the rest
    /// of the NUMA node 2, nothing across nodes.
    Dgx,
    /// The same links, all GPUs on one NUMA node (no NUMA pruning).
    DgxOneNuma,
    /// One NUMA node, 18 links between every pair (every set ties).
    NvSwitch,
}

fn big_node(count: u32, layout: Layout) -> Inventory {
    let nvswitch = layout == Layout::NvSwitch;
    let two_numa = layout == Layout::Dgx;
    let gpus = (0..count)
        .map(|i| {
            let nvlinks = (0..count)
                .filter(|&p| p != i)
                .filter_map(|peer| {
                    let links = if nvswitch {
                        18
                    } else if peer == i ^ 1 {
                        12
                    } else if peer / 4 == i / 4 {
                        4
                    } else if !two_numa || (peer >= count / 2) == (i >= count / 2) {
                        2
                    } else {
                        return None;
                    };
                    Some(NvLink { peer, links })
                })
                .collect();
            Gpu {
                index: i,
                uuid: format!("GPU-{i:08x}-0000-0000-0000-000000000000"),
                name: "NVIDIA H100 80GB HBM3".into(),
                memory_mib: 81559,
                pci_bus_id: format!("0000:{:02x}:00.0", i + 1),
                minor: i,
                numa_node: Some(u32::from(two_numa && i >= count / 2)),
                compute_capability: Some("9.0".into()),
                nvlinks,
                mig_enabled: false,
                mig_devices: Vec::new(),
            }
        })
        .collect();
    Inventory {
        driver_version: None,
        cuda_driver_version: None,
        gpus,
        faults: Vec::new(),
    }
}

fn whole_gpus(case: &str, inventory: &Inventory, sizes: &[usize]) {
    let plan = plan(inventory, &PlanOptions::default()).expect("plan");
    let resource = plan.get("nvidia.com/gpu").expect("nvidia.com/gpu");
    let preferrer = Preferrer::new(resource, inventory, SharedPolicy::Distributed);
    let available = ids(resource);
    for &size in sizes {
        measure(case, &preferrer, &available, size);
    }
}

fn replicas(case: &str, inventory: &Inventory, count: u32, policy: SharedPolicy) {
    let devices = inventory
        .gpus
        .iter()
        .flat_map(|g| {
            (0..count).map(move |n| Device {
                id: format!("{}::{n}", g.uuid),
                uuid: g.uuid.clone(),
                index: g.index.to_string(),
                gpu_uuid: g.uuid.clone(),
                gpu_index: g.index,
                mig: None,
                replica: Some(n),
                numa_node: g.numa_node,
                paths: vec![format!("/dev/nvidia{}", g.minor)],
            })
        })
        .collect();
    let resource = Resource {
        name: "nvidia.com/gpu".into(),
        devices,
        sharing: None,
    };
    let preferrer = Preferrer::new(&resource, inventory, policy);
    let available = ids(&resource);
    for size in [1, 2, 4, 8] {
        measure(case, &preferrer, &available, size);
    }
}

fn main() {
    let dgx = parse_node(BUILTIN_NODE, "dgx-a100")
        .expect("built-in node")
        .inventory;
    whole_gpus("8gpu", &dgx, &[1, 2, 4, 8]);
    whole_gpus("16gpu", &big_node(16, Layout::Dgx), &[1, 2, 4, 8]);
    whole_gpus(
        "16gpu-1numa",
        &big_node(16, Layout::DgxOneNuma),
        &[1, 2, 4, 8],
    );
    whole_gpus(
        "16gpu-nvswitch-1numa",
        &big_node(16, Layout::NvSwitch),
        &[1, 2, 4, 8],
    );
    replicas(
        "800replicas-distributed",
        &dgx,
        100,
        SharedPolicy::Distributed,
    );
    replicas("800replicas-packed", &dgx, 100, SharedPolicy::Packed);
}
