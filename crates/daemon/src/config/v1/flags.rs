//! The `flags` section (NVIDIA `flags.go`): every leaf optional, `None` meaning
//! "not given here"; the CLI/env merge fills the rest in.

use serde_json::{Value as Json, json};

use super::decode::{Ctx, opt_bool, opt_string, plain_struct};
use super::duration::Duration;
use super::node::{Node, Value};

#[derive(Debug, Clone, Default, PartialEq)]
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
    /// GFD only; passed through untouched.
    pub use_node_feature_api: Option<bool>,
    pub plugin: Option<PluginFlags>,
    pub gfd: Option<GfdFlags>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PluginFlags {
    pub pass_device_specs: Option<bool>,
    /// A string in the file becomes a one-element list.
    pub device_list_strategy: Option<Vec<String>>,
    pub device_id_strategy: Option<String>,
    pub cdi_annotation_prefix: Option<String>,
    pub nvidia_ctk_path: Option<String>,
    pub container_driver_root: Option<String>,
    pub shared_devices_allocation_policy: Option<String>,
}

/// GPU feature discovery flags; parsed for compatibility, unused by the plugin.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GfdFlags {
    pub oneshot: Option<bool>,
    pub no_timestamp: Option<bool>,
    pub sleep_interval: Option<Duration>,
    pub output_file: Option<String>,
    pub machine_type_file: Option<String>,
}

fn set<T>(slot: &mut Option<T>, decoded: Option<Option<T>>) {
    if let Some(v) = decoded {
        *slot = v;
    }
}

const FLAG_KEYS: [&str; 12] = [
    "migStrategy",
    "failOnInitError",
    "mpsRoot",
    "nvidiaDriverRoot",
    "nvidiaDevRoot",
    "gdrcopyEnabled",
    "gdsEnabled",
    "mofedEnabled",
    "useNodeFeatureAPI",
    "deviceDiscoveryStrategy",
    "plugin",
    "gfd",
];

impl Flags {
    /// Decodes into `self` (Go decodes into the existing value, so a repeated
    /// `flags` key merges).
    pub(crate) fn decode(&mut self, ctx: &mut Ctx, node: &Node) {
        plain_struct(ctx, node, "flags", "v1.Flags", &FLAG_KEYS, |ctx, key, v| {
            let path = format!("flags.{key}");
            match key {
                "migStrategy" => set(&mut self.mig_strategy, opt_string(ctx, v, &path)),
                "failOnInitError" => set(&mut self.fail_on_init_error, opt_bool(ctx, v, &path)),
                "mpsRoot" => set(&mut self.mps_root, opt_string(ctx, v, &path)),
                "nvidiaDriverRoot" => set(&mut self.nvidia_driver_root, opt_string(ctx, v, &path)),
                "nvidiaDevRoot" => set(&mut self.nvidia_dev_root, opt_string(ctx, v, &path)),
                "gdrcopyEnabled" => set(&mut self.gdrcopy_enabled, opt_bool(ctx, v, &path)),
                "gdsEnabled" => set(&mut self.gds_enabled, opt_bool(ctx, v, &path)),
                "mofedEnabled" => set(&mut self.mofed_enabled, opt_bool(ctx, v, &path)),
                "useNodeFeatureAPI" => set(&mut self.use_node_feature_api, opt_bool(ctx, v, &path)),
                "deviceDiscoveryStrategy" => set(
                    &mut self.device_discovery_strategy,
                    opt_string(ctx, v, &path),
                ),
                "plugin" if v.is_null() => self.plugin = None,
                "plugin" => self.plugin.get_or_insert_default().decode(ctx, v),
                "gfd" if v.is_null() => self.gfd = None,
                "gfd" => self.gfd.get_or_insert_default().decode(ctx, v),
                _ => {}
            }
        });
    }

    /// JSON as NVIDIA marshals it: keys without `omitempty` are always written.
    pub fn to_json(&self) -> Json {
        let mut out = json!({
            "migStrategy": self.mig_strategy,
            "failOnInitError": self.fail_on_init_error,
            "gdrcopyEnabled": self.gdrcopy_enabled,
            "gdsEnabled": self.gds_enabled,
            "mofedEnabled": self.mofed_enabled,
            "useNodeFeatureAPI": self.use_node_feature_api,
            "deviceDiscoveryStrategy": self.device_discovery_strategy,
        });
        if let Json::Object(map) = &mut out {
            let optional = [
                ("mpsRoot", self.mps_root.as_ref().map(|s| json!(s))),
                (
                    "nvidiaDriverRoot",
                    self.nvidia_driver_root.as_ref().map(|s| json!(s)),
                ),
                (
                    "nvidiaDevRoot",
                    self.nvidia_dev_root.as_ref().map(|s| json!(s)),
                ),
                ("plugin", self.plugin.as_ref().map(PluginFlags::to_json)),
                ("gfd", self.gfd.as_ref().map(GfdFlags::to_json)),
            ];
            for (key, value) in optional {
                if let Some(value) = value {
                    map.insert(key.to_string(), value);
                }
            }
        }
        out
    }
}

const PLUGIN_KEYS: [&str; 7] = [
    "passDeviceSpecs",
    "deviceListStrategy",
    "deviceIDStrategy",
    "cdiAnnotationPrefix",
    "nvidiaCTKPath",
    "containerDriverRoot",
    "sharedDevicesAllocationPolicy",
];

impl PluginFlags {
    fn decode(&mut self, ctx: &mut Ctx, node: &Node) {
        let go_type = "v1.PluginCommandLineFlags";
        plain_struct(
            ctx,
            node,
            "flags.plugin",
            go_type,
            &PLUGIN_KEYS,
            |ctx, key, v| {
                let path = format!("flags.plugin.{key}");
                match key {
                    "passDeviceSpecs" => set(&mut self.pass_device_specs, opt_bool(ctx, v, &path)),
                    "deviceListStrategy" => {
                        set(&mut self.device_list_strategy, device_list_strategy(ctx, v))
                    }
                    "deviceIDStrategy" => {
                        set(&mut self.device_id_strategy, opt_string(ctx, v, &path))
                    }
                    "cdiAnnotationPrefix" => {
                        set(&mut self.cdi_annotation_prefix, opt_string(ctx, v, &path))
                    }
                    "nvidiaCTKPath" => set(&mut self.nvidia_ctk_path, opt_string(ctx, v, &path)),
                    "containerDriverRoot" => {
                        set(&mut self.container_driver_root, opt_string(ctx, v, &path))
                    }
                    "sharedDevicesAllocationPolicy" => set(
                        &mut self.shared_devices_allocation_policy,
                        opt_string(ctx, v, &path),
                    ),
                    _ => {}
                }
            },
        );
    }

    pub fn to_json(&self) -> Json {
        json!({
            "passDeviceSpecs": self.pass_device_specs,
            "deviceListStrategy": self.device_list_strategy,
            "deviceIDStrategy": self.device_id_strategy,
            "cdiAnnotationPrefix": self.cdi_annotation_prefix,
            "nvidiaCTKPath": self.nvidia_ctk_path,
            "containerDriverRoot": self.container_driver_root,
            "sharedDevicesAllocationPolicy": self.shared_devices_allocation_policy,
        })
    }
}

/// A string (one strategy) or a list of strings; `null` clears it.
fn device_list_strategy(ctx: &mut Ctx, node: &Node) -> Option<Option<Vec<String>>> {
    let list = match &node.value {
        Value::Null => return Some(None),
        Value::Str(s) => Some(vec![s.clone()]),
        Value::Seq(items) => items
            .iter()
            .map(|item| match &item.value {
                Value::Str(s) => Some(s.clone()),
                // Go decodes a null list item as the empty string.
                Value::Null => Some(String::new()),
                _ => None,
            })
            .collect(),
        _ => None,
    };
    match list {
        Some(list) => Some(Some(list)),
        None => {
            ctx.error(
                node,
                format!("invalid deviceListStrategy: {}", node.to_json()),
            );
            None
        }
    }
}

const GFD_KEYS: [&str; 5] = [
    "oneshot",
    "noTimestamp",
    "sleepInterval",
    "outputFile",
    "machineTypeFile",
];

impl GfdFlags {
    fn decode(&mut self, ctx: &mut Ctx, node: &Node) {
        let go_type = "v1.GFDCommandLineFlags";
        plain_struct(ctx, node, "flags.gfd", go_type, &GFD_KEYS, |ctx, key, v| {
            let path = format!("flags.gfd.{key}");
            match key {
                "oneshot" => set(&mut self.oneshot, opt_bool(ctx, v, &path)),
                "noTimestamp" => set(&mut self.no_timestamp, opt_bool(ctx, v, &path)),
                "sleepInterval" if v.is_null() => self.sleep_interval = None,
                "sleepInterval" => {
                    if let Some(d) = Duration::decode(ctx, v) {
                        self.sleep_interval = Some(d);
                    }
                }
                "outputFile" => set(&mut self.output_file, opt_string(ctx, v, &path)),
                "machineTypeFile" => set(&mut self.machine_type_file, opt_string(ctx, v, &path)),
                _ => {}
            }
        });
    }

    pub fn to_json(&self) -> Json {
        json!({
            "oneshot": self.oneshot,
            "noTimestamp": self.no_timestamp,
            "outputFile": self.output_file,
            "sleepInterval": self.sleep_interval.map(|d| d.to_string()),
            "machineTypeFile": self.machine_type_file,
        })
    }
}

#[cfg(test)]
#[path = "flags_tests.rs"]
mod tests;
