//! The daemon: load config and hardware, plan, serve and register, then react
//! to kubelet restarts, reload requests (SIGHUP) and shutdown.

mod build;

pub use build::{Desired, build_desired, control_nodes};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::config::{Overrides, Settings, SettingsError, v1};
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
    /// Serve /metrics, /healthz and /readyz here (`:2112`, `127.0.0.1:0`).
    pub metrics_address: Option<String>,
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
}

/// Reads and parses the config file (no file: the empty config).
pub fn load_config(path: Option<&Path>) -> Result<v1::Config, DaemonError> {
    let Some(path) = path else {
        return Ok(v1::Config::default());
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        DaemonError::Config(format!("error opening config file {}: {e}", path.display()))
    })?;
    v1::parse(&text).map_err(|e| DaemonError::Config(format!("{}: {e}", path.display())))
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
    let settings = Settings::resolve(&cfg.overrides, &file.flags)?;
    let inventory = backend.inventory()?;
    Ok(build_desired(
        &inventory,
        &settings,
        &file,
        &control_nodes(),
    )?)
}

/// Runs until `shutdown` becomes true. Start-up errors are returned (the
/// binary exits 1); later errors are logged and the last good state serves on.
pub async fn run(
    cfg: DaemonConfig,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), DaemonError> {
    let (metrics, _metrics_server) = crate::metrics::start(cfg.metrics_address.as_deref()).await?;
    let _alive = metrics.alive("daemon");
    let file = load_config(cfg.config_file.as_deref())?;
    let settings = Settings::resolve(&cfg.overrides, &file.flags)?;
    let backend = match make_backend(&cfg.backend, &settings).and_then(|b| b.inventory().map(|_| b))
    {
        Ok(backend) => backend,
        Err(e) if !settings.fail_on_init_error => {
            metrics.set_backend_ok(false);
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
    metrics.set_backend_ok(true);
    let desired = load(&cfg, backend.as_ref())?;

    let socket_dir = cfg
        .kubelet_socket
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    if !socket_dir.is_dir() {
        return Err(DaemonError::SocketDir(socket_dir.display().to_string()));
    }
    let (_watcher, mut dir_events) =
        watch_dir(&socket_dir).map_err(|source| DaemonError::Watch {
            dir: socket_dir.display().to_string(),
            source,
        })?;
    let mut hangup = signal(SignalKind::hangup()).map_err(DaemonError::Signal)?;

    if desired.snapshots.is_empty() {
        tracing::warn!("no devices found; waiting for a configuration or hardware change");
    }
    let mut supervisor = Supervisor::new(&cfg.kubelet_socket).with_metrics(metrics.clone());
    metrics.observe_plan(&desired.snapshots);
    supervisor.apply(desired.snapshots).await;

    loop {
        tokio::select! {
            Some(event) = dir_events.recv() => supervisor.on_dir_event(event).await,
            _ = hangup.recv() => {
                tracing::info!("SIGHUP: reloading configuration");
                match load(&cfg, backend.as_ref()) {
                    Ok(desired) => {
                        metrics.reload(true);
                        metrics.observe_plan(&desired.snapshots);
                        supervisor.apply(desired.snapshots).await
                    }
                    Err(e) => {
                        metrics.reload(false);
                        tracing::error!(error = %e, "reload rejected; the previous configuration keeps serving")
                    }
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
