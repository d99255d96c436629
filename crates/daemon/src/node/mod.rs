//! The node's own view through the Kubernetes API: the config picked by the
//! node's label (NVIDIA's config-manager, in process) and GPU Feature
//! Discovery's labels published as an NFD `NodeFeature` or a `features.d`
//! file. Pure parts: [`select`] and [`labels`]; the rest are thin shells
//! (the API client, the label watch, the sinks). Nothing here talks to the
//! API server unless one of the two features is on.

pub mod client;
pub mod features;
pub mod labels;
pub mod select;
pub mod selector;
pub mod sink;

use std::path::PathBuf;
use std::time::Duration;

pub use labels::{LabelInput, Labels, gfd_labels};
pub use select::{Fallback, Rules, SelectError, Selected};

/// NVIDIA's `NODE_LABEL` default.
pub const DEFAULT_NODE_LABEL: &str = "nvidia.com/device-plugin.config";
/// NFD's `local` source file GFD writes (`--output-file`).
pub const DEFAULT_FEATURE_FILE: &str = "/etc/kubernetes/node-feature-discovery/features.d/gfd";
/// How long start-up waits for the node's label before using the default.
pub const LABEL_WAIT: Duration = Duration::from_secs(5);

/// Where GPU feature labels go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FeatureSink {
    #[default]
    None,
    /// NFD's `features.d` file.
    File,
    /// An NFD `NodeFeature` object `nvidia-features-for-<node>`.
    NodeFeature,
}

impl std::str::FromStr for FeatureSink {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(FeatureSink::None),
            "file" => Ok(FeatureSink::File),
            "nodefeature" => Ok(FeatureSink::NodeFeature),
            other => Err(format!(
                "unknown feature-labels sink {other:?}: use nodefeature, file or none"
            )),
        }
    }
}

/// Everything the node features need, from flags and env.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeOptions {
    /// `None`: the in-cluster config.
    pub kubeconfig: Option<PathBuf>,
    pub node_name: Option<String>,
    pub namespace: String,
    /// The pod that owns the NodeFeature object (both known, or no owner).
    pub pod_name: Option<String>,
    pub pod_uid: Option<String>,
    /// The directory of named configs; `None`: per-node config is off.
    pub config_dir: Option<PathBuf>,
    pub rules: Rules,
    pub feature_labels: FeatureSink,
    pub feature_file: PathBuf,
    /// The bounded wait for the label at start.
    pub label_wait: Duration,
    /// The DRA kubelet plugin (`--dra`); `None`: off.
    pub dra: Option<crate::dra::DraOptions>,
}

impl Default for NodeOptions {
    fn default() -> Self {
        NodeOptions {
            kubeconfig: None,
            node_name: None,
            namespace: "default".into(),
            pod_name: None,
            pod_uid: None,
            config_dir: None,
            rules: Rules {
                label: DEFAULT_NODE_LABEL.into(),
                default: None,
                fallbacks: vec![Fallback::Named, Fallback::Single],
            },
            feature_labels: FeatureSink::None,
            feature_file: PathBuf::from(DEFAULT_FEATURE_FILE),
            label_wait: LABEL_WAIT,
            dra: None,
        }
    }
}

impl NodeOptions {
    /// True when a feature needs the API server.
    pub fn needs_api(&self) -> bool {
        self.config_dir.is_some()
            || self.feature_labels == FeatureSink::NodeFeature
            || self.dra.is_some()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(
        "NODE_NAME is not set: per-node config and NodeFeature labels need the node's name (the chart sets it from spec.nodeName; or pass --node-name)"
    )]
    NoNodeName,
    #[error("cannot build a Kubernetes client from {from}: {error}")]
    Client { from: String, error: String },
    #[error("DRA: {0}")]
    Dra(#[from] crate::dra::DraError),
    #[error("per-node config: {0}")]
    Select(#[from] SelectError),
    #[error("cannot watch the config directory {dir}: {error}")]
    WatchDir { dir: String, error: String },
}
