//! Tests of `config::v1` (tables of cases).
use super::*;
use crate::resources::{DeviceRef, DeviceSelector, ReplicaRule, SharingKind, SharingOptions};

fn messages(text: &str) -> Vec<String> {
    parse_all(text)
        .err()
        .unwrap_or_default()
        .iter()
        .map(|e| e.message.clone())
        .collect()
}

#[test]
fn empty_or_null_file_is_the_default_v1_config() {
    for text in ["", "\n  \n", "null", "~", "---\n"] {
        let config = parse(text).unwrap();
        assert_eq!(config, Config::default(), "{text:?}");
        assert_eq!(config.version, "v1");
    }
}

#[test]
fn version_rules() {
    let cases = [
        ("version: v1", Ok("v1")),
        ("version: ''", Ok("v1")),
        ("version:", Ok("v1")),
        ("flags: {}", Ok("v1")),
        (
            "version: v2",
            Err("unknown version: v2 (line 1, column 10)"),
        ),
        ("version: 1", Err("unknown version: 1 (line 1, column 10)")),
        (
            "Version: v0",
            Err("unknown version: v0 (line 1, column 10)"),
        ),
    ];
    for (input, want) in cases {
        let got = parse(input).map(|c| c.version).map_err(|e| e.to_string());
        assert_eq!(got, want.map(String::from).map_err(String::from), "{input}");
    }
}

#[test]
fn mps_fail_requests_defaults_to_true_c1() {
    let text = "version: v1\nsharing:\n  mps:\n    resources:\n      - name: nvidia.com/gpu\n        replicas: 2\n";
    let config = parse(text).unwrap();
    let mps = config.sharing.mps.unwrap();
    assert_eq!(mps.fail_requests_greater_than_one, Some(true));
}

#[test]
fn mps_explicit_false_is_kept_c2() {
    let text = "version: v1\nsharing:\n  mps:\n    failRequestsGreaterThanOne: false\n    resources:\n      - name: nvidia.com/gpu\n        replicas: 2\n";
    let config = parse(text).unwrap();
    assert_eq!(
        config.sharing.mps.unwrap().fail_requests_greater_than_one,
        Some(false)
    );
}

#[test]
fn time_slicing_fail_requests_stays_unset() {
    let config = parse("sharing: {timeSlicing: {resources: [{name: gpu, replicas: 2}]}}").unwrap();
    assert_eq!(
        config
            .sharing
            .time_slicing
            .unwrap()
            .fail_requests_greater_than_one,
        None
    );
}

#[test]
fn readme_examples_parse() {
    let a = "version: v1\nflags:\n  migStrategy: \"none\"\n  failOnInitError: true\n  nvidiaDriverRoot: \"/\"\n  plugin:\n    passDeviceSpecs: false\n    deviceListStrategy: \"envvar\"\n    deviceIDStrategy: \"uuid\"\n";
    let config = parse(a).unwrap();
    assert_eq!(config.flags.mig_strategy.as_deref(), Some("none"));
    let plugin = config.flags.plugin.unwrap();
    assert_eq!(
        plugin.device_list_strategy,
        Some(vec!["envvar".to_string()])
    );

    let b = "version: v1\nsharing:\n  timeSlicing:\n    renameByDefault: true\n    failRequestsGreaterThanOne: true\n    resources:\n    - name: nvidia.com/gpu\n      replicas: 10\n";
    let config = parse(b).unwrap();
    assert_eq!(config.sharing_strategy(), SharingStrategy::TimeSlicing);
    let ts = config.replicated_resources().unwrap();
    assert_eq!(
        ts.resources[0].rename.as_deref(),
        Some("nvidia.com/gpu.shared")
    );
    assert_eq!(ts.resources[0].replicas, 10);

    let e = "version: v1\nflags:\n  migStrategy: mixed\n";
    assert_eq!(
        parse(e).unwrap().flags.mig_strategy.as_deref(),
        Some("mixed")
    );
}

#[test]
fn json_files_parse_too() {
    let text = r#"{"version": "v1", "flags": {"migStrategy": "single"}, "sharing": {"timeSlicing": {"resources": [{"name": "gpu", "replicas": 4, "devices": [0, "1"]}]}}}"#;
    let config = parse(text).unwrap();
    assert_eq!(config.flags.mig_strategy.as_deref(), Some("single"));
    let r = &config.sharing.time_slicing.unwrap().resources[0];
    assert_eq!(
        r.devices,
        ReplicatedDevices::List(vec!["0".into(), "1".into()])
    );
}

#[test]
fn unknown_keys_are_ignored_at_every_level() {
    let text = "extra: 1\nflags: {nope: 2, plugin: {nope: 3}}\nsharing: {other: 4, timeSlicing: {x: 5, resources: [{name: gpu, replicas: 2, y: 6}]}}\nimex: {z: 7}\n";
    assert!(parse(text).is_ok());
}

#[test]
fn errors_carry_line_and_column() {
    let text = "version: v1\nsharing:\n  timeSlicing:\n    resources:\n    - name: gpu\n      replicas: 1\n";
    let err = parse(text).unwrap_err();
    assert_eq!(
        err.to_string(),
        "number of replicas must be >= 2 (line 6, column 17)"
    );
    assert_eq!(err.location, Some((6, 17)));
}

#[test]
fn syntax_errors_are_one_line_with_a_position() {
    let err = parse("flags: [1, 2\n").unwrap_err();
    assert!(!err.message.contains('\n'), "{err}");
    assert!(err.location.is_some(), "{err:?}");
}

#[test]
fn a_non_object_file_is_a_type_error() {
    assert_eq!(
        messages("- a\n- b"),
        vec!["json: cannot unmarshal array into Go value of type v1.Config"]
    );
}

#[test]
fn parse_all_lists_every_error_and_parse_returns_the_first() {
    let text = "version: v9\nflags: {failOnInitError: 3}\nsharing: {timeSlicing: {resources: [{name: A, replicas: 2}, {name: b}]}}\n";
    let got = messages(text);
    assert_eq!(got.len(), 4, "{got:?}");
    assert!(
        got[0].starts_with(
            "json: cannot unmarshal number into Go struct field flags.failOnInitError"
        )
    );
    assert!(got[1].starts_with("incorrect format for resource name 'nvidia.com/A'"));
    assert_eq!(got[2], "no replicas specified");
    assert_eq!(got[3], "unknown version: v9");
    assert_eq!(parse(text).unwrap_err().message, got[0]);
}

#[test]
fn plain_struct_keys_are_case_insensitive_custom_ones_are_not() {
    let config = parse("SHARING: {TimeSlicing: {resources: [{name: gpu, replicas: 2}]}}\nFlags: {MigStrategy: single}").unwrap();
    assert_eq!(config.sharing_strategy(), SharingStrategy::TimeSlicing);
    assert_eq!(config.flags.mig_strategy.as_deref(), Some("single"));
    assert_eq!(
        messages("sharing: {timeSlicing: {Resources: []}}"),
        vec!["no resources specified"]
    );
}

#[test]
fn validate_finds_overlapping_entries_and_imex() {
    let cases: [(&str, Vec<&str>); 6] = [
        (
            "sharing: {timeSlicing: {resources: [{name: gpu, replicas: 2, devices: [0]}, {name: gpu, replicas: 4, devices: [1]}]}}",
            vec![],
        ),
        (
            "sharing: {timeSlicing: {resources: [{name: gpu, replicas: 2}, {name: mig-1g.10gb, replicas: 4}]}}",
            vec![],
        ),
        (
            "sharing: {timeSlicing: {resources: [{name: gpu, replicas: 2, devices: [0, 1]}, {name: gpu, replicas: 4, devices: ['1']}]}}",
            vec![
                "sharing.timeSlicing.resources[0] and [1] both select device 1 of nvidia.com/gpu; each device of a resource may be replicated by one entry only",
            ],
        ),
        (
            "sharing: {mps: {resources: [{name: gpu, replicas: 2}, {name: gpu, replicas: 4, devices: 1}]}}",
            vec![
                "sharing.mps.resources[0] and [1] both select all devices of nvidia.com/gpu; each device of a resource may be replicated by one entry only",
            ],
        ),
        (
            "sharing: {timeSlicing: {resources: [{name: gpu, replicas: 2, devices: 1}, {name: gpu, replicas: 4, devices: 2}]}}",
            vec![
                "sharing.timeSlicing.resources[0] and [1] both select the first device of nvidia.com/gpu; each device of a resource may be replicated by one entry only",
            ],
        ),
        (
            "imex: {channelIDs: [3]}",
            vec![
                "invalid IMEX channel IDs: invalid IMEX config: channelIDs must be [] or [0]; found [3]",
            ],
        ),
    ];
    for (input, want) in cases {
        let got: Vec<String> = parse(input)
            .unwrap()
            .validate()
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(got, want, "{input}");
    }
}

#[test]
fn validate_flags_lists_every_problem_in_nvidia_order() {
    let flags = Flags {
        mig_strategy: Some("mixed".into()),
        device_discovery_strategy: Some("vfio".into()),
        plugin: Some(PluginFlags {
            device_list_strategy: Some(vec!["envvar".into(), "bogus".into()]),
            device_id_strategy: Some("serial".into()),
            shared_devices_allocation_policy: Some("random".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let got: Vec<String> = validate_flags(&flags, SharingStrategy::Mps)
        .iter()
        .map(|e| e.to_string())
        .collect();
    let want = [
        "invalid --device-list-strategy option: invalid strategy: bogus",
        "invalid --device-id-strategy option: serial",
        "invalid --shared-devices-allocation-policy option: random",
        "using --mig-strategy=mixed is not supported with MPS",
        "using MPS requires --mps-root to be specified",
        "invalid --device-discovery-strategy option vfio",
    ];
    assert_eq!(got, want);
}

#[test]
fn validate_flags_accepts_defaults_and_checks_mig_strategy() {
    assert!(validate_flags(&Flags::default(), SharingStrategy::None).is_empty());
    let flags = Flags {
        mig_strategy: Some(String::new()),
        ..Default::default()
    };
    let got: Vec<String> = validate_flags(&flags, SharingStrategy::TimeSlicing)
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(got, ["unknown MIG strategy: "]);
}

#[test]
fn sharing_options_follow_the_active_section() {
    let gpu_uuid = "GPU-4cf8db2d-06c0-7d70-1a51-e59b25b2c16c";
    let text = format!(
        "sharing:\n  timeSlicing:\n    renameByDefault: true\n    resources:\n    - {{name: gpu, replicas: 4, devices: [0, '1:2', {gpu_uuid}, 'MIG-GPU-4cf8db2d-06c0-7d70-1a51-e59b25b2c16c/3/0']}}\n    - {{name: mig-1g.10gb, replicas: 2, devices: 2}}\n"
    );
    let got = parse(&text).unwrap().sharing_options();
    let want = SharingOptions {
        kind: SharingKind::TimeSlicing,
        fail_requests_greater_than_one: false,
        rules: vec![
            ReplicaRule {
                name: "nvidia.com/gpu".into(),
                rename: Some("nvidia.com/gpu.shared".into()),
                devices: DeviceSelector::Refs(vec![
                    DeviceRef::GpuIndex(0),
                    DeviceRef::MigIndex { gpu: 1, slot: 2 },
                    DeviceRef::Uuid(gpu_uuid.into()),
                    DeviceRef::LegacyMig {
                        gpu_uuid: gpu_uuid.into(),
                        gpu_instance_id: 3,
                        compute_instance_id: 0,
                    },
                ]),
                replicas: 4,
            },
            ReplicaRule {
                name: "nvidia.com/mig-1g.10gb".into(),
                rename: Some("nvidia.com/mig-1g.10gb.shared".into()),
                devices: DeviceSelector::First(2),
                replicas: 2,
            },
        ],
    };
    assert_eq!(got, Some(want));
}

#[test]
fn sharing_options_kind_and_fail_default() {
    let cases = [
        ("{}", None),
        (
            "sharing: {mps: {resources: [{name: gpu, replicas: 2}]}}",
            Some((SharingKind::Mps, true)),
        ),
        (
            "sharing: {mps: {failRequestsGreaterThanOne: false, resources: [{name: gpu, replicas: 2}]}}",
            Some((SharingKind::Mps, false)),
        ),
        (
            "sharing: {timeSlicing: {failRequestsGreaterThanOne: true, resources: [{name: gpu, replicas: 2}]}}",
            Some((SharingKind::TimeSlicing, true)),
        ),
    ];
    for (input, want) in cases {
        let got = parse(input)
            .unwrap()
            .sharing_options()
            .map(|s| (s.kind, s.fail_requests_greater_than_one));
        assert_eq!(got, want, "{input}");
    }
}

#[test]
fn to_json_has_nvidia_shape() {
    let config = parse("sharing: {mps: {resources: [{name: gpu, replicas: 2}]}}").unwrap();
    let json = config.to_json();
    assert_eq!(json["version"], "v1");
    assert_eq!(json["sharing"]["mps"]["failRequestsGreaterThanOne"], true);
    assert_eq!(json["sharing"]["mps"]["resources"][0]["devices"], "all");
    assert_eq!(
        json["imex"],
        serde_json::json!({"channelIDs": null, "required": false})
    );
}

#[test]
fn config_to_plan_gives_per_gpu_replicas() {
    use crate::gpu::{Gpu, Inventory};
    use crate::resources::{PlanOptions, plan};
    let gpu = |index: u32| Gpu {
        index,
        uuid: format!("GPU-4cf8db2d-06c0-7d70-1a51-e59b25b2c1{index:02}"),
        name: "NVIDIA H100".into(),
        memory_mib: 81920,
        pci_bus_id: format!("0000:0{index}:00.0"),
        minor: index,
        numa_node: None,
        compute_capability: None,
        nvlinks: vec![],
        mig_enabled: false,
        mig_devices: vec![],
    };
    let inventory = Inventory {
        driver_version: None,
        cuda_driver_version: None,
        gpus: vec![gpu(0), gpu(1), gpu(2)],
        faults: Vec::new(),
    };
    let text = "version: v1\nresources:\n  gpus: [{pattern: '*H100*', name: h100}]\nsharing:\n  timeSlicing:\n    resources:\n    - {name: h100, replicas: 2, devices: [0]}\n    - {name: h100, replicas: 3, devices: ['1'], rename: h100.big}\n";
    let config = parse(text).unwrap();
    assert!(config.validate().is_empty());
    let options = PlanOptions {
        gpu_patterns: config.resources.gpus.clone(),
        sharing: config.sharing_options(),
        ..Default::default()
    };
    let got = plan(&inventory, &options).unwrap();
    let counts: Vec<(&str, usize)> = got
        .values()
        .map(|r| (r.name.as_str(), r.devices.len()))
        .collect();
    assert_eq!(counts, [("nvidia.com/h100", 3), ("nvidia.com/h100.big", 3)]);
}

#[test]
fn check_lists_errors_and_ignored_keys_with_hints() {
    let text = "flags:\n  renameByDefault: true\n  migStrategy: none\nsharing:\n  timeSlicing:\n    resources:\n    - {name: gpu, replicas: 2, Devices: all}\n    - {name: gpu, replicas: 3}\nimex: {channelIDs: [1]}\n";
    let got = check(text);
    assert!(got.config.is_some());
    let errors: Vec<String> = got.errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].starts_with("sharing.timeSlicing.resources[0] and [1] both select all devices")
    );
    assert!(errors[1].starts_with("invalid IMEX channel IDs"));
    let ignored: Vec<String> = got.ignored_keys.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        ignored,
        [
            "unknown key 'renameByDefault' in flags is ignored; it belongs under sharing (sharing.timeSlicing or sharing.mps) (line 2, column 20)",
            "unknown key 'Devices' in sharing.timeSlicing.resources[0] is ignored (line 7, column 41)",
        ]
    );
}

#[test]
fn check_reports_decoding_errors_without_a_config() {
    let got = check("version: v2");
    assert_eq!(got.config, None);
    assert_eq!(got.errors.len(), 1);
}
