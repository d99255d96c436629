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
    /// `--cdi-root` / `CDI_ROOT`: where the CDI spec files are written.
    pub cdi_root: Option<String>,
    /// `--cdi-disable-hooks` / `CDI_DISABLE_HOOKS`.
    pub cdi_disable_hooks: Option<Vec<String>>,
    /// `--cdi-feature-flags` / `CDI_FEATURE_FLAGS`.
    pub cdi_feature_flags: Option<Vec<String>>,
}

/// `--device-list-strategy` values this plugin implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceListStrategy {
    Envvar,
    VolumeMounts,
    CdiAnnotations,
    CdiCri,
}

/// The CDI settings (used when a `cdi-*` strategy is chosen).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdiSettings {
    /// `--cdi-annotation-prefix`, default `cdi.k8s.io/`.
    pub annotation_prefix: String,
    /// `--nvidia-cdi-hook-path`, default `/usr/bin/nvidia-ctk`.
    pub hook_path: String,
    /// `--cdi-root`, default `/var/run/cdi`.
    pub root: PathBuf,
    /// `--cdi-disable-hooks`.
    pub disabled_hooks: Vec<String>,
    /// `--cdi-feature-flags` (nvcdi's names; the ones this plugin does not
    /// implement are accepted and have no effect).
    pub feature_flags: Vec<String>,
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
    pub shared_policy: SharedPolicy,
    pub cdi: CdiSettings,
}

/// Every problem found in the merged flags; displayed like NVIDIA's first error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsError(pub Vec<String>);

impl std::fmt::Display for SettingsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let first = self.0.first().map_or("invalid flags", String::as_str);
        write!(f, "unable to validate flags: {first}")?;
        if self.0.len() > 1 {
            write!(
                f,
                " (and {} more: {})",
                self.0.len() - 1,
                self.0[1..].join("; ")
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for SettingsError {}

/// The flags as the daemon runs with them: `merged` with NVIDIA's default
/// filled in for every value neither given nor in the file (what NVIDIA's
/// plugin logs at start, as its flag parser fills the defaults in).
pub fn effective_flags(merged: v1::Flags) -> v1::Flags {
    fn or<T>(v: Option<T>, d: T) -> Option<T> {
        Some(v.unwrap_or(d))
    }
    let driver_root = merged
        .nvidia_driver_root
        .clone()
        .unwrap_or_else(|| "/".into());
    let p = merged.plugin.clone().unwrap_or_default();
    v1::Flags {
        mig_strategy: or(merged.mig_strategy, "none".into()),
        fail_on_init_error: or(merged.fail_on_init_error, true),
        nvidia_dev_root: Some(
            merged
                .nvidia_dev_root
                .filter(|d| !d.is_empty())
                .unwrap_or_else(|| driver_root.clone()),
        ),
        nvidia_driver_root: Some(driver_root),
        gdrcopy_enabled: or(merged.gdrcopy_enabled, false),
        gds_enabled: or(merged.gds_enabled, false),
        mofed_enabled: or(merged.mofed_enabled, false),
        device_discovery_strategy: or(merged.device_discovery_strategy, "auto".into()),
        plugin: Some(v1::PluginFlags {
            pass_device_specs: or(p.pass_device_specs, false),
            device_list_strategy: or(p.device_list_strategy, vec!["envvar".into()]),
            device_id_strategy: or(p.device_id_strategy, "uuid".into()),
            cdi_annotation_prefix: or(p.cdi_annotation_prefix, "cdi.k8s.io/".into()),
            nvidia_ctk_path: or(p.nvidia_ctk_path, "/usr/bin/nvidia-ctk".into()),
            container_driver_root: or(p.container_driver_root, "/driver-root".into()),
            shared_devices_allocation_policy: or(
                p.shared_devices_allocation_policy,
                "distributed".into(),
            ),
        }),
        ..merged
    }
}

/// The file's flags with every value given on the command line or in the
/// environment written over them (NVIDIA's precedence, reference §1.9).
pub fn merged_flags(o: &Overrides, file: &v1::Flags) -> v1::Flags {
    fn over<T: Clone>(o: &Option<T>, f: &Option<T>) -> Option<T> {
        o.clone().or_else(|| f.clone())
    }
    let fp = file.plugin.clone().unwrap_or_default();
    v1::Flags {
        mig_strategy: over(&o.mig_strategy, &file.mig_strategy),
        fail_on_init_error: over(&o.fail_on_init_error, &file.fail_on_init_error),
        mps_root: over(&o.mps_root, &file.mps_root),
        nvidia_driver_root: over(&o.driver_root, &file.nvidia_driver_root),
        nvidia_dev_root: over(&o.dev_root, &file.nvidia_dev_root),
        gdrcopy_enabled: over(&o.gdrcopy_enabled, &file.gdrcopy_enabled),
        gds_enabled: over(&o.gds_enabled, &file.gds_enabled),
        mofed_enabled: over(&o.mofed_enabled, &file.mofed_enabled),
        device_discovery_strategy: over(
            &o.device_discovery_strategy,
            &file.device_discovery_strategy,
        ),
        plugin: Some(v1::PluginFlags {
            pass_device_specs: over(&o.pass_device_specs, &fp.pass_device_specs),
            device_list_strategy: over(&o.device_list_strategy, &fp.device_list_strategy),
            device_id_strategy: over(&o.device_id_strategy, &fp.device_id_strategy),
            cdi_annotation_prefix: over(&o.cdi_annotation_prefix, &fp.cdi_annotation_prefix),
            nvidia_ctk_path: over(&o.nvidia_cdi_hook_path, &fp.nvidia_ctk_path),
            container_driver_root: over(&o.container_driver_root, &fp.container_driver_root),
            shared_devices_allocation_policy: over(
                &o.shared_devices_allocation_policy,
                &fp.shared_devices_allocation_policy,
            ),
        }),
        ..file.clone()
    }
}

/// What this plugin refuses beyond NVIDIA's checks: strategies it does not implement.
fn unsupported(flags: &v1::Flags) -> Vec<String> {
    let mut errors = Vec::new();
    if flags.device_discovery_strategy.as_deref() == Some("tegra") {
        errors.push(
            "invalid --device-discovery-strategy option tegra: Tegra devices are not supported by gpu-device-plugin"
                .to_string(),
        );
    }
    errors
}

/// A comma list's trimmed, non-empty entries.
fn names(list: &Option<Vec<String>>) -> Vec<String> {
    list.iter()
        .flatten()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .collect()
}

impl Settings {
    /// Merges `overrides` over the file's flags over the defaults, and
    /// validates (NVIDIA's checks and texts, every error listed).
    pub fn resolve(overrides: &Overrides, file: &v1::Config) -> Result<Settings, SettingsError> {
        let flags = merged_flags(overrides, &file.flags);
        let mut errors: Vec<String> = v1::validate_flags(&flags, file.sharing_strategy())
            .into_iter()
            .map(|e| e.to_string())
            .collect();
        errors.extend(unsupported(&flags));
        if !errors.is_empty() {
            return Err(SettingsError(errors));
        }
        let plugin = flags.plugin.clone().unwrap_or_default();
        let text = |v: &Option<String>, d: &str| v.clone().unwrap_or_else(|| d.to_string());
        let mut device_list_strategies = Vec::new();
        for s in plugin
            .device_list_strategy
            .unwrap_or_else(|| vec!["envvar".into()])
        {
            let parsed = match s.as_str() {
                "volume-mounts" => DeviceListStrategy::VolumeMounts,
                "cdi-annotations" => DeviceListStrategy::CdiAnnotations,
                "cdi-cri" => DeviceListStrategy::CdiCri,
                _ => DeviceListStrategy::Envvar,
            };
            if !device_list_strategies.contains(&parsed) {
                device_list_strategies.push(parsed);
            }
        }
        let driver_root = text(&flags.nvidia_driver_root, "/");
        Ok(Settings {
            mig_strategy: flags
                .mig_strategy
                .as_deref()
                .and_then(MigStrategy::parse)
                .unwrap_or_default(),
            fail_on_init_error: flags.fail_on_init_error.unwrap_or(true),
            pass_device_specs: plugin.pass_device_specs.unwrap_or(false),
            device_list_strategies,
            device_id_strategy: plugin
                .device_id_strategy
                .as_deref()
                .and_then(DeviceIdStrategy::parse)
                .unwrap_or_default(),
            dev_root: flags
                .nvidia_dev_root
                .clone()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| driver_root.clone()),
            driver_root,
            container_driver_root: PathBuf::from(text(
                &plugin.container_driver_root,
                "/driver-root",
            )),
            mps_root: flags.mps_root.clone().filter(|s| !s.is_empty()),
            gdrcopy_enabled: flags.gdrcopy_enabled.unwrap_or(false),
            gds_enabled: flags.gds_enabled.unwrap_or(false),
            mofed_enabled: flags.mofed_enabled.unwrap_or(false),
            shared_policy: plugin
                .shared_devices_allocation_policy
                .as_deref()
                .and_then(SharedPolicy::parse)
                .unwrap_or_default(),
            cdi: CdiSettings {
                annotation_prefix: text(
                    &plugin.cdi_annotation_prefix,
                    crate::cdi::DEFAULT_ANNOTATION_PREFIX,
                ),
                hook_path: text(&plugin.nvidia_ctk_path, crate::cdi::DEFAULT_HOOK_PATH),
                root: PathBuf::from(text(&overrides.cdi_root, crate::cdi::DEFAULT_CDI_ROOT)),
                disabled_hooks: names(&overrides.cdi_disable_hooks),
                feature_flags: names(&overrides.cdi_feature_flags),
            },
        })
    }

    /// Whether a `cdi-*` strategy is chosen (the CDI spec is then written).
    pub fn uses_cdi(&self) -> bool {
        self.device_list_strategies.iter().any(|s| {
            matches!(
                s,
                DeviceListStrategy::CdiAnnotations | DeviceListStrategy::CdiCri
            )
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
