//! NVIDIA's v1 config file (placeholder: only `flags`; the full schema lands in this branch).
use serde::Deserialize;

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Config {
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub flags: Flags,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Flags {
    pub mig_strategy: Option<String>,
    pub fail_on_init_error: Option<bool>,
    pub mps_root: Option<String>,
    pub nvidia_driver_root: Option<String>,
    pub nvidia_dev_root: Option<String>,
    pub gdrcopy_enabled: Option<bool>,
    pub gds_enabled: Option<bool>,
    pub mofed_enabled: Option<bool>,
    pub device_discovery_strategy: Option<String>,
    pub plugin: Option<PluginFlags>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginFlags {
    pub pass_device_specs: Option<bool>,
    pub device_list_strategy: Option<Vec<String>>,
    pub device_id_strategy: Option<String>,
    pub cdi_annotation_prefix: Option<String>,
    pub nvidia_ctk_path: Option<String>,
    pub container_driver_root: Option<String>,
    pub shared_devices_allocation_policy: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

pub fn parse(text: &str) -> Result<Config, ConfigError> {
    if text.trim().is_empty() {
        return Ok(Config::default());
    }
    serde_saphyr::from_str(text).map_err(|e| ConfigError(e.to_string()))
}
