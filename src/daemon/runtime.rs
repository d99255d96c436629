//! The daemon's event loop: one task owns the plan, the health state and the
//! supervisor, and reacts to socket-directory events, config and node-file
//! changes, SIGHUP, health events, recovery deadlines, periodic NVML rescans
//! and shutdown. Every change ends in `publish`, which hands fresh snapshots
//! to the supervisor (streams only wake when a device list really changed).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, watch};

use super::health::{self, HealthMsg, HealthWatcher};
use super::{
    BackendChoice, DaemonConfig, DaemonError, Desired, build_desired, control_nodes, load_config,
    make_backend, mps_started_marker, stopped,
};
use crate::config::Settings;
use crate::filewatch::watch_file;
use crate::gpu::{Backend, EventKind, HealthEvent, Inventory};
use crate::health::{HealthTracker, XidPolicy, affected_devices};
use crate::kubelet::watch_dir;
use crate::metrics::Metrics;
use crate::supervisor::Supervisor;

/// Quiet time after a file event before reloading, so a burst of events
/// (a ConfigMap swap, an editor's write-and-rename) gives one reload.
const DEBOUNCE: Duration = Duration::from_millis(20);
/// How often resources waiting for their MPS daemon are checked again.
const MPS_RECHECK: Duration = Duration::from_secs(1);
/// Retry delays for a backend that failed at start with failOnInitError=false.
const INIT_RETRY_MIN: Duration = Duration::from_secs(1);
const INIT_RETRY_MAX: Duration = Duration::from_secs(30);

/// Why the daemon reloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reload {
    ConfigFile,
    NodeFile,
    Signal,
    MpsDaemon,
    Rescan,
}

/// Reads the inventory (off the async threads: NVML calls may block) and plans.
async fn load(cfg: &DaemonConfig, backend: &Arc<dyn Backend>) -> Result<Desired, DaemonError> {
    let b = backend.clone();
    let inventory = tokio::task::spawn_blocking(move || b.inventory())
        .await
        .map_err(|e| DaemonError::Gpu(crate::gpu::GpuError::Nvml(e.to_string())))??;
    plan_for(cfg, &inventory)
}

/// Loads config and settings, and plans for `inventory`.
fn plan_for(cfg: &DaemonConfig, inventory: &Inventory) -> Result<Desired, DaemonError> {
    let file = load_config(cfg.config_file.as_deref())?;
    let settings = Settings::resolve(&cfg.overrides, &file)?;
    let mps_ready = |resource: &str| {
        settings
            .mps_root
            .as_deref()
            .is_some_and(|root| mps_started_marker(root, resource).exists())
    };
    let desired = build_desired(inventory, &settings, &file, &control_nodes(), &mps_ready)?;
    for name in &desired.pending_mps {
        tracing::info!(resource = %name, "waiting for the MPS control daemon to start before advertising");
    }
    Ok(desired)
}

/// Creates the backend and reads the inventory; with failOnInitError false,
/// keeps retrying with backoff until it works or the daemon stops.
async fn init_backend(
    cfg: &DaemonConfig,
    settings: &Settings,
    metrics: &Metrics,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Option<(Arc<dyn Backend>, Inventory)>, DaemonError> {
    let mut delay = INIT_RETRY_MIN;
    loop {
        let attempt =
            make_backend(&cfg.backend, settings).and_then(|b| b.inventory().map(|i| (b, i)));
        match attempt {
            Ok(backend) => return Ok(Some(backend)),
            Err(e) if settings.fail_on_init_error => return Err(e.into()),
            Err(e) => {
                metrics.set_backend_ok(false);
                metrics.nvml_error();
                tracing::error!(
                error = %e,
                retry_in_s = delay.as_secs(),
                "GPU discovery failed and failOnInitError is false: advertising no devices \
                 until it succeeds. Set FAIL_ON_INIT_ERROR=true to make this fatal."
                )
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stopped(shutdown) => return Ok(None),
        }
        delay = (delay * 2).min(INIT_RETRY_MAX);
    }
}

/// Runs until `shutdown` becomes true. Start-up errors are returned (the
/// binary exits 1); later errors are logged and the last good state serves on.
pub async fn run(
    cfg: DaemonConfig,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), DaemonError> {
    tracing::debug!("daemon starting");
    let (metrics, _metrics_server) = crate::metrics::start(cfg.metrics_address.as_deref()).await?;
    let _alive = metrics.alive("daemon");
    let file = load_config(cfg.config_file.as_deref())?;
    let settings = Settings::resolve(&cfg.overrides, &file)?;
    let Some((backend, inventory)) = init_backend(&cfg, &settings, &metrics, &mut shutdown).await?
    else {
        return Ok(());
    };
    metrics.set_backend_ok(true);
    tracing::debug!(backend = backend.name(), "GPU backend ready");
    let desired = plan_for(&cfg, &inventory)?;
    tracing::debug!(resources = desired.resources.len(), "planned");

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
    let (_node_watch, rescan) = match &cfg.backend {
        BackendChoice::Simulated(sim) => match sim.path() {
            Some(path) => (
                Some(
                    watch_file(path, Reload::NodeFile, reload_tx.clone())
                        .map_err(watch_error(path))?,
                ),
                None,
            ),
            None => (None, None),
        },
        BackendChoice::Nvml(_) => (None, cfg.health.rescan),
    };
    let mut hangup = signal(SignalKind::hangup()).map_err(DaemonError::Signal)?;
    let (health_tx, mut health_rx) = mpsc::unbounded_channel();

    if desired.resources.is_empty() {
        tracing::warn!("no devices found; waiting for a configuration or hardware change");
    }
    let policy =
        XidPolicy::from_env_values(cfg.health.disable.as_deref(), cfg.health.enable.as_deref());
    if policy.checks_disabled() {
        tracing::warn!("health checks are disabled (DP_DISABLE_HEALTHCHECKS)");
    }
    let mut rt = Runtime {
        backend,
        supervisor: Supervisor::new(&cfg.kubelet_socket).with_metrics(metrics.clone()),
        metrics,
        tracker: HealthTracker::new(cfg.health.recovery),
        policy,
        desired,
        health_tx,
        watcher: None,
        watched_gpus: Vec::new(),
    };
    rt.ensure_watcher();
    rt.publish().await;

    // A reload waits for DEBOUNCE of quiet without holding up anything else.
    let mut pending: Option<(Reload, tokio::time::Instant)> = None;
    loop {
        let waiting_for_mps = !rt.desired.pending_mps.is_empty();
        let deadline = rt
            .tracker
            .next_deadline()
            .map(tokio::time::Instant::from_std);
        tokio::select! {
            Some(event) = dir_events.recv() => rt.supervisor.on_dir_event(event).await,
            Some(msg) = health_rx.recv() => rt.on_health(msg).await,
            _ = hangup.recv() => {
                let _ = reload_tx.send(Reload::Signal);
            }
            Some(cause) = reloads.recv() => {
                pending = Some((cause, tokio::time::Instant::now() + DEBOUNCE));
            }
            _ = sleep_until_opt(pending.map(|(_, at)| at)) => {
                if let Some((cause, _)) = pending.take() {
                    rt.reload(&cfg, cause).await;
                }
            }
            _ = tokio::time::sleep(MPS_RECHECK), if waiting_for_mps => rt.reload(&cfg, Reload::MpsDaemon).await,
            _ = sleep_opt(rescan) => rt.reload(&cfg, Reload::Rescan).await,
            _ = sleep_until_opt(deadline) => {
                if rt.tracker.tick(Instant::now()) {
                    tracing::info!("quiet period over: devices are healthy again");
                    rt.publish().await;
                }
            }
            _ = stopped(&mut shutdown) => break,
        }
    }
    tracing::info!("shutting down");
    rt.watcher = None;
    rt.supervisor.shutdown().await;
    Ok(())
}

async fn sleep_opt(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

struct Runtime {
    backend: Arc<dyn Backend>,
    metrics: Metrics,
    supervisor: Supervisor,
    desired: Desired,
    tracker: HealthTracker,
    policy: XidPolicy,
    health_tx: mpsc::UnboundedSender<HealthMsg>,
    watcher: Option<HealthWatcher>,
    watched_gpus: Vec<String>,
}

impl Runtime {
    /// Serves the plan with the current health.
    async fn publish(&mut self) {
        let tracker = &self.tracker;
        let snapshots = self.desired.snapshots(&|d| tracker.is_healthy(&d.uuid));
        self.metrics.observe_plan(&snapshots);
        self.supervisor.apply(snapshots).await;
    }

    /// (Re)starts the health thread when the set of GPUs changed.
    fn ensure_watcher(&mut self) {
        if self.policy.checks_disabled() {
            return;
        }
        let gpus = self.desired.gpu_uuids();
        if self.watcher.is_some() && gpus == self.watched_gpus {
            return;
        }
        self.watcher = None;
        match health::spawn(self.backend.clone(), gpus.clone(), self.health_tx.clone()) {
            Ok(w) => {
                self.watcher = Some(w);
                self.watched_gpus = gpus;
            }
            Err(e) => tracing::error!(error = %e, "cannot start the health event thread"),
        }
    }

    async fn reload(&mut self, cfg: &DaemonConfig, cause: Reload) {
        // Waiting for an MPS daemon changes nothing in the hardware: re-plan the
        // inventory we have instead of asking NVML again every second.
        let loaded = if cause == Reload::MpsDaemon {
            plan_for(cfg, &self.desired.inventory)
        } else {
            load(cfg, &self.backend).await
        };
        match loaded {
            Ok(desired) => {
                self.metrics.set_backend_ok(true);
                if matches!(cause, Reload::ConfigFile | Reload::Signal) {
                    self.metrics.reload(true);
                }
                if self.tracker.nvml_failure().is_some() && self.tracker.nvml_ok(Instant::now()) {
                    tracing::info!("the GPU backend answers again: devices are healthy again");
                }
                if matches!(
                    cause,
                    Reload::ConfigFile | Reload::Signal | Reload::NodeFile
                ) {
                    tracing::info!(cause = ?cause, "configuration reloaded");
                }
                self.desired = desired;
                self.ensure_watcher();
                self.publish().await;
            }
            Err(DaemonError::Gpu(e)) => {
                self.metrics.nvml_error();
                self.metrics.set_backend_ok(false);
                tracing::error!(cause = ?cause, error = %e, "the GPU backend failed: every device is now unhealthy");
                if self
                    .tracker
                    .mark_all_unhealthy(&e.to_string(), Instant::now())
                {
                    self.publish().await;
                }
            }
            Err(e) => {
                self.metrics.reload(false);
                tracing::error!(
                    cause = ?cause,
                    error = %e,
                    "reload rejected; the previous configuration keeps serving"
                )
            }
        }
    }

    async fn on_health(&mut self, msg: HealthMsg) {
        let now = Instant::now();
        match msg {
            HealthMsg::Event(event) => {
                let xid = match event.kind {
                    EventKind::Xid(x) => x,
                    EventKind::DoubleBitEcc => 0,
                };
                if !self.policy.is_critical(event.kind) {
                    self.metrics.health_event(xid, "ignored");
                    tracing::debug!(event = ?event, "non-critical health event ignored");
                    return;
                }
                self.metrics.health_event(xid, "marked_unhealthy");
                if self.mark(&event, now) {
                    self.publish().await;
                }
            }
            HealthMsg::Failed(reason) => {
                self.metrics.nvml_error();
                self.metrics.set_backend_ok(false);
                tracing::error!(error = %reason, "health events failed: every device is now unhealthy; retrying");
                if self.tracker.mark_all_unhealthy(&reason, now) {
                    self.publish().await;
                }
            }
            HealthMsg::Recovered => {
                self.metrics.set_backend_ok(true);
                tracing::info!("the GPU backend answers again");
                if self.tracker.nvml_ok(now) {
                    self.publish().await;
                }
            }
        }
    }

    /// Marks every device the event hits; true when any health changed.
    fn mark(&mut self, event: &HealthEvent, now: Instant) -> bool {
        let mut changed = false;
        let mut hit = 0usize;
        for planned in self.desired.resources.values() {
            for i in affected_devices(event, &planned.resource.devices) {
                if let Some(d) = planned.resource.devices.get(i) {
                    changed |= self.tracker.mark_unhealthy(&d.uuid, now);
                    hit += 1;
                }
            }
        }
        let xid = match event.kind {
            EventKind::Xid(x) => x.to_string(),
            EventKind::DoubleBitEcc => "double-bit ECC".to_string(),
        };
        tracing::warn!(
            xid = %xid,
            gpu = %event.gpu_uuid,
            gpu_instance = ?event.gpu_instance_id,
            compute_instance = ?event.compute_instance_id,
            devices = hit,
            "critical health event: marking devices unhealthy"
        );
        changed
    }
}
