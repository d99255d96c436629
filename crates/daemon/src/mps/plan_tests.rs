//! The control daemon's plan as tables: which resources get a daemon, the
//! commands and limits NVIDIA derives from the replica count, the refusals,
//! and which daemons a config change restarts.

use super::*;
use crate::config::Overrides;
use crate::gpu::simulated::{BUILTIN_NODE, parse_node};

fn node(name: &str) -> Inventory {
    let path = format!("{}/../../config/nodes/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    parse_node(&text, &path).unwrap().inventory
}

fn daemons(inventory: &Inventory, text: &str) -> Result<BTreeMap<String, DaemonSpec>, String> {
    let check = v1::check(text);
    assert!(check.errors.is_empty(), "{:?}", check.errors);
    let file = check.config.unwrap();
    let overrides = Overrides {
        mps_root: Some("/run/nvidia/mps".into()),
        mig_strategy: None,
        ..Overrides::default()
    };
    let settings = Settings::resolve(&overrides, &file).map_err(|e| e.to_string())?;
    plan_daemons(inventory, &settings, &file).map_err(|e| e.to_string())
}

fn mps(replicas: u32) -> String {
    format!(
        "version: v1\nsharing:\n  mps:\n    resources:\n    - name: nvidia.com/gpu\n      replicas: {replicas}\n"
    )
}

fn spec(memory: &[u64], replicas: u32) -> DaemonSpec {
    DaemonSpec {
        resource: "nvidia.com/gpu".into(),
        gpus: memory
            .iter()
            .enumerate()
            .map(|(i, m)| DaemonGpu {
                index: i as u32,
                uuid: format!("GPU-{i}"),
                memory_mib: *m,
                replicas,
            })
            .collect(),
        devices: memory.len() * replicas as usize,
    }
}

#[test]
fn limits_follow_nvidias_formulas() {
    // (memory MiB per GPU, replicas, commands)
    let cases: &[(&[u64], u32, &[&str])] = &[
        // reference B3: L40S with 10 replicas
        (
            &[46068],
            10,
            &[
                "set_default_device_pinned_mem_limit 0 4606M",
                "set_default_active_thread_percentage 10",
            ],
        ),
        (
            &[81920],
            48,
            &[
                "set_default_device_pinned_mem_limit 0 1706M",
                "set_default_active_thread_percentage 2",
            ],
        ),
        (
            &[81920],
            3,
            &[
                "set_default_device_pinned_mem_limit 0 27306M",
                "set_default_active_thread_percentage 33",
            ],
        ),
        (
            &[81920, 40960],
            4,
            &[
                "set_default_device_pinned_mem_limit 0 20480M",
                "set_default_device_pinned_mem_limit 1 10240M",
                "set_default_active_thread_percentage 25",
            ],
        ),
        (
            &[81920, 40960],
            8,
            &[
                "set_default_device_pinned_mem_limit 0 10240M",
                "set_default_device_pinned_mem_limit 1 5120M",
                "set_default_active_thread_percentage 12",
            ],
        ),
        // A GPU without memory gets no pinned limit.
        (&[0], 2, &["set_default_active_thread_percentage 50"]),
    ];
    for (memory, replicas, want) in cases {
        assert_eq!(
            spec(memory, *replicas).commands(),
            *want,
            "{memory:?} x{replicas}"
        );
    }
}

#[test]
fn environment_and_layout_are_nvidias() {
    let layout = Layout {
        root: "/mps".into(),
    };
    let env = spec(&[1, 1], 2).env(&layout);
    assert_eq!(
        env,
        [
            (
                "CUDA_MPS_PIPE_DIRECTORY".to_string(),
                "/mps/nvidia.com/gpu/pipe".to_string()
            ),
            (
                "CUDA_MPS_LOG_DIRECTORY".into(),
                "/mps/nvidia.com/gpu/log".into()
            ),
            ("CUDA_VISIBLE_DEVICES".into(), "GPU-0,GPU-1".into()),
        ]
    );
    assert_eq!(
        layout.marker("nvidia.com/gpu"),
        Path::new("/mps/nvidia.com/gpu/.started")
    );
    assert_eq!(layout.ready(), Path::new("/mps/.ready"));
}

#[test]
fn which_configs_get_a_daemon() {
    let builtin = parse_node(BUILTIN_NODE, "builtin").unwrap().inventory;
    let ts = "version: v1\nsharing:\n  timeSlicing:\n    resources:\n    - name: nvidia.com/gpu\n      replicas: 4\n";
    let renamed = "version: v1\nsharing:\n  mps:\n    renameByDefault: true\n    resources:\n    - name: nvidia.com/gpu\n      replicas: 2\n      devices: [0, 1]\n";
    // (config, resources with a daemon, GPUs of the first)
    let cases: &[(&str, &[&str], usize)] = &[
        ("version: v1\n", &[], 0),
        (ts, &[], 0),
        (&mps(4), &["nvidia.com/gpu"], 8),
        (renamed, &["nvidia.com/gpu.shared"], 2),
    ];
    for (text, want, gpus) in cases {
        let got = daemons(&builtin, text).unwrap();
        let names: Vec<&str> = got.keys().map(String::as_str).collect();
        assert_eq!(names, *want, "{text}");
        if let Some(first) = got.values().next() {
            assert_eq!(first.gpus.len(), *gpus, "{text}");
        }
    }
    let eight = daemons(&builtin, &mps(8)).unwrap();
    let gpu = &eight["nvidia.com/gpu"];
    assert_eq!(gpu.devices, 64);
    assert_eq!(
        gpu.commands().last().unwrap(),
        "set_default_active_thread_percentage 12"
    );
    assert_eq!(
        gpu.commands()[7],
        "set_default_device_pinned_mem_limit 7 10240M"
    );
}

#[test]
fn what_nvidia_refuses_is_refused_with_its_error() {
    let builtin = parse_node(BUILTIN_NODE, "builtin").unwrap().inventory;
    let mig = node("a100-mig-single.yaml");
    let single = "version: v1\nflags:\n  migStrategy: single\nsharing:\n  mps:\n    resources:\n    - name: nvidia.com/gpu\n      replicas: 2\n";
    let mixed = single.replace("single", "mixed");
    let cases: Vec<(&Inventory, String, &str)> = vec![
        (
            &builtin,
            mps(49),
            "invalid MPS configuration: invalid device maximum allowed replicas exceeded: 49 > 48",
        ),
        (
            &mig,
            single.to_string(),
            "sharing using MPS is not supported for MIG devices",
        ),
        (
            &mig,
            mixed,
            "using --mig-strategy=mixed is not supported with MPS",
        ),
    ];
    for (inventory, text, want) in cases {
        let err = daemons(inventory, &text).unwrap_err();
        assert!(err.contains(want), "{text}: {err}");
    }
    assert!(daemons(&builtin, &mps(48)).is_ok());
}

#[test]
fn a_change_restarts_only_the_daemons_whose_settings_changed() {
    let a = |r| ("a".to_string(), spec(&[10], r));
    let b = |r| ("b".to_string(), spec(&[20], r));
    let map = |v: Vec<(String, DaemonSpec)>| v.into_iter().collect::<BTreeMap<_, _>>();
    // (old, new, stop, start)
    let cases = vec![
        (map(vec![a(4), b(4)]), map(vec![a(4), b(4)]), vec![], vec![]),
        (
            map(vec![a(4), b(4)]),
            map(vec![a(8), b(4)]),
            vec!["a"],
            vec!["a"],
        ),
        (map(vec![a(4)]), map(vec![a(4), b(2)]), vec![], vec!["b"]),
        (map(vec![a(4), b(2)]), map(vec![b(2)]), vec!["a"], vec![]),
        (map(vec![]), map(vec![a(2)]), vec![], vec!["a"]),
    ];
    for (old, new, stop, start) in cases {
        let got = diff(&old, &new);
        assert_eq!(
            (got.stop, got.start),
            (
                stop.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                start.iter().map(|s| s.to_string()).collect::<Vec<_>>()
            )
        );
    }
}
