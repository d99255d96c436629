use super::*;
use crate::gpu::{Gpu, MigDevice};

fn gpu(index: u32, mig: &[(&str, u32, u32)]) -> Gpu {
    Gpu {
        index,
        uuid: format!("GPU-{index}"),
        name: "NVIDIA A100".into(),
        memory_mib: 81920,
        pci_bus_id: format!("0000:0{index}:00.0"),
        minor: index,
        numa_node: None,
        compute_capability: None,
        nvlinks: vec![],
        mig_enabled: !mig.is_empty(),
        mig_devices: mig
            .iter()
            .map(|(uuid, gi, cap)| MigDevice {
                uuid: uuid.to_string(),
                profile: "1g.10gb".into(),
                gpu_instance_id: *gi,
                compute_instance_id: 0,
                memory_mib: 9856,
                cap_paths: vec![
                    format!("/dev/nvidia-caps/nvidia-cap{cap}"),
                    format!("/dev/nvidia-caps/nvidia-cap{}", cap + 1),
                ],
            })
            .collect(),
    }
}

fn inventory() -> Inventory {
    Inventory {
        driver_version: Some("550.54.15".into()),
        cuda_driver_version: None,
        gpus: vec![gpu(0, &[]), gpu(1, &[("MIG-a", 7, 66), ("MIG-b", 8, 75)])],
        faults: vec![],
    }
}

const ROOT: &str = "/driver-root";

fn node(found: &str, minor: u32, mode: u32, gid: u32) -> FoundNode {
    FoundNode {
        found: format!("{ROOT}{found}"),
        info: Some(NodeInfo {
            major: 195,
            minor,
            mode,
            gid,
        }),
    }
}

fn files() -> DriverFiles {
    let lib = format!("{ROOT}/usr/lib/x86_64-linux-gnu");
    let mut nodes = BTreeMap::new();
    for (p, minor) in [
        ("/dev/nvidia0", 0),
        ("/dev/nvidia1", 1),
        ("/dev/nvidiactl", 255),
    ] {
        nodes.insert(p.to_string(), node(p, minor, 0o666, 0));
    }
    for cap in [66, 67, 75, 76] {
        let p = format!("/dev/nvidia-caps/nvidia-cap{cap}");
        nodes.insert(p.clone(), node(&p, cap, 0o400, 0));
    }
    DriverFiles {
        version: "550.54.15".into(),
        lib_dirs: vec![lib.clone()],
        libraries: vec![
            format!("{lib}/libcuda.so.550.54.15"),
            format!("{lib}/libnvidia-ml.so.550.54.15"),
            format!("{lib}/vdpau/libvdpau_nvidia.so.550.54.15"),
        ],
        links: vec![("libcuda.so.550.54.15".into(), format!("{lib}/libcuda.so.1"))],
        binaries: vec![format!("{ROOT}/usr/bin/nvidia-smi")],
        firmware: vec![format!(
            "{ROOT}/lib/firmware/nvidia/550.54.15/gsp_ga10x.bin"
        )],
        ipc_sockets: vec![format!("{ROOT}/run/nvidia-persistenced/socket")],
        nodes,
        drm: BTreeMap::new(),
    }
}

fn options(id: DeviceIdStrategy, mig: MigStrategy) -> CdiOptions {
    CdiOptions {
        roots: Roots {
            container_driver_root: ROOT.into(),
            container_dev_root: ROOT.into(),
            host_driver_root: "/".into(),
            host_dev_root: "/".into(),
        },
        hook_path: "/usr/bin/nvidia-ctk".into(),
        id_strategy: id,
        mig_strategy: mig,
        disabled_hooks: vec![],
        no_additional_gids: false,
    }
}

fn device<'a>(spec: &'a Spec, name: &str) -> &'a Device {
    spec.devices.iter().find(|d| d.name == name).unwrap()
}

fn node_paths(d: &Device) -> Vec<&str> {
    d.container_edits
        .device_nodes
        .iter()
        .map(|n| n.path.as_str())
        .collect()
}

#[test]
fn devices_are_named_by_the_id_strategy_sorted_with_all() {
    // (id strategy, MIG strategy, names)
    let cases = [
        (
            DeviceIdStrategy::Uuid,
            MigStrategy::Mixed,
            vec!["GPU-0", "MIG-a", "MIG-b", "all"],
        ),
        (
            DeviceIdStrategy::Index,
            MigStrategy::Mixed,
            vec!["0", "1:0", "1:1", "all"],
        ),
        (
            DeviceIdStrategy::Uuid,
            MigStrategy::Single,
            vec!["GPU-0", "MIG-a", "MIG-b", "all"],
        ),
        // With MIG strategy none the MIG-enabled GPU is advertised whole: it is named too.
        (
            DeviceIdStrategy::Uuid,
            MigStrategy::None,
            vec!["GPU-0", "GPU-1", "MIG-a", "MIG-b", "all"],
        ),
        (
            DeviceIdStrategy::Index,
            MigStrategy::None,
            vec!["0", "1", "1:0", "1:1", "all"],
        ),
    ];
    for (id, mig, want) in cases {
        let spec = gpu_spec(&inventory(), &files(), &options(id, mig)).unwrap();
        let names: Vec<&str> = spec.devices.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, want, "{id:?} {mig:?}");
        assert_eq!(spec.kind, "k8s.device-plugin.nvidia.com/gpu");
    }
}

#[test]
fn ten_gpus_sort_in_byte_order_as_nvcdi_does() {
    let inv = Inventory {
        gpus: (0..11).map(|i| gpu(i, &[])).collect(),
        ..Inventory::default()
    };
    let spec = gpu_spec(
        &inv,
        &files(),
        &options(DeviceIdStrategy::Index, MigStrategy::None),
    )
    .unwrap();
    let names: Vec<&str> = spec.devices.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names[..4], ["0", "1", "10", "2"]);
}

#[test]
fn a_mig_device_gets_its_parents_node_and_its_two_capability_nodes() {
    let spec = gpu_spec(
        &inventory(),
        &files(),
        &options(DeviceIdStrategy::Uuid, MigStrategy::Mixed),
    )
    .unwrap();
    assert_eq!(
        node_paths(device(&spec, "MIG-b")),
        [
            "/dev/nvidia1",
            "/dev/nvidia-caps/nvidia-cap75",
            "/dev/nvidia-caps/nvidia-cap76"
        ]
    );
    assert_eq!(node_paths(device(&spec, "GPU-0")), ["/dev/nvidia0"]);
    let all = node_paths(device(&spec, "all"));
    assert_eq!(all.len(), 6, "{all:?}");
    let cap = &device(&spec, "MIG-b").container_edits.device_nodes[1];
    assert_eq!(
        cap,
        &DeviceNode {
            path: "/dev/nvidia-caps/nvidia-cap75".into(),
            host_path: "/dev/nvidia-caps/nvidia-cap75".into(),
            major: Some(195),
            minor: Some(75),
            file_mode: Some(0o400),
            permissions: "rwm".into(),
            gid: None,
        }
    );
}

#[test]
fn common_edits_hold_env_control_nodes_and_mounts_translated_to_the_host() {
    let spec = gpu_spec(
        &inventory(),
        &files(),
        &options(DeviceIdStrategy::Uuid, MigStrategy::Mixed),
    )
    .unwrap();
    let e = &spec.container_edits;
    assert_eq!(
        e.env,
        [
            "NVIDIA_CTK_LIBCUDA_DIR=/usr/lib/x86_64-linux-gnu",
            "NVIDIA_VISIBLE_DEVICES=void"
        ]
    );
    assert_eq!(e.device_nodes.len(), 1);
    assert_eq!(e.device_nodes[0].path, "/dev/nvidiactl");
    let mounts: Vec<(&str, &str, &str)> = e
        .mounts
        .iter()
        .map(|m| {
            (
                m.host_path.as_str(),
                m.container_path.as_str(),
                m.options[0].as_str(),
            )
        })
        .collect();
    // Sorted by depth, then lexically; IPC sockets are not read-only.
    assert_eq!(
        mounts,
        [
            (
                "/run/nvidia-persistenced/socket",
                "/run/nvidia-persistenced/socket",
                "nosuid"
            ),
            ("/usr/bin/nvidia-smi", "/usr/bin/nvidia-smi", "ro"),
            (
                "/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.15",
                "/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.15",
                "ro"
            ),
            (
                "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.550.54.15",
                "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.550.54.15",
                "ro"
            ),
            (
                "/lib/firmware/nvidia/550.54.15/gsp_ga10x.bin",
                "/lib/firmware/nvidia/550.54.15/gsp_ga10x.bin",
                "ro"
            ),
            (
                "/usr/lib/x86_64-linux-gnu/vdpau/libvdpau_nvidia.so.550.54.15",
                "/usr/lib/x86_64-linux-gnu/vdpau/libvdpau_nvidia.so.550.54.15",
                "ro"
            ),
        ]
    );
    assert_eq!(
        e.mounts[1].options,
        ["ro", "nosuid", "nodev", "rbind", "rprivate"]
    );
    assert_eq!(
        e.mounts[0].options,
        ["nosuid", "nodev", "rbind", "rprivate", "noexec"]
    );
}

#[test]
fn hooks_come_in_nvcdis_order_with_their_arguments() {
    let spec = gpu_spec(
        &inventory(),
        &files(),
        &options(DeviceIdStrategy::Uuid, MigStrategy::Mixed),
    )
    .unwrap();
    let hooks: Vec<Vec<&str>> = spec
        .container_edits
        .hooks
        .iter()
        .map(|h| h.args.iter().map(String::as_str).collect())
        .collect();
    let lib = "/usr/lib/x86_64-linux-gnu";
    assert_eq!(
        hooks,
        vec![
            vec![
                "nvidia-ctk",
                "hook",
                "create-symlinks",
                "--link",
                &format!("libcuda.so.550.54.15::{lib}/libcuda.so.1")
            ],
            vec![
                "nvidia-ctk",
                "hook",
                "enable-cuda-compat",
                "--host-driver-version=550.54.15"
            ],
            vec![
                "nvidia-ctk",
                "hook",
                "update-ldcache",
                "--folder",
                lib,
                "--folder",
                &format!("{lib}/vdpau")
            ],
            vec!["nvidia-ctk", "hook", "disable-device-node-modification"],
            vec!["nvidia-ctk", "hook", "update-application-profile"],
        ]
    );
    for h in &spec.container_edits.hooks {
        assert_eq!(h.hook_name, "createContainer");
        assert_eq!(h.path, "/usr/bin/nvidia-ctk");
        assert_eq!(h.env, ["NVIDIA_CTK_DEBUG=false"]);
    }
}

#[test]
fn another_hook_binary_and_disabled_hooks_change_the_hooks() {
    // (hook path, disabled, first hook's argv, number of hooks)
    let cases: [(&str, &[&str], &[&str], usize); 3] = [
        (
            "/opt/bin/nvidia-cdi-hook",
            &[],
            &["nvidia-cdi-hook", "create-symlinks"],
            5,
        ),
        (
            "/usr/bin/nvidia-ctk",
            &["create-symlinks", "update-application-profile"],
            &["nvidia-ctk", "hook", "enable-cuda-compat"],
            3,
        ),
        ("/usr/bin/nvidia-ctk", &["all"], &[], 0),
    ];
    for (path, disabled, first, count) in cases {
        let mut o = options(DeviceIdStrategy::Uuid, MigStrategy::Mixed);
        o.hook_path = path.into();
        o.disabled_hooks = disabled.iter().map(|s| s.to_string()).collect();
        let spec = gpu_spec(&inventory(), &files(), &o).unwrap();
        let hooks = &spec.container_edits.hooks;
        assert_eq!(hooks.len(), count, "{path} {disabled:?}");
        if let Some(h) = hooks.first() {
            assert_eq!(h.path, path);
            assert_eq!(&h.args[..first.len()], first);
        }
    }
}

#[test]
fn cdi_version_is_the_minimum_the_content_needs() {
    let mut plain = options(DeviceIdStrategy::Uuid, MigStrategy::Mixed);
    plain.roots = Roots {
        container_driver_root: "/".into(),
        container_dev_root: "/".into(),
        host_driver_root: "/".into(),
        host_dev_root: "/".into(),
    };
    let mut f = files();
    for n in f.nodes.values_mut() {
        n.found = n.found.trim_start_matches(ROOT).to_string();
    }
    let mut grouped = f.clone();
    if let Some(n) = grouped.nodes.get_mut("/dev/nvidia0") {
        n.info = Some(NodeInfo {
            major: 195,
            minor: 0,
            mode: 0o660,
            gid: 44,
        });
    }
    let cases = [
        ("uuid names, no hostPath", f.clone(), plain.clone(), "0.3.0"),
        (
            "index names",
            f.clone(),
            CdiOptions {
                id_strategy: DeviceIdStrategy::Index,
                ..plain.clone()
            },
            "0.5.0",
        ),
        (
            "hostPath from the root rewrite",
            files(),
            options(DeviceIdStrategy::Uuid, MigStrategy::Mixed),
            "0.5.0",
        ),
        ("a group-only node", grouped, plain.clone(), "0.7.0"),
    ];
    for (name, files, opts, want) in cases {
        let spec = gpu_spec(&inventory(), &files, &opts).unwrap();
        assert_eq!(spec.cdi_version, want, "{name}");
    }
}

#[test]
fn a_node_only_its_group_may_use_adds_that_group() {
    let mut f = files();
    if let Some(n) = f.nodes.get_mut("/dev/nvidia0") {
        n.info = Some(NodeInfo {
            major: 195,
            minor: 0,
            mode: 0o660,
            gid: 44,
        });
    }
    let spec = gpu_spec(
        &inventory(),
        &f,
        &options(DeviceIdStrategy::Uuid, MigStrategy::Mixed),
    )
    .unwrap();
    let d = &device(&spec, "GPU-0").container_edits;
    assert_eq!(d.additional_gids, [44]);
    assert_eq!(d.device_nodes[0].gid, Some(44));
    assert_eq!(d.device_nodes[0].file_mode, Some(0o660));
    // Feature flag no-additional-gids-for-device-nodes: the node keeps its gid, no group is added.
    let mut o = options(DeviceIdStrategy::Uuid, MigStrategy::Mixed);
    o.no_additional_gids = true;
    let spec = gpu_spec(&inventory(), &f, &o).unwrap();
    let d = &device(&spec, "GPU-0").container_edits;
    assert!(d.additional_gids.is_empty());
    assert_eq!(d.device_nodes[0].gid, Some(44));
}

#[test]
fn a_missing_node_keeps_its_path_and_host_path_only() {
    let mut f = files();
    f.nodes.remove("/dev/nvidia0");
    let spec = gpu_spec(
        &inventory(),
        &f,
        &options(DeviceIdStrategy::Uuid, MigStrategy::Mixed),
    )
    .unwrap();
    let n = &device(&spec, "GPU-0").container_edits.device_nodes[0];
    assert_eq!(
        (n.path.as_str(), n.host_path.as_str(), n.major),
        ("/dev/nvidia0", "/dev/nvidia0", None)
    );
}

#[test]
fn names_cdi_refuses_and_an_empty_node_are_errors() {
    let mut inv = inventory();
    inv.gpus[1].mig_devices[0].uuid = "MIG-GPU-1/7/0".into();
    let e = gpu_spec(
        &inv,
        &files(),
        &options(DeviceIdStrategy::Uuid, MigStrategy::Mixed),
    )
    .unwrap_err();
    assert!(
        matches!(e, CdiError::InvalidName(ref n) if n == "MIG-GPU-1/7/0"),
        "{e}"
    );
    let e = gpu_spec(
        &Inventory::default(),
        &files(),
        &options(DeviceIdStrategy::Uuid, MigStrategy::Mixed),
    )
    .unwrap_err();
    assert!(matches!(e, CdiError::NoDevices), "{e}");
}

#[test]
fn json_keys_follow_nvcdis_struct_order() {
    let mut f = files();
    f.nodes.clear();
    f.libraries.clear();
    f.links.clear();
    f.binaries.clear();
    f.firmware.clear();
    f.ipc_sockets.clear();
    f.lib_dirs.clear();
    let inv = Inventory {
        gpus: vec![gpu(0, &[])],
        ..Inventory::default()
    };
    let mut o = options(DeviceIdStrategy::Uuid, MigStrategy::Mixed);
    o.disabled_hooks = vec!["all".into()];
    let json = gpu_spec(&inv, &f, &o).unwrap().to_json();
    assert_eq!(
        json,
        r#"{"cdiVersion":"0.5.0","kind":"k8s.device-plugin.nvidia.com/gpu","devices":[{"name":"GPU-0","containerEdits":{"deviceNodes":[{"path":"/dev/nvidia0","hostPath":"/dev/nvidia0","permissions":"rwm"}]}},{"name":"all","containerEdits":{"deviceNodes":[{"path":"/dev/nvidia0","hostPath":"/dev/nvidia0","permissions":"rwm"}]}}],"containerEdits":{"env":["NVIDIA_CTK_LIBCUDA_DIR=","NVIDIA_VISIBLE_DEVICES=void"]}}"#
    );
}

#[test]
fn a_gpus_drm_nodes_and_by_path_links_are_its_own_edits() {
    let mut f = files();
    for (p, minor) in [("/dev/dri/card1", 1), ("/dev/dri/renderD128", 128)] {
        let mut n = node(p, minor, 0o660, 44);
        n.info = n.info.map(|i| NodeInfo { major: 226, ..i });
        f.nodes.insert(p.into(), n);
    }
    let link = format!("{ROOT}/dev/dri/by-path/pci-0000:00:00.0-card");
    f.drm.insert(
        "0000:00:00.0".into(),
        Drm {
            nodes: vec!["/dev/dri/card1".into(), "/dev/dri/renderD128".into()],
            links: vec![("../card1".into(), link.clone())],
        },
    );
    let spec = gpu_spec(
        &inventory(),
        &f,
        &options(DeviceIdStrategy::Uuid, MigStrategy::Mixed),
    )
    .unwrap();
    let d = &device(&spec, "GPU-0").container_edits;
    assert_eq!(
        node_paths(device(&spec, "GPU-0")),
        ["/dev/nvidia0", "/dev/dri/card1", "/dev/dri/renderD128"]
    );
    assert_eq!(d.additional_gids, [44]);
    assert_eq!(d.hooks.len(), 1);
    // The link keeps the container dev-root prefix, as nvcdi's test expects.
    assert_eq!(
        d.hooks[0].args,
        [
            "nvidia-ctk",
            "hook",
            "create-symlinks",
            "--link",
            &format!("../card1::{link}")
        ]
    );
    assert_eq!(device(&spec, "all").container_edits.hooks, d.hooks);
    assert!(device(&spec, "MIG-a").container_edits.hooks.is_empty());
    assert_eq!(spec.cdi_version, "0.7.0");
}
