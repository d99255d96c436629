//! Tests of the CDI strategies in Allocate (tables of NVIDIA's cases).
use std::collections::HashMap;

use super::*;
use crate::allocate::response::{AllocateOptions, DeviceIdStrategy, VOLUME_MOUNTS_DIR, allocate};
use crate::resources::{Device, Resource};

fn device(id: &str, uuid: &str, index: &str) -> Device {
    Device {
        id: id.into(),
        uuid: uuid.into(),
        index: index.into(),
        gpu_uuid: uuid.into(),
        gpu_index: 0,
        mig: None,
        replica: None,
        numa_node: None,
        paths: vec!["/dev/nvidia0".into()],
    }
}

/// GPU-a with two replicas, GPU-b with one, a MIG device.
fn resource() -> (Resource, HashMap<String, usize>) {
    let devices = vec![
        device("GPU-a::0", "GPU-a", "0"),
        device("GPU-a::1", "GPU-a", "0"),
        device("GPU-b::0", "GPU-b", "1"),
        device("MIG-c", "MIG-c", "2:0"),
    ];
    let index = devices
        .iter()
        .enumerate()
        .map(|(i, d)| (d.id.clone(), i))
        .collect();
    let r = Resource {
        name: "nvidia.com/gpu".into(),
        devices,
        sharing: None,
    };
    (r, index)
}

fn cdi(annotations: bool, cri: bool, prefix: &str) -> Option<CdiAllocate> {
    Some(CdiAllocate {
        annotations,
        cri,
        annotation_prefix: prefix.into(),
        gated: vec![],
    })
}

fn request(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

const GPU: &str = "k8s.device-plugin.nvidia.com/gpu=";

#[test]
fn cdi_cri_names_each_physical_device_once_in_request_order() {
    // (ID strategy, request, cdi_devices)
    let cases = [
        (
            DeviceIdStrategy::Uuid,
            vec!["GPU-b::0", "GPU-a::1", "GPU-a::0"],
            vec!["GPU-b", "GPU-a"],
        ),
        (
            DeviceIdStrategy::Index,
            vec!["MIG-c", "GPU-a::0"],
            vec!["2:0", "0"],
        ),
        (DeviceIdStrategy::Uuid, vec!["MIG-c"], vec!["MIG-c"]),
    ];
    let (r, index) = resource();
    for (id_strategy, req, want) in cases {
        let opts = AllocateOptions {
            id_strategy,
            cdi: cdi(false, true, "cdi.k8s.io/"),
            ..Default::default()
        };
        let resp = allocate(&r, &index, &request(&req), &opts).unwrap();
        let got: Vec<String> = resp.cdi_devices.iter().map(|d| d.name.clone()).collect();
        let want: Vec<String> = want.iter().map(|n| format!("{GPU}{n}")).collect();
        assert_eq!(got, want, "{req:?}");
        // Only CDI: no env, no mounts, no device specs, no annotations.
        assert!(resp.envs.is_empty() && resp.mounts.is_empty() && resp.annotations.is_empty());
    }
}

#[test]
fn cdi_annotations_add_nvidias_one_annotation_under_the_prefix() {
    let (r, index) = resource();
    for prefix in ["cdi.k8s.io/", "custom.cdi.k8s.io/"] {
        let opts = AllocateOptions {
            cdi: cdi(true, false, prefix),
            ..Default::default()
        };
        let resp = allocate(&r, &index, &request(&["GPU-a::0", "GPU-b::0"]), &opts).unwrap();
        assert_eq!(resp.annotations.len(), 1);
        let (key, value) = resp.annotations.iter().next().unwrap();
        let id = key
            .strip_prefix(&format!("{prefix}nvidia-device-plugin_"))
            .unwrap();
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{key}");
        assert_eq!(key.len() - prefix.len(), 57);
        assert_eq!(value, &format!("{GPU}GPU-a,{GPU}GPU-b"));
        assert!(resp.cdi_devices.is_empty() && resp.envs.is_empty());
    }
}

#[test]
fn every_container_response_gets_its_own_annotation_key() {
    let (r, index) = resource();
    let opts = AllocateOptions {
        cdi: cdi(true, false, "cdi.k8s.io/"),
        ..Default::default()
    };
    let key = |_| {
        let resp = allocate(&r, &index, &request(&["MIG-c"]), &opts).unwrap();
        resp.annotations.keys().next().unwrap().clone()
    };
    let keys: std::collections::BTreeSet<String> = (0..50).map(key).collect();
    assert_eq!(keys.len(), 50);
}

#[test]
fn cdi_combines_with_envvar_and_volume_mounts_as_nvidia_does() {
    let (r, index) = resource();
    let req = request(&["GPU-a::0", "GPU-b::0"]);
    // envvar + cdi-cri: both the CDI names and NVIDIA_VISIBLE_DEVICES.
    let opts = AllocateOptions {
        envvar: true,
        cdi: cdi(false, true, "cdi.k8s.io/"),
        ..Default::default()
    };
    let resp = allocate(&r, &index, &req, &opts).unwrap();
    assert_eq!(resp.envs["NVIDIA_VISIBLE_DEVICES"], "GPU-a,GPU-b");
    assert_eq!(resp.cdi_devices.len(), 2);
    // volume-mounts + cdi-annotations: the directory wins the env, one /dev/null mount per device.
    let opts = AllocateOptions {
        volume_mounts: true,
        cdi: cdi(true, false, "cdi.k8s.io/"),
        ..Default::default()
    };
    let resp = allocate(&r, &index, &req, &opts).unwrap();
    assert_eq!(resp.envs["NVIDIA_VISIBLE_DEVICES"], VOLUME_MOUNTS_DIR);
    assert_eq!(resp.mounts.len(), 2);
    assert_eq!(resp.annotations.len(), 1);
    // Both CDI strategies at once: both outputs (NVIDIA allows it, not recommended).
    let opts = AllocateOptions {
        cdi: cdi(true, true, "cdi.k8s.io/"),
        ..Default::default()
    };
    let resp = allocate(&r, &index, &req, &opts).unwrap();
    assert_eq!((resp.annotations.len(), resp.cdi_devices.len()), (1, 2));
}

#[test]
fn device_specs_need_a_non_cdi_strategy() {
    let (r, index) = resource();
    let req = request(&["GPU-a::0"]);
    let only_cdi = AllocateOptions {
        pass_device_specs: true,
        cdi: cdi(false, true, "cdi.k8s.io/"),
        ..Default::default()
    };
    assert!(
        allocate(&r, &index, &req, &only_cdi)
            .unwrap()
            .devices
            .is_empty()
    );
    let with_envvar = AllocateOptions {
        envvar: true,
        ..only_cdi
    };
    assert_eq!(
        allocate(&r, &index, &req, &with_envvar)
            .unwrap()
            .devices
            .len(),
        1
    );
}

#[test]
fn gated_specs_follow_the_devices_in_both_strategies() {
    let (r, index) = resource();
    let mut c = cdi(true, true, "cdi.k8s.io/").unwrap();
    c.gated = vec![
        "k8s.device-plugin.nvidia.com/gds=all".into(),
        "k8s.device-plugin.nvidia.com/mofed=all".into(),
    ];
    let opts = AllocateOptions {
        cdi: Some(c),
        ..Default::default()
    };
    let resp = allocate(&r, &index, &request(&["MIG-c"]), &opts).unwrap();
    let want = format!(
        "{GPU}MIG-c,k8s.device-plugin.nvidia.com/gds=all,k8s.device-plugin.nvidia.com/mofed=all"
    );
    assert_eq!(resp.annotations.values().next().unwrap(), &want);
    let names: Vec<&str> = resp.cdi_devices.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names.join(","), want);
}

#[test]
fn slashes_in_an_id_become_underscores_in_the_key() {
    assert_eq!(
        annotation_key("cdi.k8s.io/", "a/b"),
        "cdi.k8s.io/nvidia-device-plugin_a_b"
    );
}
