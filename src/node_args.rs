//! Flags and env vars of the node features (NVIDIA config-manager's and
//! GFD's names where they exist): per-node config by label, and GPU
//! feature labels. Neither is on by default; then no API access happens.

use std::path::PathBuf;

use clap::Args;
use gpu_device_plugin::dra::DraOptions;
use gpu_device_plugin::node::select::{DEFAULT_FALLBACKS, parse_fallbacks};
use gpu_device_plugin::node::{
    DEFAULT_FEATURE_FILE, DEFAULT_NODE_LABEL, FeatureSink, NodeOptions, Rules,
};

#[derive(Args, Debug)]
pub struct NodeArgs {
    /// Kubeconfig file for the API server; empty or unset = the in-cluster config.
    #[arg(long, env = "KUBECONFIG", global = true)]
    kubeconfig: Option<PathBuf>,
    /// This node's name (the chart sets it from spec.nodeName).
    #[arg(long, env = "NODE_NAME", global = true)]
    node_name: Option<String>,
    /// Namespace of the NodeFeature object.
    #[arg(long, env = "NAMESPACE", default_value = "default", global = true)]
    namespace: String,
    /// The plugin's pod, owner of the NodeFeature object (with --pod-uid).
    #[arg(long, env = "POD_NAME", global = true)]
    pod_name: Option<String>,
    #[arg(long, env = "POD_UID", global = true)]
    pod_uid: Option<String>,
    /// Directory of named configs (the chart's config.map); turns per-node
    /// config on: the node label picks `<dir>/<name>`.
    #[arg(long, env = "CONFIG_FILE_SRCDIR", global = true)]
    config_dir: Option<PathBuf>,
    /// The config used when the node has no label.
    #[arg(long, env = "DEFAULT_CONFIG", global = true)]
    default_config: Option<String>,
    /// The node label naming the config.
    #[arg(long, env = "NODE_LABEL", default_value = DEFAULT_NODE_LABEL, global = true)]
    node_label: String,
    /// Without label and default: named (a config called `default`), single
    /// (the only config), empty (the empty config), tried in order.
    #[arg(long, env = "FALLBACK_STRATEGIES", default_value = DEFAULT_FALLBACKS, global = true)]
    fallback_strategies: String,
    /// How long start-up waits for the node's label before using the default.
    #[arg(long, env = "NODE_LABEL_TIMEOUT", default_value = "5s", value_parser = crate::cli::positive_duration, global = true)]
    node_label_timeout: std::time::Duration,
    /// Where GPU feature labels go: nodefeature, file or none.
    #[arg(long, env = "FEATURE_LABELS", default_value = "none", global = true)]
    feature_labels: FeatureSink,
    /// Also serve the node's GPUs as a DRA kubelet plugin (driver gpu.nvidia.com):
    /// ResourceSlices, registration, claim preparation as CDI specs.
    #[arg(long, env = "DRA_ENABLED", global = true)]
    dra: bool,
    /// The kubelet's root (holds plugins_registry/ and plugins/).
    #[arg(long, env = "KUBELET_DIR", default_value = gpu_device_plugin::dra::DEFAULT_KUBELET_DIR, global = true)]
    kubelet_dir: PathBuf,
    /// Which GPUs DRA serves instead of the device plugin: all, or GPU
    /// indices/UUIDs (comma-separated). Only with --dra.
    #[arg(long, env = "DRA_DEVICES", default_value = "all", global = true)]
    dra_devices: gpu_device_plugin::dra::DraDevices,
    /// The features.d file of `--feature-labels file`.
    #[arg(long, env = "FEATURE_FILE", default_value = DEFAULT_FEATURE_FILE, global = true)]
    feature_file: PathBuf,
}

fn non_empty(s: &Option<String>) -> Option<String> {
    s.clone().filter(|s| !s.is_empty())
}

impl NodeArgs {
    pub fn options(&self) -> anyhow::Result<NodeOptions> {
        Ok(NodeOptions {
            kubeconfig: self
                .kubeconfig
                .clone()
                .filter(|p| !p.as_os_str().is_empty()),
            node_name: non_empty(&self.node_name),
            namespace: self.namespace.clone(),
            pod_name: non_empty(&self.pod_name),
            pod_uid: non_empty(&self.pod_uid),
            config_dir: self
                .config_dir
                .clone()
                .filter(|p| !p.as_os_str().is_empty()),
            rules: Rules {
                label: self.node_label.clone(),
                default: non_empty(&self.default_config),
                fallbacks: parse_fallbacks(&self.fallback_strategies)?,
            },
            feature_labels: self.feature_labels,
            feature_file: self.feature_file.clone(),
            label_wait: self.node_label_timeout,
            dra: self.dra.then(|| DraOptions {
                kubelet_dir: self.kubelet_dir.clone(),
                devices: self.dra_devices.clone(),
            }),
        })
    }
}

/// The plugin's own endpoint for `inspect` (its selected config, `/readyz`).
pub async fn plugin_status(
    listen: &str,
) -> gpu_device_plugin::inspect::plugin_status::PluginStatus {
    use gpu_device_plugin::inspect::{STEP_TIMEOUT, plugin_status::plugin_status};
    plugin_status(listen, STEP_TIMEOUT).await
}
