//! Tests of `config::v1::flags` (tables of cases).
use serde_json::json;

use super::*;
use crate::config::v1::test_support::fragment;

fn flags(text: &str) -> Result<Flags, Vec<String>> {
    fragment(text, |ctx, node| {
        let mut f = Flags::default();
        f.decode(ctx, node);
        Some(f)
    })
    .map_err(|e| e.iter().map(|e| e.message.clone()).collect())
}

fn gfd_sleep(d: Duration) -> Flags {
    Flags {
        gfd: Some(GfdFlags {
            sleep_interval: Some(d),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn list_strategy(v: &[&str]) -> Flags {
    Flags {
        plugin: Some(PluginFlags {
            device_list_strategy: Some(v.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn unmarshal_flags_vectors() {
    let cases: [(&str, Result<Flags, ()>); 10] = [
        ("", Err(())),
        ("{}", Ok(Flags::default())),
        (
            r#"{"gfd":{}}"#,
            Ok(Flags {
                gfd: Some(GfdFlags::default()),
                ..Default::default()
            }),
        ),
        (r#"{"gfd":{"sleepInterval":0}}"#, Ok(gfd_sleep(Duration(0)))),
        (
            r#"{"gfd":{"sleepInterval":"0s"}}"#,
            Ok(gfd_sleep(Duration(0))),
        ),
        (r#"{"gfd":{"sleepInterval":5}}"#, Ok(gfd_sleep(Duration(5)))),
        (
            r#"{"gfd":{"sleepInterval":"5s"}}"#,
            Ok(gfd_sleep(Duration(5_000_000_000))),
        ),
        (
            r#"{"gfd":{"sleepInterval":"infinite"}}"#,
            Ok(gfd_sleep(Duration::INFINITE)),
        ),
        (
            r#"{"plugin":{"deviceListStrategy":"envvar"}}"#,
            Ok(list_strategy(&["envvar"])),
        ),
        (
            r#"{"plugin":{"deviceListStrategy":["envvar","cdi-annotations"]}}"#,
            Ok(list_strategy(&["envvar", "cdi-annotations"])),
        ),
    ];
    for (input, want) in cases {
        assert_eq!(flags(input).map_err(|_| ()), want, "{input:?}");
    }
}

#[test]
fn marshal_flags_vectors() {
    let base = json!({"migStrategy":null,"failOnInitError":null,"gdrcopyEnabled":null,"gdsEnabled":null,
        "mofedEnabled":null,"useNodeFeatureAPI":null,"deviceDiscoveryStrategy":null});
    let with_gfd = |sleep: &str| {
        let mut v = base.clone();
        v["gfd"] = json!({"oneshot":null,"noTimestamp":null,"outputFile":null,"sleepInterval":sleep,"machineTypeFile":null});
        v
    };
    let cases = [
        (Flags::default(), base.clone()),
        (gfd_sleep(Duration(0)), with_gfd("0s")),
        (gfd_sleep(Duration(5)), with_gfd("5ns")),
        (gfd_sleep(Duration::INFINITE), with_gfd("infinite")),
    ];
    for (input, want) in cases {
        assert_eq!(input.to_json(), want, "{input:?}");
    }
}

#[test]
fn every_flag_is_read() {
    let text = r#"
migStrategy: mixed
failOnInitError: false
mpsRoot: /run/nvidia/mps
nvidiaDriverRoot: /run/nvidia/driver
nvidiaDevRoot: /
gdrcopyEnabled: true
gdsEnabled: true
mofedEnabled: true
useNodeFeatureAPI: false
deviceDiscoveryStrategy: nvml
plugin:
  passDeviceSpecs: true
  deviceListStrategy: [envvar, cdi-cri]
  deviceIDStrategy: index
  cdiAnnotationPrefix: cdi.k8s.io/
  nvidiaCTKPath: /usr/bin/nvidia-ctk
  containerDriverRoot: /driver-root
  sharedDevicesAllocationPolicy: packed
gfd:
  oneshot: true
  noTimestamp: true
  sleepInterval: 1m30s
  outputFile: /out
  machineTypeFile: /sys/class/dmi/id/product_name
"#;
    let s = |v: &str| Some(v.to_string());
    let want = Flags {
        mig_strategy: s("mixed"),
        fail_on_init_error: Some(false),
        mps_root: s("/run/nvidia/mps"),
        nvidia_driver_root: s("/run/nvidia/driver"),
        nvidia_dev_root: s("/"),
        gdrcopy_enabled: Some(true),
        gds_enabled: Some(true),
        mofed_enabled: Some(true),
        device_discovery_strategy: s("nvml"),
        use_node_feature_api: Some(false),
        plugin: Some(PluginFlags {
            pass_device_specs: Some(true),
            device_list_strategy: Some(vec!["envvar".into(), "cdi-cri".into()]),
            device_id_strategy: s("index"),
            cdi_annotation_prefix: s("cdi.k8s.io/"),
            nvidia_ctk_path: s("/usr/bin/nvidia-ctk"),
            container_driver_root: s("/driver-root"),
            shared_devices_allocation_policy: s("packed"),
        }),
        gfd: Some(GfdFlags {
            oneshot: Some(true),
            no_timestamp: Some(true),
            sleep_interval: Some(Duration(90_000_000_000)),
            output_file: s("/out"),
            machine_type_file: s("/sys/class/dmi/id/product_name"),
        }),
    };
    assert_eq!(flags(text), Ok(want));
}

#[test]
fn flag_keys_match_case_insensitively_exact_first() {
    let got = flags("MIGSTRATEGY: single\nPlugin: {DEVICEIDSTRATEGY: index}").unwrap();
    assert_eq!(got.mig_strategy.as_deref(), Some("single"));
    assert_eq!(
        got.plugin.and_then(|p| p.device_id_strategy).as_deref(),
        Some("index")
    );
}

#[test]
fn later_duplicate_key_wins() {
    let got = flags("migStrategy: none\nMigStrategy: mixed").unwrap();
    assert_eq!(got.mig_strategy.as_deref(), Some("mixed"));
}

#[test]
fn yaml_scalars_become_strings_for_string_flags() {
    let got = flags("migStrategy: 1\nmpsRoot: true").unwrap();
    assert_eq!(
        (got.mig_strategy.as_deref(), got.mps_root.as_deref()),
        (Some("1"), Some("true"))
    );
}

#[test]
fn null_plugin_and_gfd_are_absent() {
    assert_eq!(flags("plugin:\ngfd: ~"), Ok(Flags::default()));
}

#[test]
fn bad_flag_values_report_each_error() {
    let got = flags(
        "failOnInitError: maybe\nplugin: {deviceListStrategy: 5, passDeviceSpecs: 1}\ngfd: {sleepInterval: true}",
    );
    let want = vec![
        "json: cannot unmarshal string into Go struct field flags.failOnInitError of type bool".to_string(),
        "invalid deviceListStrategy: 5".to_string(),
        "json: cannot unmarshal number into Go struct field flags.plugin.passDeviceSpecs of type bool".to_string(),
        "invalid duration".to_string(),
    ];
    assert_eq!(got, Err(want));
}

#[test]
fn device_list_strategy_rejects_non_string_items() {
    assert_eq!(
        flags("plugin: {deviceListStrategy: [envvar, 1]}"),
        Err(vec![
            r#"invalid deviceListStrategy: ["envvar",1]"#.to_string()
        ])
    );
}
