//! The daemon: load config and hardware, plan, serve and register, then react
//! to kubelet restarts, reload requests (SIGHUP) and shutdown.

mod build;

pub use build::{Desired, build_desired, control_nodes, mps_started_marker};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, watch};

use crate::config::{Overrides, Settings, SettingsError, v1};
use crate::filewatch::watch_file;
use crate::gpu::simulated::Simulated;
use crate::gpu::{Backend, GpuError};
use crate::kubelet::watch_dir;
use crate::resources::PlanError;
use crate::supervisor::Supervisor;

/// Which hardware backend to use.
#[derive(Debug, Clone)]
pub enum BackendChoice {
    Nvml,
    Simulated(Simulated),
}

/// Everything the daemon needs to start.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    pub overrides: Overrides,
    pub config_file: Option<PathBuf>,
    pub kubelet_socket: PathBuf,
    pub backend: BackendChoice,
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
    #[error("cannot install signal handler: {0}")]
    Signal(#[source] std::io::Error),
}

/// Reads, parses and validates the config file (no file: the empty config).
/// Every error is reported, with line and column where known.
pub fn load_config(path: Option<&Path>) -> Result<v1::Config, DaemonError> {
    let Some(path) = path else {
        return Ok(v1::Config::default());
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        DaemonError::Config(format!("error opening config file {}: {e}", path.display()))
    })?;
    let check = v1::check(&text);
    for ignored in &check.ignored_keys {
        tracing::warn!(file = %path.display(), "{ignored}");
    }
    match check.config {
        Some(config) if check.errors.is_empty() => Ok(config),
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

fn make_backend(
    choice: &BackendChoice,
    _settings: &Settings,
) -> Result<Arc<dyn Backend>, GpuError> {
    match choice {
        BackendChoice::Simulated(sim) => Ok(Arc::new(sim.clone())),
        BackendChoice::Nvml => Ok(Arc::new(crate::gpu::nvml::Nvml)),
    }
}

/// Loads everything and computes what to serve.
fn load(cfg: &DaemonConfig, backend: &dyn Backend) -> Result<Desired, DaemonError> {
    let file = load_config(cfg.config_file.as_deref())?;
    let settings = Settings::resolve(&cfg.overrides, &file)?;
    let inventory = backend.inventory()?;
    let mps_ready = |resource: &str| {
        settings
            .mps_root
            .as_deref()
            .is_some_and(|root| mps_started_marker(root, resource).exists())
    };
    let desired = build_desired(&inventory, &settings, &file, &control_nodes(), &mps_ready)?;
    for name in &desired.pending_mps {
        tracing::info!(resource = %name, "waiting for the MPS control daemon to start before advertising");
    }
    Ok(desired)
}

/// How often resources waiting for their MPS daemon are checked again.
const MPS_RECHECK: Duration = Duration::from_secs(1);

/// Quiet time after a file event before reloading, so a burst of events
/// (a ConfigMap swap, an editor's write-and-rename) gives one reload.
const DEBOUNCE: Duration = Duration::from_millis(20);

/// Why the daemon reloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reload {
    ConfigFile,
    NodeFile,
    Signal,
    MpsDaemon,
}

/// Runs until `shutdown` becomes true. Start-up errors are returned (the
/// binary exits 1); later errors are logged and the last good state serves on.
pub async fn run(
    cfg: DaemonConfig,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), DaemonError> {
    let file = load_config(cfg.config_file.as_deref())?;
    let settings = Settings::resolve(&cfg.overrides, &file)?;
    let backend = match make_backend(&cfg.backend, &settings).and_then(|b| b.inventory().map(|_| b))
    {
        Ok(backend) => backend,
        Err(e) if !settings.fail_on_init_error => {
            tracing::error!(
                error = %e,
                "GPU discovery failed and failOnInitError is false: advertising no devices. \
                 Set FAIL_ON_INIT_ERROR=true to make this fatal."
            );
            stopped(&mut shutdown).await;
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let desired = load(&cfg, backend.as_ref())?;

    let socket_dir = cfg
        .kubelet_socket
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    if !socket_dir.is_dir() {
        return Err(DaemonError::SocketDir(socket_dir.display().to_string()));
    }
    let watch_error = |dir: &Path| {
        let dir = dir.display().to_string();
        move |source| DaemonError::Watch { dir, source }
    };
    let (_socket_watch, mut dir_events) =
        watch_dir(&socket_dir).map_err(watch_error(&socket_dir))?;
    let (reload_tx, mut reloads) = mpsc::unbounded_channel();
    let _config_watch = match &cfg.config_file {
        Some(path) => Some(
            watch_file(path, Reload::ConfigFile, reload_tx.clone()).map_err(watch_error(path))?,
        ),
        None => None,
    };
    let _node_watch = match &cfg.backend {
        BackendChoice::Simulated(sim) => match sim.path() {
            Some(path) => Some(
                watch_file(path, Reload::NodeFile, reload_tx.clone()).map_err(watch_error(path))?,
            ),
            None => None,
        },
        BackendChoice::Nvml => None,
    };
    let mut hangup = signal(SignalKind::hangup()).map_err(DaemonError::Signal)?;

    if desired.snapshots.is_empty() {
        tracing::warn!("no devices found; waiting for a configuration or hardware change");
    }
    let mut supervisor = Supervisor::new(&cfg.kubelet_socket);
    let mut waiting_for_mps = !desired.pending_mps.is_empty();
    supervisor.apply(desired.snapshots).await;

    loop {
        tokio::select! {
            Some(event) = dir_events.recv() => supervisor.on_dir_event(event).await,
            _ = hangup.recv() => {
                let _ = reload_tx.send(Reload::Signal);
            }
            _ = tokio::time::sleep(MPS_RECHECK), if waiting_for_mps => {
                let _ = reload_tx.send(Reload::MpsDaemon);
            }
            Some(cause) = reloads.recv() => {
                tokio::time::sleep(DEBOUNCE).await;
                while reloads.try_recv().is_ok() {}
                match load(&cfg, backend.as_ref()) {
                    Ok(desired) => {
                        if cause != Reload::MpsDaemon {
                            tracing::info!(cause = ?cause, "configuration reloaded");
                        }
                        waiting_for_mps = !desired.pending_mps.is_empty();
                        supervisor.apply(desired.snapshots).await;
                    }
                    Err(e) => tracing::error!(
                        cause = ?cause,
                        error = %e,
                        "reload rejected; the previous configuration keeps serving"
                    ),
                }
            }
            _ = stopped(&mut shutdown) => break,
        }
    }
    tracing::info!("shutting down");
    supervisor.shutdown().await;
    Ok(())
}

/// Resolves once `rx` holds true (or its sender is gone).
pub async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}
