//! Tests of `check_config` (tables of cases).
use super::*;
use crate::gpu::simulated::parse_node;

fn node(name: &str) -> Inventory {
    let path = format!(
        "{}/../../config/nodes/{name}.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap();
    parse_node(&text, &path).unwrap().inventory
}

fn lines(report: &CheckReport) -> Vec<(String, usize, String)> {
    report
        .resources
        .iter()
        .map(|r| (r.name.clone(), r.devices, r.replicas.clone()))
        .collect()
}

#[test]
fn time_slicing_is_planned_with_replica_counts() {
    let cfg = "version: v1\nsharing:\n  timeSlicing:\n    renameByDefault: true\n    resources:\n    - name: nvidia.com/gpu\n      replicas: 4\n";
    let r = check_config(cfg, &Overrides::default(), &node("dgx-a100"));
    assert!(r.valid(), "{:?}", r.errors);
    assert_eq!(
        lines(&r),
        vec![("nvidia.com/gpu.shared".into(), 32, "4".into())]
    );
}

#[test]
fn per_gpu_counts_are_listed_per_device() {
    let cfg = r#"
version: v1
sharing:
  timeSlicing:
    resources:
    - name: nvidia.com/gpu
      devices: [0, 1]
      replicas: 2
    - name: nvidia.com/gpu
      devices: [2]
      replicas: 3
"#;
    let r = check_config(cfg, &Overrides::default(), &node("dgx-a100"));
    assert!(r.valid(), "{:?}", r.errors);
    assert_eq!(
        lines(&r),
        vec![(
            "nvidia.com/gpu".into(),
            2 + 2 + 3 + 5,
            "0: 2, 1: 2, 2: 3, 3: 1, 4: 1, 5: 1, 6: 1, 7: 1".into()
        )]
    );
}

#[test]
fn every_error_is_listed() {
    let cfg = "version: v1\nflags:\n  migStrategy: both\n  plugin:\n    deviceIDStrategy: serial\nsharing:\n  timeSlicing:\n    resources:\n    - name: nvidia.com/gpu\n      replicas: 1\n";
    let r = check_config(cfg, &Overrides::default(), &node("dgx-a100"));
    assert!(!r.valid());
    assert!(
        r.errors
            .iter()
            .any(|e| e.contains("number of replicas must be >= 2")),
        "{:?}",
        r.errors
    );
    let cfg = "version: v1\nflags:\n  migStrategy: both\n  plugin:\n    deviceIDStrategy: serial\n";
    let r = check_config(cfg, &Overrides::default(), &node("dgx-a100"));
    assert_eq!(
        r.errors,
        vec![
            "unable to validate flags: invalid --device-id-strategy option: serial".to_string(),
            "unable to validate flags: unknown MIG strategy: both".to_string()
        ]
    );
}

#[test]
fn flags_beat_the_file_and_plan_errors_are_reported() {
    let cfg = "version: v1\nflags:\n  migStrategy: none\n";
    let o = Overrides {
        mig_strategy: Some("single".into()),
        ..Default::default()
    };
    let r = check_config(cfg, &o, &node("h100-mig"));
    assert_eq!(
        r.errors,
        vec!["invalid MIG configuration: device 3 has no MIG devices configured".to_string()]
    );
}

#[test]
fn files_are_read_bounded_and_planned_within_the_message_limit() {
    let dir = tempfile::tempdir().unwrap();
    let replicas = |n: u32| {
        format!(
            "version: v1\nsharing:\n  timeSlicing:\n    resources:\n    - name: nvidia.com/gpu\n      replicas: {n}\n"
        )
    };
    // (case, file content or None for no file, expected error part or None when valid)
    let cases: Vec<(&str, Option<String>, Option<&str>)> = vec![
        ("a good file", Some(replicas(4)), None),
        ("the most replicas that fit", Some(replicas(7960)), None),
        (
            "two million replicas",
            Some(replicas(2_000_000)),
            Some("over the kubelet's limit of 4194304 bytes"),
        ),
        ("no file", None, Some("cannot read")),
        (
            "a file over 1 MiB",
            Some(format!("version: v1\n#{}\n", "x".repeat(1 << 20))),
            Some("is larger than 1048576 bytes"),
        ),
    ];
    for (i, (case, content, error)) in cases.into_iter().enumerate() {
        let path = dir.path().join(format!("c{i}.yaml"));
        if let Some(content) = content {
            std::fs::write(&path, content).unwrap();
        }
        let r = check_config_file(&path, &Overrides::default(), &node("dgx-a100"));
        match error {
            None => assert!(r.valid(), "{case}: {:?}", r.errors),
            Some(part) => assert!(
                r.errors.len() == 1 && r.errors[0].contains(part),
                "{case}: {:?}",
                r.errors
            ),
        }
    }
}

#[test]
fn cdi_strategies_are_accepted_and_say_where_the_spec_goes() {
    let cfg = "version: v1\nflags:\n  plugin:\n    deviceListStrategy: [cdi-cri]\n    deviceIDStrategy: index\n";
    let r = check_config(cfg, &Overrides::default(), &node("dgx-a100"));
    assert!(r.valid(), "{:?}", r.errors);
    assert_eq!(
        r.cdi.as_deref(),
        Some(
            "CDI: devices are passed as k8s.device-plugin.nvidia.com/gpu=<index> from \
             /var/run/cdi/k8s.device-plugin.nvidia.com-gpu.json (hooks: /usr/bin/nvidia-ctk)"
        )
    );
    let text = render("cfg", "dgx-a100", &r);
    assert!(text.ends_with("(hooks: /usr/bin/nvidia-ctk)\n"), "{text}");
    let plain = check_config("version: v1\n", &Overrides::default(), &node("dgx-a100"));
    assert_eq!(plain.cdi, None);
}

#[test]
fn a_uuid_cdi_cannot_name_is_an_error() {
    let mut inventory = node("h100-mig");
    inventory.gpus[0].mig_devices[0].uuid = "MIG-GPU-344e1aa0/2/0".into();
    let cfg = "version: v1\nflags:\n  migStrategy: mixed\n  plugin:\n    deviceListStrategy: [cdi-annotations]\n";
    let r = check_config(cfg, &Overrides::default(), &inventory);
    assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
    assert!(
        r.errors[0].contains("invalid CDI device name \"MIG-GPU-344e1aa0/2/0\""),
        "{}",
        r.errors[0]
    );
    let index = Overrides {
        device_id_strategy: Some("index".into()),
        ..Overrides::default()
    };
    assert!(check_config(cfg, &index, &inventory).valid());
}
