//! Tests of `config::settings` (tables of cases).
use super::*;

fn cfg(flags: v1::Flags) -> v1::Config {
    v1::Config {
        flags,
        ..Default::default()
    }
}

fn file(mig: Option<&str>, id: Option<&str>) -> v1::Flags {
    v1::Flags {
        mig_strategy: mig.map(String::from),
        plugin: Some(v1::PluginFlags {
            device_id_strategy: id.map(String::from),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn precedence_is_override_then_file_then_default() {
    let cases = [
        (None, None, MigStrategy::None),
        (None, Some("mixed"), MigStrategy::Mixed),
        (Some("single"), Some("mixed"), MigStrategy::Single),
        (Some("single"), None, MigStrategy::Single),
    ];
    for (flag, in_file, want) in cases {
        let o = Overrides {
            mig_strategy: flag.map(String::from),
            ..Default::default()
        };
        let s = Settings::resolve(&o, &cfg(file(in_file, None))).unwrap();
        assert_eq!(s.mig_strategy, want, "flag {flag:?} file {in_file:?}");
    }
}

#[test]
fn defaults_match_nvidia() {
    let s = Settings::resolve(&Overrides::default(), &v1::Config::default()).unwrap();
    assert_eq!(s.mig_strategy, MigStrategy::None);
    assert!(s.fail_on_init_error);
    assert!(!s.pass_device_specs);
    assert_eq!(s.device_list_strategies, [DeviceListStrategy::Envvar]);
    assert_eq!(s.device_id_strategy, DeviceIdStrategy::Uuid);
    assert_eq!(s.driver_root, "/");
    assert_eq!(s.dev_root, "/");
    assert_eq!(s.container_driver_root, PathBuf::from("/driver-root"));
    assert_eq!(s.shared_policy, SharedPolicy::Distributed);
    assert!(s.extra_envs().is_empty());
}

#[test]
fn dev_root_follows_driver_root_unless_set() {
    let o = Overrides {
        driver_root: Some("/run/nvidia/driver".into()),
        ..Default::default()
    };
    assert_eq!(
        Settings::resolve(&o, &v1::Config::default())
            .unwrap()
            .dev_root,
        "/run/nvidia/driver"
    );
    let o = Overrides {
        driver_root: Some("/run/nvidia/driver".into()),
        dev_root: Some("/".into()),
        ..Default::default()
    };
    assert_eq!(
        Settings::resolve(&o, &v1::Config::default())
            .unwrap()
            .dev_root,
        "/"
    );
}

#[test]
fn invalid_values_fail_with_nvidias_texts() {
    let cases: [(Overrides, &str); 6] = [
        (
            Overrides {
                device_list_strategy: Some(vec!["bogus".into()]),
                ..Default::default()
            },
            "unable to validate flags: invalid --device-list-strategy option: invalid strategy: bogus",
        ),
        (
            Overrides {
                device_id_strategy: Some("serial".into()),
                ..Default::default()
            },
            "unable to validate flags: invalid --device-id-strategy option: serial",
        ),
        (
            Overrides {
                shared_devices_allocation_policy: Some("spread".into()),
                ..Default::default()
            },
            "unable to validate flags: invalid --shared-devices-allocation-policy option: spread",
        ),
        (
            Overrides {
                device_discovery_strategy: Some("vfio".into()),
                ..Default::default()
            },
            "unable to validate flags: invalid --device-discovery-strategy option vfio",
        ),
        (
            Overrides {
                mig_strategy: Some("".into()),
                ..Default::default()
            },
            "unable to validate flags: unknown MIG strategy: ",
        ),
        (
            Overrides {
                mig_strategy: Some("both".into()),
                ..Default::default()
            },
            "unable to validate flags: unknown MIG strategy: both",
        ),
    ];
    for (o, want) in cases {
        assert_eq!(
            Settings::resolve(&o, &v1::Config::default())
                .unwrap_err()
                .to_string(),
            want
        );
    }
}

#[test]
fn strategies_combine_and_cdi_is_accepted() {
    let o = Overrides {
        device_list_strategy: Some(vec!["envvar".into(), "volume-mounts".into()]),
        ..Default::default()
    };
    let s = Settings::resolve(&o, &v1::Config::default()).unwrap();
    assert_eq!(
        s.device_list_strategies,
        [DeviceListStrategy::Envvar, DeviceListStrategy::VolumeMounts]
    );
    let o = Overrides {
        device_list_strategy: Some(vec!["cdi-annotations".into(), "cdi-cri".into()]),
        ..Default::default()
    };
    let s = Settings::resolve(&o, &v1::Config::default()).unwrap();
    assert_eq!(
        s.device_list_strategies,
        [
            DeviceListStrategy::CdiAnnotations,
            DeviceListStrategy::CdiCri
        ]
    );
    assert!(s.uses_cdi());
}

#[test]
fn cdi_settings_default_to_nvidias_and_take_overrides() {
    let s = Settings::resolve(&Overrides::default(), &v1::Config::default()).unwrap();
    assert_eq!(s.cdi.annotation_prefix, "cdi.k8s.io/");
    assert_eq!(s.cdi.hook_path, "/usr/bin/nvidia-ctk");
    assert_eq!(s.cdi.root, std::path::PathBuf::from("/var/run/cdi"));
    assert!(!s.uses_cdi());
    let o = Overrides {
        cdi_annotation_prefix: Some("custom.cdi.k8s.io/".into()),
        nvidia_cdi_hook_path: Some("/opt/nvidia-cdi-hook".into()),
        cdi_root: Some("/tmp/cdi".into()),
        cdi_disable_hooks: Some(vec![" update-ldcache".into(), "".into()]),
        ..Default::default()
    };
    let s = Settings::resolve(&o, &v1::Config::default()).unwrap();
    assert_eq!(
        (s.cdi.annotation_prefix.as_str(), s.cdi.hook_path.as_str()),
        ("custom.cdi.k8s.io/", "/opt/nvidia-cdi-hook")
    );
    assert_eq!(s.cdi.root, std::path::PathBuf::from("/tmp/cdi"));
    assert_eq!(s.cdi.disabled_hooks, ["update-ldcache"]);
}

#[test]
fn switches_become_envs() {
    let o = Overrides {
        gds_enabled: Some(true),
        mofed_enabled: Some(true),
        ..Default::default()
    };
    let s = Settings::resolve(&o, &v1::Config::default()).unwrap();
    assert_eq!(
        s.extra_envs(),
        [
            ("NVIDIA_GDS".to_string(), "enabled".to_string()),
            ("NVIDIA_MOFED".to_string(), "enabled".to_string())
        ]
    );
}

#[test]
fn file_id_strategy_applies() {
    let s = Settings::resolve(&Overrides::default(), &cfg(file(None, Some("index")))).unwrap();
    assert_eq!(s.device_id_strategy, DeviceIdStrategy::Index);
}
