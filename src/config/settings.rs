//! The effective settings: command-line/env overrides merged over the config
//! file's `flags` and the defaults, then validated as NVIDIA's `validateFlags`
//! does (same order, same texts).

use std::path::PathBuf;

use super::v1;
use crate::allocate::preferred::SharedPolicy;
use crate::allocate::response::DeviceIdStrategy;
use crate::resources::MigStrategy;

/// Values given on the command line or in the environment (`None` = not given).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    pub mig_strategy: Option<String>,
    pub fail_on_init_error: Option<bool>,
    pub pass_device_specs: Option<bool>,
    pub device_list_strategy: Option<Vec<String>>,
    pub device_id_strategy: Option<String>,
    pub driver_root: Option<String>,
    pub dev_root: Option<String>,
    pub container_driver_root: Option<String>,
    pub mps_root: Option<String>,
    pub gdrcopy_enabled: Option<bool>,
    pub gds_enabled: Option<bool>,
    pub mofed_enabled: Option<bool>,
    pub device_discovery_strategy: Option<String>,
    pub shared_devices_allocation_policy: Option<String>,
    pub cdi_annotation_prefix: Option<String>,
    pub nvidia_cdi_hook_path: Option<String>,
}

/// `--device-list-strategy` values this plugin implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceListStrategy {
    Envvar,
    VolumeMounts,
}

/// The settings the daemon runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub mig_strategy: MigStrategy,
    pub fail_on_init_error: bool,
    pub pass_device_specs: bool,
    pub device_list_strategies: Vec<DeviceListStrategy>,
    pub device_id_strategy: DeviceIdStrategy,
    /// Host path of the driver root (`nvidiaDriverRoot`).
    pub driver_root: String,
    /// Host prefix of device nodes (`nvidiaDevRoot`, defaults to the driver root).
    pub dev_root: String,
    /// Where the host driver root is mounted in this container.
    pub container_driver_root: PathBuf,
    pub mps_root: Option<String>,
    pub gdrcopy_enabled: bool,
    pub gds_enabled: bool,
    pub mofed_enabled: bool,
    pub device_discovery_strategy: String,
    pub shared_policy: SharedPolicy,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("unable to validate flags: {0}")]
    Invalid(String),
}

fn invalid(msg: impl Into<String>) -> SettingsError {
    SettingsError::Invalid(msg.into())
}

impl Settings {
    /// Merges `overrides` over the file's `flags` over the defaults, and validates.
    pub fn resolve(overrides: &Overrides, file: &v1::Flags) -> Result<Settings, SettingsError> {
        let plugin = file.plugin.clone().unwrap_or_default();
        let pick = |o: &Option<String>, f: &Option<String>, d: &str| -> String {
            o.clone()
                .or_else(|| f.clone())
                .unwrap_or_else(|| d.to_string())
        };
        let flag = |o: Option<bool>, f: Option<bool>, d: bool| o.or(f).unwrap_or(d);

        let strategies = overrides
            .device_list_strategy
            .clone()
            .or(plugin.device_list_strategy.clone())
            .unwrap_or_else(|| vec!["envvar".to_string()]);
        let mut device_list_strategies = Vec::new();
        for s in &strategies {
            let parsed = match s.as_str() {
                "envvar" => DeviceListStrategy::Envvar,
                "volume-mounts" => DeviceListStrategy::VolumeMounts,
                "cdi-annotations" | "cdi-cri" => {
                    return Err(invalid(format!(
                        "invalid --device-list-strategy option: {s} is not supported by gpu-device-plugin yet \
                         (CDI spec generation is not implemented); use envvar and/or volume-mounts"
                    )));
                }
                other => {
                    return Err(invalid(format!(
                        "invalid --device-list-strategy option: invalid strategy: {other}"
                    )));
                }
            };
            if !device_list_strategies.contains(&parsed) {
                device_list_strategies.push(parsed);
            }
        }

        let id = pick(
            &overrides.device_id_strategy,
            &plugin.device_id_strategy,
            "uuid",
        );
        let device_id_strategy = DeviceIdStrategy::parse(&id)
            .ok_or_else(|| invalid(format!("invalid --device-id-strategy option: {id}")))?;

        let policy = pick(
            &overrides.shared_devices_allocation_policy,
            &plugin.shared_devices_allocation_policy,
            "distributed",
        );
        let shared_policy = SharedPolicy::parse(&policy).ok_or_else(|| {
            invalid(format!(
                "invalid --shared-devices-allocation-policy option: {policy}"
            ))
        })?;

        let discovery = pick(
            &overrides.device_discovery_strategy,
            &file.device_discovery_strategy,
            "auto",
        );
        if !matches!(discovery.as_str(), "auto" | "nvml" | "tegra") {
            return Err(invalid(format!(
                "invalid --device-discovery-strategy option {discovery}"
            )));
        }
        if discovery == "tegra" {
            return Err(invalid(
                "invalid --device-discovery-strategy option tegra: Tegra devices are not supported by gpu-device-plugin",
            ));
        }

        let mig = pick(&overrides.mig_strategy, &file.mig_strategy, "none");
        let mig_strategy = MigStrategy::parse(&mig)
            .ok_or_else(|| invalid(format!("unknown MIG strategy: {mig}")))?;

        let driver_root = pick(&overrides.driver_root, &file.nvidia_driver_root, "/");
        let dev_root = overrides
            .dev_root
            .clone()
            .or_else(|| file.nvidia_dev_root.clone())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| driver_root.clone());

        Ok(Settings {
            mig_strategy,
            fail_on_init_error: flag(overrides.fail_on_init_error, file.fail_on_init_error, true),
            pass_device_specs: flag(overrides.pass_device_specs, plugin.pass_device_specs, false),
            device_list_strategies,
            device_id_strategy,
            driver_root,
            dev_root,
            container_driver_root: PathBuf::from(pick(
                &overrides.container_driver_root,
                &plugin.container_driver_root,
                "/driver-root",
            )),
            mps_root: overrides
                .mps_root
                .clone()
                .or_else(|| file.mps_root.clone())
                .filter(|s| !s.is_empty()),
            gdrcopy_enabled: flag(overrides.gdrcopy_enabled, file.gdrcopy_enabled, false),
            gds_enabled: flag(overrides.gds_enabled, file.gds_enabled, false),
            mofed_enabled: flag(overrides.mofed_enabled, file.mofed_enabled, false),
            device_discovery_strategy: discovery,
            shared_policy,
        })
    }

    /// `NVIDIA_GDRCOPY`/`NVIDIA_GDS`/`NVIDIA_MOFED=enabled` for the enabled switches.
    pub fn extra_envs(&self) -> Vec<(String, String)> {
        [
            ("NVIDIA_GDRCOPY", self.gdrcopy_enabled),
            ("NVIDIA_GDS", self.gds_enabled),
            ("NVIDIA_MOFED", self.mofed_enabled),
        ]
        .into_iter()
        .filter(|(_, on)| *on)
        .map(|(k, _)| (k.to_string(), "enabled".to_string()))
        .collect()
    }
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
