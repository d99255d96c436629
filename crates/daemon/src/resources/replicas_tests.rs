//! Tests of `resources::replicas` (tables of cases).
use super::*;
use crate::gpu::{Gpu, Inventory, MigDevice};
use crate::resources::{MigStrategy, PlanOptions, plan};

fn uuid(i: u32) -> String {
    format!("GPU-00000000-0000-0000-0000-00000000000{i}")
}

fn mig_uuid(gpu: u32, slot: u32) -> String {
    format!("MIG-00000000-0000-0000-0000-0000000000{gpu}{slot}")
}

fn gpu(index: u32, migs: u32) -> Gpu {
    Gpu {
        index,
        uuid: uuid(index),
        name: "NVIDIA A100-SXM4-80GB".into(),
        memory_mib: 81920,
        pci_bus_id: format!("0000:0{index}:00.0"),
        minor: index,
        numa_node: Some(index % 2),
        compute_capability: Some("8.0".into()),
        nvlinks: vec![],
        mig_enabled: migs > 0,
        mig_devices: (0..migs)
            .map(|slot| MigDevice {
                uuid: mig_uuid(index, slot),
                profile: "1g.10gb".into(),
                gpu_instance_id: 7 + slot,
                compute_instance_id: 0,
                memory_mib: 9856,
                cap_paths: vec![format!("/dev/nvidia-caps/nvidia-cap{slot}")],
            })
            .collect(),
    }
}

fn node(gpus: Vec<Gpu>) -> Inventory {
    Inventory {
        driver_version: None,
        cuda_driver_version: None,
        gpus,
        faults: Vec::new(),
    }
}

fn rule(name: &str, rename: Option<&str>, devices: DeviceSelector, replicas: u32) -> ReplicaRule {
    ReplicaRule {
        name: format!("nvidia.com/{name}"),
        rename: rename.map(|r| format!("nvidia.com/{r}")),
        devices,
        replicas,
    }
}

fn options(mig: MigStrategy, kind: SharingKind, rules: Vec<ReplicaRule>) -> PlanOptions {
    PlanOptions {
        mig_strategy: mig,
        sharing: Some(SharingOptions {
            kind,
            fail_requests_greater_than_one: false,
            rules,
        }),
        ..Default::default()
    }
}

fn time_slicing(rules: Vec<ReplicaRule>) -> PlanOptions {
    options(MigStrategy::None, SharingKind::TimeSlicing, rules)
}

/// Resource name → device IDs.
type Layout = Vec<(String, Vec<String>)>;

fn ids(p: &Plan) -> Layout {
    p.values()
        .map(|r| {
            (
                r.name.clone(),
                r.devices.iter().map(|d| d.id.clone()).collect(),
            )
        })
        .collect()
}

fn want(rows: &[(&str, Vec<String>)]) -> Layout {
    rows.iter()
        .map(|(n, v)| (format!("nvidia.com/{n}"), v.clone()))
        .collect()
}

fn copies(id: &str, n: u32) -> Vec<String> {
    (0..n).map(|i| format!("{id}::{i}")).collect()
}

fn cat(parts: &[Vec<String>]) -> Vec<String> {
    parts.concat()
}

#[test]
fn replica_layouts() {
    let two = || node(vec![gpu(0, 0), gpu(1, 0)]);
    let g = |i| vec![uuid(i)];
    let cases: Vec<(&str, Inventory, PlanOptions, Layout)> = vec![
        (
            "all devices, name kept",
            two(),
            time_slicing(vec![rule("gpu", None, DeviceSelector::All, 3)]),
            want(&[("gpu", cat(&[copies(&uuid(0), 3), copies(&uuid(1), 3)]))]),
        ),
        (
            "renamed to gpu.shared",
            two(),
            time_slicing(vec![rule(
                "gpu",
                Some("gpu.shared"),
                DeviceSelector::All,
                2,
            )]),
            want(&[(
                "gpu.shared",
                cat(&[copies(&uuid(0), 2), copies(&uuid(1), 2)]),
            )]),
        ),
        (
            "a count takes the first devices, the rest stay",
            two(),
            time_slicing(vec![rule("gpu", None, DeviceSelector::First(1), 2)]),
            want(&[("gpu", cat(&[copies(&uuid(0), 2), g(1)]))]),
        ),
        (
            "a count beyond the node takes every device",
            two(),
            time_slicing(vec![rule("gpu", None, DeviceSelector::First(9), 2)]),
            want(&[("gpu", cat(&[copies(&uuid(0), 2), copies(&uuid(1), 2)]))]),
        ),
        (
            "renamed subset leaves the rest under the original name",
            two(),
            time_slicing(vec![rule(
                "gpu",
                Some("gpu.shared"),
                DeviceSelector::Refs(vec![DeviceRef::GpuIndex(1)]),
                2,
            )]),
            want(&[("gpu", g(0)), ("gpu.shared", copies(&uuid(1), 2))]),
        ),
        (
            "per-GPU replica counts from disjoint entries",
            two(),
            time_slicing(vec![
                rule(
                    "gpu",
                    None,
                    DeviceSelector::Refs(vec![DeviceRef::GpuIndex(0)]),
                    2,
                ),
                rule(
                    "gpu",
                    None,
                    DeviceSelector::Refs(vec![DeviceRef::Uuid(uuid(1))]),
                    4,
                ),
            ]),
            want(&[("gpu", cat(&[copies(&uuid(0), 2), copies(&uuid(1), 4)]))]),
        ),
        (
            "names absent on the node are skipped",
            two(),
            time_slicing(vec![rule("mig-1g.10gb", None, DeviceSelector::All, 2)]),
            want(&[("gpu", cat(&[g(0), g(1)]))]),
        ),
        (
            "refs matching nothing select nothing",
            two(),
            time_slicing(vec![rule(
                "gpu",
                None,
                DeviceSelector::Refs(vec![DeviceRef::GpuIndex(7)]),
                2,
            )]),
            want(&[("gpu", cat(&[g(0), g(1)]))]),
        ),
        (
            "MIG devices under mixed, by MIG index and legacy UUID",
            node(vec![gpu(0, 3)]),
            options(
                MigStrategy::Mixed,
                SharingKind::TimeSlicing,
                vec![rule(
                    "mig-1g.10gb",
                    None,
                    DeviceSelector::Refs(vec![
                        DeviceRef::MigIndex { gpu: 0, slot: 1 },
                        DeviceRef::LegacyMig {
                            gpu_uuid: uuid(0),
                            gpu_instance_id: 9,
                            compute_instance_id: 0,
                        },
                    ]),
                    2,
                )],
            ),
            want(&[(
                "mig-1g.10gb",
                cat(&[
                    vec![mig_uuid(0, 0)],
                    copies(&mig_uuid(0, 1), 2),
                    copies(&mig_uuid(0, 2), 2),
                ]),
            )]),
        ),
        (
            "a GPU UUID selects the MIG devices on it",
            node(vec![gpu(0, 1), gpu(1, 1)]),
            options(
                MigStrategy::Mixed,
                SharingKind::TimeSlicing,
                vec![rule(
                    "mig-1g.10gb",
                    Some("mig-1g.10gb.shared"),
                    DeviceSelector::Refs(vec![DeviceRef::Uuid(uuid(1))]),
                    2,
                )],
            ),
            want(&[
                ("mig-1g.10gb", vec![mig_uuid(0, 0)]),
                ("mig-1g.10gb.shared", copies(&mig_uuid(1, 0), 2)),
            ]),
        ),
        (
            "MIG devices under single",
            node(vec![gpu(0, 2)]),
            options(
                MigStrategy::Single,
                SharingKind::TimeSlicing,
                vec![rule("gpu", None, DeviceSelector::All, 2)],
            ),
            want(&[(
                "gpu",
                cat(&[copies(&mig_uuid(0, 0), 2), copies(&mig_uuid(0, 1), 2)]),
            )]),
        ),
    ];
    for (what, inventory, options, expected) in cases {
        let got = plan(&inventory, &options).map(|p| ids(&p));
        assert_eq!(got, Ok(expected), "{what}");
    }
}

#[test]
fn copies_keep_the_device_and_number_their_replica() {
    let got = plan(
        &node(vec![gpu(1, 0)]),
        &time_slicing(vec![rule("gpu", None, DeviceSelector::All, 2)]),
    )
    .unwrap();
    let resource = &got["nvidia.com/gpu"];
    assert_eq!(
        resource.sharing,
        Some(Sharing {
            kind: SharingKind::TimeSlicing,
            fail_requests_greater_than_one: false
        })
    );
    let second = &resource.devices[1];
    assert_eq!(second.id, format!("{}::1", uuid(1)));
    assert_eq!(second.replica, Some(1));
    assert_eq!(
        (
            second.uuid.as_str(),
            second.index.as_str(),
            second.numa_node
        ),
        (uuid(1).as_str(), "1", Some(1))
    );
    assert_eq!(second.paths, vec!["/dev/nvidia1".to_string()]);
}

#[test]
fn unshared_resources_have_no_sharing() {
    let opts = time_slicing(vec![rule(
        "gpu",
        Some("gpu.shared"),
        DeviceSelector::First(1),
        2,
    )]);
    let got = plan(&node(vec![gpu(0, 0), gpu(1, 0)]), &opts).unwrap();
    assert_eq!(got["nvidia.com/gpu"].sharing, None);
    assert!(got["nvidia.com/gpu.shared"].sharing.is_some());
    assert_eq!(
        plan(&node(vec![gpu(0, 0)]), &PlanOptions::default()).unwrap()["nvidia.com/gpu"].sharing,
        None
    );
}

#[test]
fn mps_sets_its_kind_on_whole_gpus() {
    let mut opts = options(
        MigStrategy::None,
        SharingKind::Mps,
        vec![rule("gpu", None, DeviceSelector::All, 2)],
    );
    if let Some(s) = &mut opts.sharing {
        s.fail_requests_greater_than_one = true;
    }
    let got = plan(&node(vec![gpu(0, 0)]), &opts).unwrap();
    let want = Some(Sharing {
        kind: SharingKind::Mps,
        fail_requests_greater_than_one: true,
    });
    assert_eq!(got["nvidia.com/gpu"].sharing, want);
}

#[test]
fn planning_errors() {
    let cases: Vec<(&str, Inventory, PlanOptions, PlanError)> = vec![
        (
            "MPS on MIG devices",
            node(vec![gpu(0, 1)]),
            options(
                MigStrategy::Mixed,
                SharingKind::Mps,
                vec![rule("mig-1g.10gb", None, DeviceSelector::All, 2)],
            ),
            PlanError::Sharing(ReplicaError::MpsOnMig),
        ),
        (
            "two entries select one device",
            node(vec![gpu(0, 0), gpu(1, 0)]),
            time_slicing(vec![
                rule("gpu", None, DeviceSelector::First(2), 2),
                rule(
                    "gpu",
                    None,
                    DeviceSelector::Refs(vec![DeviceRef::Uuid(uuid(1))]),
                    4,
                ),
            ]),
            PlanError::Sharing(ReplicaError::Overlap {
                resource: "nvidia.com/gpu".into(),
                device: format!("1 ({})", uuid(1)),
            }),
        ),
    ];
    for (what, inventory, options, expected) in cases {
        assert_eq!(plan(&inventory, &options), Err(expected.clone()), "{what}");
        assert!(!expected.to_string().is_empty());
    }
}

#[test]
fn overlap_error_names_resource_and_device() {
    let e = PlanError::Sharing(ReplicaError::Overlap {
        resource: "nvidia.com/gpu".into(),
        device: "1 (GPU-x)".into(),
    });
    assert_eq!(
        e.to_string(),
        "device 1 (GPU-x) of nvidia.com/gpu is selected by more than one sharing entry; give each device to one entry only"
    );
}

#[test]
fn replica_ids_longer_than_63_are_rejected() {
    let mut g = gpu(0, 0);
    g.uuid = format!("GPU-{}", "a".repeat(56)); // 60 chars; "::10" makes 64
    let got = plan(
        &node(vec![g.clone()]),
        &time_slicing(vec![rule("gpu", None, DeviceSelector::All, 11)]),
    );
    assert_eq!(
        got,
        Err(PlanError::IdTooLong {
            resource: "nvidia.com/gpu".into(),
            id: format!("{}::10", g.uuid),
            len: 64
        })
    );
}
