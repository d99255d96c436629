//! The daemon: a pure state machine (`state`) that decides, inside a thin
//! shell (`shell`) that reads config and hardware, serves and registers each
//! resource, and reacts to kubelet restarts, reload requests (SIGHUP), health
//! events and shutdown.

mod node_side;
mod prepare;
mod run;
mod shell;
pub mod state;
mod watcher;

pub use prepare::{Prepared, PreparedResource, control_nodes, mps_started_marker, prepare};
pub use run::{run, run_on_node};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::config::{Overrides, Settings, SettingsError, effective_flags, merged_flags, v1};
use crate::gpu::nvml::{Nvml, NvmlOptions};
use crate::gpu::simulated::Simulated;
use crate::gpu::{Backend, GpuError};
use crate::numa::NumaSource;
use crate::resources::PlanError;

/// Where the chart mounts the host's MPS root in both containers.
pub const DEFAULT_MPS_CTR_ROOT: &str = "/mps";

/// Which hardware backend to use.
#[derive(Debug, Clone)]
pub enum BackendChoice {
    /// NVML, with NUMA nodes from this source.
    Nvml(NumaSource),
    Simulated(Simulated),
}

/// Everything the daemon needs to start.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    pub overrides: Overrides,
    pub config_file: Option<PathBuf>,
    pub kubelet_socket: PathBuf,
    pub backend: BackendChoice,
    pub health: HealthOptions,
    /// Serve /metrics, /healthz and /readyz here (`:2112`, `127.0.0.1:0`).
    pub metrics_address: Option<String>,
    /// Usage sampling, pod attribution and DCGM-compatible names.
    pub usage: crate::usage::UsageOptions,
}

/// Health checking and hardware re-discovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthOptions {
    /// `DP_DISABLE_HEALTHCHECKS`, as NVIDIA reads it.
    pub disable: Option<String>,
    /// `DP_ENABLE_HEALTHCHECKS`, as NVIDIA reads it.
    pub enable: Option<String>,
    /// A device hit by a critical event is healthy again after this long
    /// without another one; `None` = never (NVIDIA's behaviour).
    pub recovery: Option<Duration>,
    /// How often NVML is asked whether GPUs or MIG devices changed; `None` = never.
    pub rescan: Option<Duration>,
    /// Where the MPS root is mounted in this container (`--mps-root-ctr-path`):
    /// each MPS resource's `.started` marker is read under it.
    pub mps_marker_root: String,
}

impl Default for HealthOptions {
    fn default() -> Self {
        HealthOptions {
            disable: None,
            enable: None,
            recovery: Some(Duration::from_secs(300)),
            rescan: Some(Duration::from_secs(30)),
            mps_marker_root: DEFAULT_MPS_CTR_ROOT.to_string(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("unable to load config: {0}")]
    Config(String),
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error(transparent)]
    Gpu(#[from] GpuError),
    #[error("error starting plugins: {0}")]
    Plan(#[from] PlanError),
    #[error(
        "kubelet socket directory {0} does not exist: mount the host's /var/lib/kubelet/device-plugins there, or fix --kubelet-socket"
    )]
    SocketDir(String),
    #[error("cannot watch {dir}: {source}")]
    Watch {
        dir: String,
        #[source]
        source: notify::Error,
    },
    #[error(transparent)]
    Metrics(#[from] crate::metrics::MetricsError),
    #[error("cannot install signal handler: {0}")]
    Signal(#[source] std::io::Error),
    #[error("cannot start the usage sampler thread: {0}")]
    Usage(#[source] std::io::Error),
    #[error(transparent)]
    Node(#[from] crate::node::NodeError),
    /// Start-up failed with failOnInitError=true.
    #[error("{0}")]
    Init(String),
}

/// Reads, parses and validates the config file (no file: the empty config).
/// Every error is reported, with line and column where known; keys NVIDIA
/// would ignore come back as warnings.
pub fn read_config_file(path: Option<&Path>) -> Result<(v1::Config, Vec<String>), DaemonError> {
    let Some(path) = path else {
        return Ok((v1::Config::default(), Vec::new()));
    };
    let text = crate::config::read_bounded(path, crate::config::MAX_CONFIG_FILE_BYTES)
        .map_err(|e| DaemonError::Config(format!("error opening config file: {e}")))?;
    let check = v1::check(&text);
    let ignored = check
        .ignored_keys
        .iter()
        .map(|k| format!("{}: {k}", path.display()))
        .collect();
    match check.config {
        Some(config) if check.errors.is_empty() => Ok((config, ignored)),
        _ => {
            let errors: Vec<String> = check.errors.iter().map(ToString::to_string).collect();
            Err(DaemonError::Config(format!(
                "{}: {}",
                path.display(),
                errors.join("; ")
            )))
        }
    }
}

/// Reads the config file and merges it with env and flags into the
/// validated config the daemon runs with.
pub fn load_config(
    path: Option<&Path>,
    overrides: &Overrides,
) -> Result<state::LoadedConfig, DaemonError> {
    let (file, ignored) = read_config_file(path)?;
    let settings = Settings::resolve(overrides, &file)?;
    let effective = v1::Config {
        flags: effective_flags(merged_flags(overrides, &file.flags)),
        ..file.clone()
    }
    .to_json()
    .to_string();
    Ok(state::LoadedConfig {
        file,
        settings,
        ignored,
        effective,
    })
}

pub fn make_backend(
    choice: &BackendChoice,
    settings: &Settings,
) -> Result<Arc<dyn Backend>, GpuError> {
    match choice {
        BackendChoice::Simulated(sim) => Ok(Arc::new(sim.clone())),
        BackendChoice::Nvml(numa) => Ok(Arc::new(Nvml::new(NvmlOptions {
            container_driver_root: settings.container_driver_root.clone(),
            numa: numa.clone(),
            ..NvmlOptions::default()
        })?)),
    }
}

/// Resolves once `rx` holds true (or its sender is gone).
pub async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}
