//! Tests of `allocate::response` (tables of cases).
use std::collections::HashMap;

use super::*;
use crate::resources::{Device, MigPlacement, Resource, Sharing, SharingKind};

fn device(id: &str, uuid: &str, index: &str, paths: &[&str]) -> Device {
    Device {
        id: id.into(),
        uuid: uuid.into(),
        index: index.into(),
        gpu_uuid: uuid.split("::").next().unwrap_or(uuid).into(),
        gpu_index: 0,
        mig: None,
        replica: None,
        numa_node: None,
        paths: paths.iter().map(|p| p.to_string()).collect(),
    }
}

type Indexed = (Resource, HashMap<String, usize>);

fn resource(devices: Vec<Device>, sharing: Option<Sharing>) -> Indexed {
    let index = devices
        .iter()
        .enumerate()
        .map(|(i, d)| (d.id.clone(), i))
        .collect();
    (
        Resource {
            name: "nvidia.com/gpu".into(),
            devices,
            sharing,
        },
        index,
    )
}

fn gpus() -> Indexed {
    resource(
        vec![
            device("foo", "foo", "0", &["/dev/nvidia0"]),
            device("bar", "bar", "1", &["/dev/nvidia1"]),
        ],
        None,
    )
}

/// `per_gpu` replicas of each named GPU, IDs `<gpu>::<n>`.
fn replicated(gpus: &[&str], per_gpu: u32, sharing: Sharing) -> Indexed {
    let mut devices = Vec::new();
    for (minor, g) in gpus.iter().enumerate() {
        for n in 0..per_gpu {
            let mut d = device(
                &format!("{g}::{n}"),
                g,
                &minor.to_string(),
                &[&format!("/dev/nvidia{minor}")],
            );
            d.replica = Some(n);
            devices.push(d);
        }
    }
    resource(devices, Some(sharing))
}

fn replicas(fail: bool) -> Indexed {
    replicated(
        &["A", "B"],
        3,
        Sharing {
            kind: SharingKind::TimeSlicing,
            fail_requests_greater_than_one: fail,
        },
    )
}

fn envvar() -> AllocateOptions {
    AllocateOptions {
        envvar: true,
        ..Default::default()
    }
}

fn ids(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn visible_devices_are_deduplicated_in_request_order() {
    type Case = (
        &'static str,
        fn() -> Indexed,
        &'static [&'static str],
        &'static str,
    );
    let cases: [Case; 4] = [
        ("one gpu", gpus, &["foo"], "foo"),
        ("repeated gpu", gpus, &["foo", "bar", "foo"], "foo,bar"),
        ("reverse order", gpus, &["bar", "foo"], "bar,foo"),
        (
            "replicas map to physical",
            || replicas(false),
            &["A::0", "B::1", "A::2"],
            "A,B",
        ),
    ];
    for (name, build, request, want) in cases {
        let (r, index) = build();
        let resp = allocate(&r, &index, &ids(request), &envvar()).unwrap();
        assert_eq!(resp.envs["NVIDIA_VISIBLE_DEVICES"], want, "{name}");
        assert!(resp.mounts.is_empty() && resp.devices.is_empty(), "{name}");
    }
}

#[test]
fn index_strategy_uses_nvml_indices_including_mig() {
    let mut mig = device("MIG-x", "MIG-x", "1:2", &["/dev/nvidia1"]);
    mig.mig = Some(MigPlacement {
        gpu_instance_id: 3,
        compute_instance_id: 0,
    });
    let (r, index) = resource(vec![device("GPU-a", "GPU-a", "0", &[]), mig], None);
    let opts = AllocateOptions {
        id_strategy: DeviceIdStrategy::Index,
        ..envvar()
    };
    let resp = allocate(&r, &index, &ids(&["MIG-x", "GPU-a"]), &opts).unwrap();
    assert_eq!(resp.envs["NVIDIA_VISIBLE_DEVICES"], "1:2,0");
}

#[test]
fn volume_mounts_point_the_runtime_at_one_dev_null_per_device() {
    let (r, index) = gpus();
    for both in [false, true] {
        let opts = AllocateOptions {
            envvar: both,
            volume_mounts: true,
            ..Default::default()
        };
        let resp = allocate(&r, &index, &ids(&["bar", "foo"]), &opts).unwrap();
        assert_eq!(
            resp.envs["NVIDIA_VISIBLE_DEVICES"], VOLUME_MOUNTS_DIR,
            "envvar also: {both}"
        );
        let mounts: Vec<(&str, &str)> = resp
            .mounts
            .iter()
            .map(|m| (m.container_path.as_str(), m.host_path.as_str()))
            .collect();
        assert_eq!(
            mounts,
            [
                ("/var/run/nvidia-container-devices/bar", "/dev/null"),
                ("/var/run/nvidia-container-devices/foo", "/dev/null")
            ]
        );
    }
}

#[test]
fn device_specs_carry_control_nodes_then_deduplicated_device_nodes_under_dev_root() {
    let (r, index) = replicas(false);
    let opts = AllocateOptions {
        pass_device_specs: true,
        dev_root: "/run/nvidia/driver/".into(),
        control_nodes: ids(&["/dev/nvidiactl", "/dev/nvidia-uvm"]),
        ..envvar()
    };
    let resp = allocate(&r, &index, &ids(&["A::0", "A::1", "B::0"]), &opts).unwrap();
    let specs: Vec<(&str, &str, &str)> = resp
        .devices
        .iter()
        .map(|d| {
            (
                d.container_path.as_str(),
                d.host_path.as_str(),
                d.permissions.as_str(),
            )
        })
        .collect();
    assert_eq!(
        specs,
        [
            ("/dev/nvidiactl", "/run/nvidia/driver/dev/nvidiactl", "rw"),
            ("/dev/nvidia-uvm", "/run/nvidia/driver/dev/nvidia-uvm", "rw"),
            ("/dev/nvidia0", "/run/nvidia/driver/dev/nvidia0", "rw"),
            ("/dev/nvidia1", "/run/nvidia/driver/dev/nvidia1", "rw"),
        ]
    );
}

#[test]
fn refusals_use_nvidias_texts() {
    let (r, index) = gpus();
    let err = allocate(&r, &index, &ids(&["foo", "nope"]), &envvar()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid allocation request for \"nvidia.com/gpu\": invalid request: unknown device: nope"
    );
    let (r, index) = replicas(true);
    let err = allocate(&r, &index, &ids(&["A::0", "B::0"]), &envvar()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid allocation request for \"nvidia.com/gpu\": invalid request: maximum request size for shared resources is 1; found 2"
    );
}

#[test]
fn shared_request_limit_applies_only_when_asked_and_above_one() {
    let cases = [
        (false, &["A::0", "B::0"][..], true),
        (true, &["A::1"][..], true),
        (true, &["A::0", "B::1"][..], false),
    ];
    for (fail, request, ok) in cases {
        let (r, index) = replicas(fail);
        assert_eq!(
            allocate(&r, &index, &ids(request), &envvar()).is_ok(),
            ok,
            "fail={fail} {request:?}"
        );
    }
}

#[test]
fn mps_adds_pipe_directory_and_mounts() {
    let (mut r, index) = replicas(true);
    if let Some(s) = r.sharing.as_mut() {
        s.kind = SharingKind::Mps;
    }
    let opts = AllocateOptions {
        mps: Some(MpsPaths {
            root: "/run/nvidia/mps".into(),
        }),
        extra_envs: vec![("NVIDIA_GDS".into(), "enabled".into())],
        ..envvar()
    };
    let resp = allocate(&r, &index, &ids(&["B::2"]), &opts).unwrap();
    assert_eq!(
        resp.envs["CUDA_MPS_PIPE_DIRECTORY"],
        "/mps/nvidia.com/gpu/pipe"
    );
    assert_eq!(resp.envs["NVIDIA_GDS"], "enabled");
    assert_eq!(resp.envs["NVIDIA_VISIBLE_DEVICES"], "B");
    let mounts: Vec<(&str, &str)> = resp
        .mounts
        .iter()
        .map(|m| (m.container_path.as_str(), m.host_path.as_str()))
        .collect();
    assert_eq!(
        mounts,
        [
            (
                "/mps/nvidia.com/gpu/pipe",
                "/run/nvidia/mps/nvidia.com/gpu/pipe"
            ),
            ("/dev/shm", "/run/nvidia/mps/shm")
        ]
    );
}

/// NVIDIA's `TestValidateRequest` vectors (reference Appendix A).
#[test]
fn nvidia_validate_request_vectors() {
    let two = |kind, fail| {
        replicated(
            &["d0", "d1"],
            2,
            Sharing {
                kind,
                fail_requests_greater_than_one: fail,
            },
        )
    };
    let plain = || {
        resource(
            vec![
                device("device0", "device0", "0", &[]),
                device("device1", "device1", "1", &[]),
            ],
            None,
        )
    };
    let cases: Vec<(&str, Indexed, &[&str], bool)> = vec![
        ("none, known", plain(), &["device1"], true),
        ("none, unknown", plain(), &["device1", "device2"], false),
        (
            "time-slicing, one",
            two(SharingKind::TimeSlicing, false),
            &["d0::1"],
            true,
        ),
        (
            "time-slicing, two, flag unset",
            two(SharingKind::TimeSlicing, false),
            &["d0::1", "d1::0"],
            true,
        ),
        (
            "time-slicing, two, flag true",
            two(SharingKind::TimeSlicing, true),
            &["d0::1", "d1::0"],
            false,
        ),
        ("mps, one", two(SharingKind::Mps, false), &["d0::1"], true),
        (
            "mps, two, flag false",
            two(SharingKind::Mps, false),
            &["d0::1", "d1::0"],
            true,
        ),
        (
            "mps, two, flag true",
            two(SharingKind::Mps, true),
            &["d0::1", "d1::0"],
            false,
        ),
    ];
    for (name, (r, index), request, ok) in cases {
        assert_eq!(
            allocate(&r, &index, &ids(request), &envvar()).is_ok(),
            ok,
            "{name}"
        );
    }
}
