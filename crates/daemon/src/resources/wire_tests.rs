//! Tests of `resources::wire`: the computed size against prost's encoding of
//! the message `plugin::Snapshot` really builds, and the limit in planning.
use std::sync::Arc;

use prost::Message;

use super::*;
use crate::allocate::preferred::{Preferrer, SharedPolicy};
use crate::allocate::response::AllocateOptions;
use crate::gpu::simulated::Simulated;
use crate::gpu::{Backend, Inventory};
use crate::plugin::Snapshot;
use crate::resources::{
    Device, DeviceSelector, PlanOptions, ReplicaRule, SharingKind, SharingOptions, plan,
};

fn device(id: String, numa_node: Option<u32>) -> Device {
    Device {
        uuid: id.clone(),
        index: "0".into(),
        gpu_uuid: id.clone(),
        gpu_index: 0,
        mig: None,
        replica: None,
        numa_node,
        paths: vec!["/dev/nvidia0".into()],
        id,
    }
}

fn resource(devices: Vec<Device>) -> Resource {
    Resource {
        name: "nvidia.com/gpu".into(),
        devices,
        sharing: None,
    }
}

/// prost's size of the ListAndWatch message served for `r`, every device
/// with the given health.
fn served_len(r: &Resource, healthy: bool) -> u64 {
    let snapshot = Snapshot::new(
        vec![healthy; r.devices.len()],
        Arc::new(AllocateOptions::default()),
        Arc::new(Preferrer::new(
            r,
            &Inventory::default(),
            SharedPolicy::default(),
        )),
    );
    snapshot.list.encoded_len() as u64
}

#[test]
fn computed_size_equals_the_served_message_when_unhealthy() {
    // (case, device count, ID length, NUMA node)
    let cases: [(&str, usize, usize, Option<u32>); 9] = [
        ("empty resource", 0, 40, Some(0)),
        ("GPU UUIDs, NUMA 0 (ID 0 left out)", 8, 40, Some(0)),
        ("GPU UUIDs, NUMA 1", 8, 40, Some(1)),
        ("no NUMA: no topology", 5, 40, None),
        ("NUMA 200: two-byte varint", 3, 40, Some(200)),
        ("largest NUMA id", 2, 40, Some(u32::MAX)),
        ("longest accepted ID", 4, 63, Some(1)),
        (
            "device body over 127 bytes: two-byte length",
            4,
            150,
            Some(1),
        ),
        ("empty ID left out", 1, 0, Some(1)),
    ];
    for (case, count, id_len, numa) in cases {
        let r = resource(
            (0..count)
                .map(|i| device(format!("{:0>id_len$}", i % 10), numa))
                .collect(),
        );
        let size = shape_of(&r).size();
        assert_eq!(size.devices, count as u64, "{case}");
        assert_eq!(size.bytes, served_len(&r, false), "{case}");
    }
}

#[test]
fn computed_size_bounds_the_served_message_when_healthy() {
    let cases: [(&str, usize, Option<u32>); 3] = [
        ("NUMA 0", 8, Some(0)),
        ("NUMA 3", 8, Some(3)),
        ("no NUMA", 8, None),
    ];
    for (case, count, numa) in cases {
        let r = resource(
            (0..count)
                .map(|i| device(format!("GPU-{i:036}"), numa))
                .collect(),
        );
        let healthy = served_len(&r, true);
        assert!(shape_of(&r).size().bytes >= healthy, "{case}");
        // Two bytes per device: "Unhealthy" is 9, "Healthy" 7.
        assert_eq!(
            shape_of(&r).size().bytes - healthy,
            2 * count as u64,
            "{case}"
        );
    }
}

#[test]
fn replica_size_equals_the_expanded_replicas() {
    // (replicas, base ID length, NUMA node): digit boundaries of the suffix.
    let cases: [(u32, usize, Option<u32>); 7] = [
        (0, 40, Some(0)),
        (2, 40, Some(0)),
        (10, 40, Some(1)),
        (11, 40, None),
        (100, 63, Some(1)),
        (1001, 40, Some(7)),
        (12_345, 120, Some(1)),
    ];
    for (replicas, id_len, numa) in cases {
        let base = "x".repeat(id_len);
        let mut computed = WireSize::default();
        computed.add_replicas(id_len, replicas, numa);
        let expanded = resource(
            (0..replicas)
                .map(|n| device(format!("{base}::{n}"), numa))
                .collect(),
        );
        assert_eq!(
            computed,
            shape_of(&expanded).size(),
            "{replicas} x {id_len}"
        );
    }
}

#[test]
fn replica_size_of_huge_counts_does_not_overflow() {
    let mut size = WireSize::default();
    size.add_replicas(40, u32::MAX, Some(1));
    size.add_replicas(40, u32::MAX, Some(1));
    assert_eq!(size.devices, 2 * u64::from(u32::MAX));
    assert!(size.bytes > KUBELET_MAX_RECEIVE_BYTES);
}

#[test]
fn a_message_fits_up_to_the_limit_inclusive() {
    let cases: [(u64, bool); 3] = [
        (KUBELET_MAX_RECEIVE_BYTES - 1, true),
        (KUBELET_MAX_RECEIVE_BYTES, true),
        (KUBELET_MAX_RECEIVE_BYTES + 1, false),
    ];
    for (bytes, fits) in cases {
        let size = WireSize {
            devices: 1000,
            bytes,
        };
        assert_eq!(size.fits(), fits, "{bytes}");
    }
}

#[test]
fn max_replicas_is_the_largest_count_that_fits() {
    // (case, kept devices of 40-byte IDs, shared devices of 40-byte IDs)
    let cases: [(&str, u64, usize); 4] = [
        ("one shared device", 0, 1),
        ("eight shared devices", 0, 8),
        ("kept devices take room too", 10_000, 8),
        ("kept devices alone overflow", 70_000, 8),
    ];
    for (case, kept, shared) in cases {
        let mut shape = Shape::default();
        for _ in 0..kept {
            shape.keep(40, Some(1));
        }
        for _ in 0..shared {
            shape.replicate(40, Some(1), 1);
        }
        let max = shape.max_replicas();
        let with = |r: u32| {
            let mut s = Shape::default();
            for _ in 0..kept {
                s.keep(40, Some(1));
            }
            for _ in 0..shared {
                s.replicate(40, Some(1), r);
            }
            s.size().fits()
        };
        assert!(max == 0 || with(max), "{case}: {max} fits");
        assert!(!with(max + 1), "{case}: {} does not fit", max + 1);
    }
}

#[test]
fn the_limit_is_grpc_gos_default_of_4_mib() {
    assert_eq!(KUBELET_MAX_RECEIVE_BYTES, 4_194_304);
}

fn builtin() -> Inventory {
    Simulated::builtin()
        .inventory()
        .expect("built-in node parses")
}

fn rule(rename: Option<&str>, devices: DeviceSelector, replicas: u32) -> ReplicaRule {
    ReplicaRule {
        name: "nvidia.com/gpu".into(),
        rename: rename.map(str::to_string),
        devices,
        replicas,
    }
}

fn sharing(rules: Vec<ReplicaRule>) -> PlanOptions {
    PlanOptions {
        sharing: Some(SharingOptions {
            kind: SharingKind::TimeSlicing,
            fail_requests_greater_than_one: false,
            rules,
        }),
        ..Default::default()
    }
}

/// Largest time-slicing `replicas` for all 8 GPUs of the built-in node.
const BUILTIN_MAX_REPLICAS: u32 = 7960;

#[test]
fn the_builtin_node_fits_7960_replicas_per_gpu() {
    let inventory = builtin();
    let fits = plan(
        &inventory,
        &sharing(vec![rule(None, DeviceSelector::All, BUILTIN_MAX_REPLICAS)]),
    )
    .expect("largest count fits");
    let gpu = &fits["nvidia.com/gpu"];
    assert_eq!(gpu.devices.len(), 8 * BUILTIN_MAX_REPLICAS as usize);
    assert!(served_len(gpu, false) <= KUBELET_MAX_RECEIVE_BYTES);
    let over = plan(
        &inventory,
        &sharing(vec![rule(
            None,
            DeviceSelector::All,
            BUILTIN_MAX_REPLICAS + 1,
        )]),
    );
    assert!(
        matches!(
            over,
            Err(PlanError::MessageTooLarge { devices, max_replicas, .. })
                if devices == 8 * u64::from(BUILTIN_MAX_REPLICAS + 1)
                    && max_replicas == BUILTIN_MAX_REPLICAS
        ),
        "{over:?}"
    );
}

#[test]
fn oversized_plans_name_the_resource_that_overflows() {
    use crate::resources::DeviceRef::GpuIndex;
    use DeviceSelector::{All, First, Refs};
    let half = |first: u64| Refs((first..first + 4).map(GpuIndex).collect());
    // (case, rules, resource named in the error, or None when it fits)
    let cases: Vec<(&str, Vec<ReplicaRule>, Option<&str>)> = vec![
        (
            "two million replicas",
            vec![rule(None, All, 2_000_000)],
            Some("nvidia.com/gpu"),
        ),
        (
            "renamed replicas overflow the new name",
            vec![rule(Some("nvidia.com/gpu.shared"), First(1), 100_000)],
            Some("nvidia.com/gpu.shared"),
        ),
        (
            "two rules under one name are summed",
            vec![
                rule(Some("nvidia.com/gpu.shared"), half(0), 10_000),
                rule(Some("nvidia.com/gpu.shared"), half(4), 10_000),
            ],
            Some("nvidia.com/gpu.shared"),
        ),
        (
            "the same counts under two names fit",
            vec![
                rule(Some("nvidia.com/gpu.a"), half(0), 10_000),
                rule(Some("nvidia.com/gpu.b"), half(4), 10_000),
            ],
            None,
        ),
    ];
    for (case, rules, named) in cases {
        let got = plan(&builtin(), &sharing(rules));
        match (named, got) {
            (None, Ok(_)) => {}
            (
                Some(want),
                Err(PlanError::MessageTooLarge {
                    resource, limit, ..
                }),
            ) => {
                assert_eq!(resource, want, "{case}");
                assert_eq!(limit, KUBELET_MAX_RECEIVE_BYTES, "{case}");
            }
            (_, other) => panic!("{case}: {:?}", other.map(|p| p.len())),
        }
    }
}

#[test]
fn the_error_tells_the_operator_the_limit_and_what_to_lower() {
    let err = plan(
        &builtin(),
        &sharing(vec![rule(None, DeviceSelector::All, 2_000_000)]),
    )
    .expect_err("too large");
    let text = err.to_string();
    for part in [
        "nvidia.com/gpu",
        "16000000 devices",
        "4194304 bytes",
        "lower `replicas` for nvidia.com/gpu to at most 7960",
    ] {
        assert!(text.contains(part), "{part:?} in {text}");
    }
}
