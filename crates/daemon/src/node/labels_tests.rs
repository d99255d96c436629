//! Tests of `node::labels`: GFD's vectors (sanitise, families, sharing, MIG
//! strategies) and every example node under every MIG strategy.
use super::*;
use crate::config::v1;
use crate::gpu::Backend;
use crate::gpu::simulated::Simulated;

fn gpu(index: u32, name: &str, memory_mib: u64) -> Gpu {
    Gpu {
        index,
        uuid: format!("GPU-{index}"),
        name: name.into(),
        memory_mib,
        pci_bus_id: format!("0000:0{index}:00.0"),
        minor: index,
        numa_node: None,
        compute_capability: Some("8.0".into()),
        nvlinks: Vec::new(),
        mig_enabled: false,
        mig_devices: Vec::new(),
    }
}

fn mig(uuid: &str, profile: &str, memory_mib: u64) -> MigDevice {
    MigDevice {
        uuid: uuid.into(),
        profile: profile.into(),
        gpu_instance_id: 1,
        compute_instance_id: 0,
        memory_mib,
        cap_paths: Vec::new(),
    }
}

fn sharing(yaml: &str) -> Sharing {
    v1::parse(&format!("version: v1\nsharing:\n{yaml}"))
        .unwrap()
        .sharing
}

const TIME_SLICED_2: &str =
    "  timeSlicing:\n    resources:\n    - {name: nvidia.com/gpu, replicas: 2}\n";

fn input(gpus: Vec<Gpu>, strategy: MigStrategy, sharing: Sharing) -> LabelInput {
    LabelInput {
        inventory: Inventory {
            driver_version: Some("550.54.15".into()),
            cuda_driver_version: Some(12040),
            gpus,
            faults: Vec::new(),
        },
        mig_strategy: strategy,
        sharing,
        ..LabelInput::default()
    }
}

fn get<'a>(labels: &'a Labels, key: &str) -> Option<&'a str> {
    labels.get(&format!("nvidia.com/{key}")).map(String::as_str)
}

#[test]
fn sanitise_matches_gfds_vectors() {
    for (input, want) in [
        ("NVIDIA-TITAN-X-(Pascal)", "NVIDIA-TITAN-X-Pascal"),
        ("some [ / thing / ]else", "some-thing-else"),
        (
            " input  with multiple   spaces   ",
            "input-with-multiple-spaces",
        ),
        ("some-thing.else_new", "some-thing.else_new"),
        ("Tesla T4", "Tesla-T4"),
    ] {
        assert_eq!(sanitise(input), want, "{input:?}");
    }
}

#[test]
fn arch_family_follows_the_compute_capability_table() {
    for (major, minor, want) in [
        (1, 3, "tesla"),
        (2, 0, "fermi"),
        (3, 5, "kepler"),
        (5, 2, "maxwell"),
        (6, 1, "pascal"),
        (7, 0, "volta"),
        (7, 4, "volta"),
        (7, 5, "turing"),
        (8, 0, "ampere"),
        (8, 8, "ampere"),
        (8, 9, "ada-lovelace"),
        (9, 0, "hopper"),
        (10, 0, "blackwell"),
        (12, 0, "blackwell"),
        (13, 0, "rubin"),
        (4, 0, "undefined"),
        (11, 0, "undefined"),
    ] {
        assert_eq!(arch_family(major, minor), want, "{major}.{minor}");
    }
}

#[test]
fn sharing_sets_replicas_strategy_and_the_shared_suffix() {
    let model = || vec![gpu(0, "MOCKMODEL", 300)];
    let renamed = "  timeSlicing:\n    renameByDefault: true\n    resources:\n    - {name: nvidia.com/gpu, replicas: 2}\n";
    let mps = "  mps:\n    resources:\n    - {name: nvidia.com/gpu, replicas: 2}\n";
    let cases = [
        (
            "time-slicing x2",
            sharing(TIME_SLICED_2),
            ["1", "2", "time-slicing", "MOCKMODEL-SHARED"],
        ),
        (
            "renamed",
            sharing(renamed),
            ["1", "2", "time-slicing", "MOCKMODEL"],
        ),
        (
            "mps x2",
            sharing(mps),
            ["1", "2", "mps", "MOCKMODEL-SHARED"],
        ),
        (
            "no sharing",
            Sharing::default(),
            ["1", "1", "none", "MOCKMODEL"],
        ),
    ];
    for (what, sharing, [count, replicas, strategy, product]) in cases {
        let labels = gfd_labels(&input(model(), MigStrategy::None, sharing));
        let got = [
            "gpu.count",
            "gpu.replicas",
            "gpu.sharing-strategy",
            "gpu.product",
        ]
        .map(|k| get(&labels, k).unwrap_or("-"));
        assert_eq!(got, [count, replicas, strategy, product], "{what}");
    }
}

#[test]
fn mps_sets_mps_capable() {
    let mps = sharing("  mps:\n    resources:\n    - {name: nvidia.com/gpu, replicas: 2}\n");
    let labels = gfd_labels(&input(vec![gpu(0, "M", 1)], MigStrategy::None, mps));
    assert_eq!(get(&labels, "mps.capable"), Some("true"));
}

#[test]
fn a_mig_enabled_gpu_under_strategy_none_is_labeled_without_sharing() {
    let mut g = gpu(0, "MOCKMODEL", 300);
    g.mig_enabled = true;
    g.mig_devices = vec![mig("MIG-a", "1g.5gb", 100)];
    let labels = gfd_labels(&input(vec![g], MigStrategy::None, sharing(TIME_SLICED_2)));
    let got = [
        "gpu.count",
        "gpu.replicas",
        "gpu.sharing-strategy",
        "gpu.product",
        "gpu.memory",
    ]
    .map(|k| get(&labels, k).unwrap_or("-"));
    assert_eq!(got, ["1", "0", "none", "MOCKMODEL", "300"]);
    assert_eq!(get(&labels, "mig.strategy"), None);
}

#[test]
fn the_driver_version_is_split_into_both_label_families() {
    let labels = gfd_labels(&input(
        vec![gpu(0, "M", 1)],
        MigStrategy::None,
        Sharing::default(),
    ));
    for (key, want) in [
        ("cuda.driver.major", "550"),
        ("cuda.driver.minor", "54"),
        ("cuda.driver.rev", "15"),
        ("cuda.driver-version.major", "550"),
        ("cuda.driver-version.minor", "54"),
        ("cuda.driver-version.revision", "15"),
        ("cuda.driver-version.full", "550.54.15"),
    ] {
        assert_eq!(get(&labels, key), Some(want), "{key}");
    }
    let mut two = input(vec![gpu(0, "M", 1)], MigStrategy::None, Sharing::default());
    two.inventory.driver_version = Some("550.54".into());
    assert_eq!(get(&gfd_labels(&two), "cuda.driver.rev"), Some(""));
}

#[test]
fn no_gpus_leave_only_the_timestamp() {
    let mut none = input(Vec::new(), MigStrategy::Mixed, Sharing::default());
    none.timestamp = Some(1724632719);
    let labels = gfd_labels(&none);
    assert_eq!(labels.len(), 1);
    assert_eq!(get(&labels, "gfd.timestamp"), Some("1724632719"));
}

#[test]
fn machine_and_mode_come_from_their_files() {
    let mut i = input(
        vec![gpu(0, "M", 1), gpu(1, "M", 1)],
        MigStrategy::None,
        Sharing::default(),
    );
    assert_eq!(get(&gfd_labels(&i), "gpu.machine"), Some("unknown"));
    assert_eq!(get(&gfd_labels(&i), "gpu.mode"), Some("unknown"));
    i.machine = Some("X9SRA/X9SRA-3\n".into());
    i.pci_classes = [("0000:00:00.0", "0x030200"), ("0000:01:00.0", "0x030200")]
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .into();
    assert_eq!(get(&gfd_labels(&i), "gpu.machine"), Some("X9SRAX9SRA-3"));
    assert_eq!(get(&gfd_labels(&i), "gpu.mode"), Some("compute"));
    i.pci_classes
        .insert("0000:01:00.0".into(), "0x030000".into());
    assert_eq!(get(&gfd_labels(&i), "gpu.mode"), Some("unknown"));
}

#[test]
fn on_a_mixed_node_the_most_numerous_model_wins_then_the_lowest_index() {
    let gpus = vec![gpu(0, "Small", 10), gpu(1, "Big", 20), gpu(2, "Big", 20)];
    let labels = gfd_labels(&input(gpus, MigStrategy::None, Sharing::default()));
    assert_eq!(get(&labels, "gpu.product"), Some("Big"));
    assert_eq!(get(&labels, "gpu.count"), Some("2"));
    let tie = vec![gpu(0, "First", 10), gpu(1, "Second", 20)];
    let labels = gfd_labels(&input(tie, MigStrategy::None, Sharing::default()));
    assert_eq!(get(&labels, "gpu.product"), Some("First"));
    assert_eq!(get(&labels, "gpu.memory"), Some("10"));
}

#[test]
fn single_strategy_with_two_profiles_is_invalid() {
    let mut g = gpu(0, "NVIDIA A100-SXM4-40GB", 40960);
    g.mig_enabled = true;
    g.mig_devices = vec![mig("MIG-a", "1g.5gb", 4864), mig("MIG-b", "2g.10gb", 9728)];
    let labels = gfd_labels(&input(vec![g], MigStrategy::Single, Sharing::default()));
    let got = [
        "gpu.product",
        "gpu.count",
        "gpu.replicas",
        "gpu.sharing-strategy",
        "gpu.memory",
        "gpu.family",
    ]
    .map(|k| get(&labels, k).unwrap_or("-"));
    assert_eq!(
        got,
        [
            "NVIDIA-A100-SXM4-40GB-MIG-INVALID",
            "0",
            "0",
            "",
            "0",
            "ampere"
        ]
    );
}

fn example(file: &str) -> Inventory {
    let path = format!("{}/../../config/nodes/{file}", env!("CARGO_MANIFEST_DIR"));
    Simulated::from_file(path).inventory().unwrap()
}

/// Every example node under every MIG strategy: the labels selectors use.
#[test]
fn every_example_node_and_mig_strategy() {
    use MigStrategy::{Mixed, None as NoMig, Single};
    type Want = &'static [(&'static str, &'static str)];
    let a100_80: Want = &[
        ("gpu.product", "NVIDIA-A100-SXM4-80GB"),
        ("gpu.count", "8"),
        ("gpu.memory", "81920"),
        ("gpu.replicas", "1"),
        ("gpu.sharing-strategy", "none"),
        ("gpu.family", "ampere"),
        ("mig.capable", "false"),
    ];
    let cases: Vec<(&str, MigStrategy, Want, Option<&str>)> = vec![
        ("dgx-a100.yaml", NoMig, a100_80, None),
        ("dgx-a100.yaml", Single, a100_80, Some("single")),
        ("dgx-a100.yaml", Mixed, a100_80, Some("mixed")),
        // One GPU is lost: it does not answer, so it is not counted (as GFD).
        (
            "dgx-a100-degraded.yaml",
            NoMig,
            &[("gpu.product", "NVIDIA-A100-SXM4-80GB"), ("gpu.count", "7")],
            None,
        ),
        (
            "workstation.yaml",
            NoMig,
            &[
                ("gpu.product", "NVIDIA-GeForce-RTX-4090"),
                ("gpu.count", "1"),
                ("gpu.family", "ada-lovelace"),
            ],
            None,
        ),
        (
            "a100-mig-single.yaml",
            NoMig,
            &[
                ("gpu.product", "NVIDIA-A100-SXM4-40GB"),
                ("gpu.count", "4"),
                ("gpu.replicas", "0"),
                ("mig.capable", "true"),
            ],
            None,
        ),
        (
            "a100-mig-single.yaml",
            Single,
            &[
                ("gpu.product", "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb"),
                ("gpu.count", "28"),
                ("gpu.replicas", "1"),
                ("gpu.sharing-strategy", "none"),
                ("gpu.slices.gi", "1"),
                ("gpu.slices.ci", "1"),
                ("gpu.family", "ampere"),
            ],
            Some("single"),
        ),
        (
            "h100-mig.yaml",
            Single,
            &[
                ("gpu.product", "NVIDIA-H100-80GB-HBM3-MIG-INVALID"),
                ("gpu.count", "0"),
            ],
            Some("single"),
        ),
        (
            "h100-mig.yaml",
            Mixed,
            &[
                ("gpu.count", "8"),
                ("gpu.product", "NVIDIA-H100-80GB-HBM3"),
                ("mig-1g.10gb.product", "NVIDIA-H100-80GB-HBM3-MIG-1g.10gb"),
                (
                    "mig-1g.10gb.me.product",
                    "NVIDIA-H100-80GB-HBM3-MIG-1g.10gb.me",
                ),
                ("mig-3g.40gb.memory", "40192"),
                ("mig-3g.40gb.slices.gi", "3"),
                ("mig-3g.40gb.replicas", "1"),
                ("mig-3g.40gb.sharing-strategy", "none"),
            ],
            Some("mixed"),
        ),
    ];
    for (file, strategy, want, mig_label) in cases {
        let labels = gfd_labels(&input_from(example(file), strategy));
        for (key, value) in want {
            assert_eq!(get(&labels, key), Some(*value), "{file} {strategy:?} {key}");
        }
        assert_eq!(
            get(&labels, "mig.strategy"),
            mig_label,
            "{file} {strategy:?}"
        );
        assert_eq!(
            get(&labels, "cuda.driver-version.full"),
            Some("550.54.15"),
            "{file}"
        );
    }
}

fn input_from(inventory: Inventory, mig_strategy: MigStrategy) -> LabelInput {
    LabelInput {
        inventory,
        mig_strategy,
        ..LabelInput::default()
    }
}

#[test]
fn mixed_counts_each_profile_across_gpus() {
    let labels = gfd_labels(&input_from(example("h100-mig.yaml"), MigStrategy::Mixed));
    let inventory = example("h100-mig.yaml");
    let want = inventory
        .gpus
        .iter()
        .flat_map(|g| &g.mig_devices)
        .filter(|d| d.profile == "1g.10gb")
        .count()
        .to_string();
    assert_eq!(get(&labels, "mig-1g.10gb.count"), Some(want.as_str()));
}

#[test]
fn a_lost_gpu_is_not_counted() {
    let mut i = input(
        vec![gpu(0, "M", 1), gpu(1, "M", 1)],
        MigStrategy::None,
        Sharing::default(),
    );
    i.inventory.faults = vec![crate::gpu::GpuFault {
        index: 1,
        uuid: None,
        kind: crate::gpu::FaultKind::Lost,
    }];
    assert_eq!(get(&gfd_labels(&i), "gpu.count"), Some("1"));
}

#[test]
fn cuda_runtime_labels_follow_nvmls_cuda_driver_version() {
    let base = || {
        input(
            vec![gpu(0, "MOCKMODEL", 300)],
            MigStrategy::None,
            Sharing::default(),
        )
    };
    for (version, want) in [
        (Some(12040), Some(("12", "4", "12.4"))),
        (Some(11080), Some(("11", "8", "11.8"))),
        (Some(13000), Some(("13", "0", "13.0"))),
        (None, None),
    ] {
        let mut i = base();
        i.inventory.cuda_driver_version = version;
        let labels = gfd_labels(&i);
        let got = [
            "cuda.runtime-version.major",
            "cuda.runtime-version.minor",
            "cuda.runtime-version.full",
        ]
        .map(|k| get(&labels, k));
        match want {
            Some((major, minor, full)) => {
                assert_eq!(got, [Some(major), Some(minor), Some(full)], "{version:?}");
                assert_eq!(get(&labels, "cuda.runtime.major"), Some(major));
                assert_eq!(get(&labels, "cuda.runtime.minor"), Some(minor));
            }
            None => assert!(
                labels.keys().all(|k| !k.contains("cuda.runtime")),
                "{labels:?}"
            ),
        }
    }
}
