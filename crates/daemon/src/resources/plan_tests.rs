//! Tests of `resources::plan` (tables of cases).
use super::*;
use crate::gpu::{Gpu, Inventory, MigDevice};
use crate::resources::{MigStrategy, NamedPattern, PlanError};

fn gpu(index: u32, name: &str, migs: Option<&[&str]>) -> Gpu {
    Gpu {
        index,
        uuid: format!("GPU-{index}"),
        name: name.into(),
        memory_mib: 81920,
        pci_bus_id: format!("0000:0{index}:00.0"),
        minor: index,
        numa_node: Some(index / 2),
        compute_capability: Some("8.0".into()),
        nvlinks: vec![],
        mig_enabled: migs.is_some(),
        mig_devices: migs
            .unwrap_or(&[])
            .iter()
            .enumerate()
            .map(|(j, profile)| MigDevice {
                uuid: format!("MIG-{index}-{j}"),
                profile: profile.to_string(),
                gpu_instance_id: j as u32 + 1,
                compute_instance_id: 0,
                memory_mib: 9856,
                cap_paths: vec![format!(
                    "/dev/nvidia-caps/nvidia-cap{}",
                    10 * index + j as u32
                )],
            })
            .collect(),
    }
}

fn inv(gpus: Vec<Gpu>) -> Inventory {
    Inventory {
        driver_version: None,
        cuda_driver_version: None,
        gpus,
        faults: Vec::new(),
    }
}

fn opts(strategy: MigStrategy) -> PlanOptions {
    PlanOptions {
        mig_strategy: strategy,
        ..Default::default()
    }
}

type Summary = Vec<(String, Vec<String>)>;

/// Resource name → device IDs.
fn summary(p: &Plan) -> Summary {
    p.iter()
        .map(|(k, r)| (k.clone(), r.devices.iter().map(|d| d.id.clone()).collect()))
        .collect()
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[test]
fn strategies_map_devices_to_resources() {
    let a100 = "NVIDIA A100-SXM4-80GB";
    let mixed_node = || {
        inv(vec![
            gpu(0, a100, None),
            gpu(
                1,
                a100,
                Some(&["1g.10gb", "1g.10gb+me", "2g.20gb", "1g.10gb"]),
            ),
        ])
    };
    let single_node = || {
        inv(vec![
            gpu(0, a100, Some(&["1g.10gb", "1g.10gb"])),
            gpu(1, a100, Some(&["1g.10gb"])),
        ])
    };
    let cases: Vec<(&str, Inventory, MigStrategy, Summary)> = vec![
        (
            "none ignores MIG",
            mixed_node(),
            MigStrategy::None,
            vec![("nvidia.com/gpu".into(), s(&["GPU-0", "GPU-1"]))],
        ),
        (
            "mixed names profiles, + becomes .",
            mixed_node(),
            MigStrategy::Mixed,
            vec![
                ("nvidia.com/gpu".into(), s(&["GPU-0"])),
                ("nvidia.com/mig-1g.10gb".into(), s(&["MIG-1-0", "MIG-1-3"])),
                ("nvidia.com/mig-1g.10gb.me".into(), s(&["MIG-1-1"])),
                ("nvidia.com/mig-2g.20gb".into(), s(&["MIG-1-2"])),
            ],
        ),
        (
            "single advertises MIG devices as gpu",
            single_node(),
            MigStrategy::Single,
            vec![(
                "nvidia.com/gpu".into(),
                s(&["MIG-0-0", "MIG-0-1", "MIG-1-0"]),
            )],
        ),
        (
            "single with no MIG anywhere is plain GPUs",
            inv(vec![gpu(0, a100, None)]),
            MigStrategy::Single,
            vec![("nvidia.com/gpu".into(), s(&["GPU-0"]))],
        ),
        (
            "display devices are skipped",
            inv(vec![gpu(0, "NVIDIA DGX Display", None), gpu(1, a100, None)]),
            MigStrategy::None,
            vec![("nvidia.com/gpu".into(), s(&["GPU-1"]))],
        ),
        (
            "mixed with a MIG GPU that has no instances only warns",
            inv(vec![gpu(0, a100, Some(&[])), gpu(1, a100, None)]),
            MigStrategy::Mixed,
            vec![("nvidia.com/gpu".into(), s(&["GPU-1"]))],
        ),
        (
            "no GPUs, no resources",
            inv(vec![]),
            MigStrategy::Mixed,
            vec![],
        ),
    ];
    for (name, inventory, strategy, want) in cases {
        let got = plan(&inventory, &opts(strategy)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(summary(&got), want, "{name}");
    }
}

#[test]
fn invalid_layouts_fail_with_nvidias_errors() {
    let a100 = "NVIDIA A100-SXM4-80GB";
    let cases: Vec<(&str, Inventory, MigStrategy, PlanError)> = vec![
        (
            "single: MIG GPU without instances",
            inv(vec![
                gpu(0, a100, Some(&["1g.10gb"])),
                gpu(1, a100, Some(&[])),
            ]),
            MigStrategy::Single,
            PlanError::NoMigDevices(1),
        ),
        (
            "single: MIG and full GPUs",
            inv(vec![gpu(0, a100, Some(&["1g.10gb"])), gpu(1, a100, None)]),
            MigStrategy::Single,
            PlanError::MixedMigEnabled,
        ),
        (
            "single: two profiles",
            inv(vec![gpu(0, a100, Some(&["1g.10gb", "2g.20gb"]))]),
            MigStrategy::Single,
            PlanError::MixedMigTypes,
        ),
        (
            "mixed: compute-instance profile matches no pattern",
            inv(vec![gpu(0, a100, Some(&["1c.2g.20gb"]))]),
            MigStrategy::Mixed,
            PlanError::UnmatchedMigProfile("1c.2g.20gb".into()),
        ),
    ];
    for (name, inventory, strategy, want) in cases {
        assert_eq!(
            plan(&inventory, &opts(strategy)).unwrap_err(),
            want,
            "{name}"
        );
    }
    assert_eq!(
        PlanError::MixedMigTypes.to_string(),
        "invalid MIG configuration: more than one MIG device type present on node"
    );
    assert_eq!(
        PlanError::NoMigDevices(1).to_string(),
        "invalid MIG configuration: device 1 has no MIG devices configured"
    );
}

#[test]
fn user_patterns_come_before_defaults() {
    let inventory = inv(vec![
        gpu(0, "NVIDIA A100-SXM4-80GB", None),
        gpu(1, "NVIDIA H100 80GB HBM3", Some(&["1c.2g.20gb"])),
    ]);
    let options = PlanOptions {
        mig_strategy: MigStrategy::Mixed,
        gpu_patterns: vec![NamedPattern::new("*A100*", "nvidia.com/a100")],
        mig_patterns: vec![NamedPattern::new("*c.2g.*", "nvidia.com/mig-small")],
        sharing: None,
    };
    let got = plan(&inventory, &options).unwrap();
    assert_eq!(
        summary(&got),
        vec![
            ("nvidia.com/a100".into(), s(&["GPU-0"])),
            ("nvidia.com/mig-small".into(), s(&["MIG-1-0"]))
        ]
    );
}

#[test]
fn devices_carry_index_numa_and_paths() {
    let inventory = inv(vec![
        gpu(0, "A", None),
        gpu(3, "A", Some(&["1g.10gb", "1g.10gb"])),
    ]);
    let got = plan(&inventory, &opts(MigStrategy::Mixed)).unwrap();
    let full = &got["nvidia.com/gpu"].devices[0];
    assert_eq!(
        (full.index.as_str(), full.numa_node, full.paths.clone()),
        ("0", Some(0), s(&["/dev/nvidia0"]))
    );
    let mig = &got["nvidia.com/mig-1g.10gb"].devices[1];
    assert_eq!(mig.index, "3:1");
    assert_eq!(mig.gpu_uuid, "GPU-3");
    assert_eq!(mig.numa_node, Some(1));
    assert_eq!(
        mig.paths,
        s(&["/dev/nvidia3", "/dev/nvidia-caps/nvidia-cap31"])
    );
}

#[test]
fn socket_names_follow_nvidia() {
    use crate::resources::socket_name;
    assert_eq!(socket_name("nvidia.com/gpu"), "nvidia-gpu.sock");
    assert_eq!(
        socket_name("nvidia.com/gpu.shared"),
        "nvidia-gpu.shared.sock"
    );
    assert_eq!(
        socket_name("nvidia.com/mig-1g.5gb"),
        "nvidia-mig-1g.5gb.sock"
    );
}
