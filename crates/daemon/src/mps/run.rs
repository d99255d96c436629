//! The control daemon's loop: read the config and the GPUs, start one MPS
//! control daemon per MPS resource, ask each a harmless query every health
//! interval (no answer = dead: the marker goes and the daemon is restarted
//! with backoff), apply config changes to the resources whose MPS settings
//! changed, and stop everything on SIGTERM.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::MpsError;
use super::control::{Control, resolve};
use super::plan::{DaemonSpec, Layout, diff, plan_daemons};
use crate::config::Overrides;
use crate::daemon::{BackendChoice, load_config, stopped};
use crate::metrics::Metrics;
use crate::node::NodeOptions;
use crate::node::client::make_client;
use crate::node::selector::{self, ConfigSlot};
use crate::watch::on_file_change;

/// The harmless query whose answer means "alive".
const HEALTH_QUERY: &str = "get_default_active_thread_percentage";
/// Restart delays of a control daemon that died or failed to start.
const RESTART_MIN: Duration = Duration::from_millis(500);
const RESTART_MAX: Duration = Duration::from_secs(30);

/// Everything `mps-control-daemon` needs.
#[derive(Debug, Clone)]
pub struct MpsOptions {
    pub overrides: Overrides,
    pub config_file: Option<PathBuf>,
    pub backend: BackendChoice,
    /// `--mps-root-ctr-path`: the MPS root as mounted in this container.
    pub root: PathBuf,
    /// `--mps-control-bin`, and `nvidia-smi` (a name is looked up on PATH).
    pub control_bin: PathBuf,
    pub smi_bin: PathBuf,
    /// `--mps-health-interval`.
    pub health_interval: Duration,
}

/// One resource's control daemon.
struct Daemon {
    spec: DaemonSpec,
    up: bool,
    retry_at: Option<Instant>,
    next_delay: Duration,
}

struct Supervisor {
    control: Control,
    layout: Layout,
    daemons: BTreeMap<String, Daemon>,
}

/// Reads config (`path`: the config file or the label-selected one), env and
/// flags with the plugin's loader and plans the daemons.
async fn load(
    opts: &MpsOptions,
    path: Option<&std::path::Path>,
) -> Result<BTreeMap<String, DaemonSpec>, MpsError> {
    let config = load_config(path, &opts.overrides)?;
    for ignored in &config.ignored {
        tracing::warn!("{ignored}");
    }
    tracing::info!(config = %config.effective, "MPS control daemon config");
    let backend = crate::daemon::make_backend(&opts.backend, &config.settings)
        .map_err(|e| MpsError::Inventory(e.to_string()))?;
    let inventory = tokio::task::spawn_blocking(move || backend.inventory())
        .await
        .map_err(|e| MpsError::Inventory(e.to_string()))?
        .map_err(|e| MpsError::Inventory(e.to_string()))?;
    plan_daemons(&inventory, &config.settings, &config.file)
}

/// Runs until `shutdown` becomes true. Start-up errors are returned (exit 1);
/// a config change that cannot be applied keeps the running daemons.
pub async fn run(opts: MpsOptions, shutdown: watch::Receiver<bool>) -> Result<(), MpsError> {
    run_on_node(opts, NodeOptions::default(), shutdown).await
}

/// [`run`], with per-node config when `node.config_dir` is set: the node's
/// label picks the config file exactly as in the plugin (same selection,
/// same bounded wait at start), so both pods run the same named config.
pub async fn run_on_node(
    opts: MpsOptions,
    node: NodeOptions,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), MpsError> {
    let mut hangup = signal(SignalKind::hangup()).map_err(MpsError::Signal)?;
    let control = Control {
        control_bin: resolve(&opts.control_bin, "--mps-control-bin")?,
        smi_bin: resolve(&opts.smi_bin, "--nvidia-smi-bin")?,
    };
    let (tx, mut changes) = mpsc::unbounded_channel();
    let selection = match &node.config_dir {
        Some(_) => {
            let client = make_client(node.kubeconfig.as_deref()).await?;
            let tx = tx.clone();
            let reload = move || {
                let _ = tx.send(());
            };
            Some(selector::start(client, &node, Metrics::new(), reload).await?)
        }
        None => None,
    };
    let slot = selection.as_ref().map_or_else(
        || ConfigSlot::new(opts.config_file.clone()),
        |s| s.slot.clone(),
    );
    let specs = load(&opts, slot.get().as_deref()).await?;
    let file = if selection.is_some() {
        None
    } else {
        opts.config_file.as_ref()
    };
    let _watch = match file {
        Some(path) => Some(
            on_file_change(path, move || {
                let _ = tx.send(());
            })
            .map_err(|source| MpsError::Watch {
                path: path.display().to_string(),
                source,
            })?,
        ),
        None => None,
    };
    let mut sup = Supervisor {
        control,
        layout: Layout {
            root: opts.root.clone(),
        },
        daemons: BTreeMap::new(),
    };
    sup.apply(specs).await;
    let mut health = tokio::time::interval(opts.health_interval);
    health.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    health.reset();
    loop {
        let retry = sup.next_retry();
        tokio::select! {
            biased;
            _ = stopped(&mut shutdown) => break,
            Some(()) = changes.recv() => sup.reload(&opts, &slot).await,
            _ = hangup.recv() => sup.reload(&opts, &slot).await,
            _ = health.tick() => sup.check().await,
            _ = sleep_until_opt(retry) => sup.retry().await,
        }
    }
    tracing::info!("stopping the MPS control daemons");
    sup.remove_ready();
    let names: Vec<String> = sup.daemons.keys().cloned().collect();
    for name in names {
        sup.stop(&name).await;
    }
    Ok(())
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Supervisor {
    async fn reload(&mut self, opts: &MpsOptions, slot: &ConfigSlot) {
        match load(opts, slot.get().as_deref()).await {
            Ok(specs) => self.apply(specs).await,
            Err(e) => tracing::error!(
                error = %e,
                "reload rejected; the running MPS control daemons keep their configuration"
            ),
        }
    }

    /// Stops the daemons that are gone or changed, starts the new or changed.
    async fn apply(&mut self, specs: BTreeMap<String, DaemonSpec>) {
        let old: BTreeMap<String, DaemonSpec> = self
            .daemons
            .iter()
            .map(|(k, d)| (k.clone(), d.spec.clone()))
            .collect();
        let changes = diff(&old, &specs);
        if specs.is_empty() && old.is_empty() {
            tracing::info!(
                "No devices are configured for MPS sharing; waiting for a configuration change"
            );
        }
        if !changes.stop.is_empty() || !changes.start.is_empty() {
            self.remove_ready();
        }
        for name in &changes.stop {
            tracing::info!(resource = %name, "MPS settings changed or removed: stopping its control daemon");
            self.stop(name).await;
        }
        for name in changes.start {
            let Some(spec) = specs.get(&name) else {
                continue;
            };
            let mut daemon = Daemon {
                spec: spec.clone(),
                up: false,
                retry_at: None,
                next_delay: RESTART_MIN,
            };
            self.start(&mut daemon).await;
            self.daemons.insert(name, daemon);
        }
        self.update_ready();
    }

    /// The start sequence of reference B3; the marker only once the daemon answers.
    async fn start(&self, daemon: &mut Daemon) {
        let name = daemon.spec.resource.clone();
        match self.start_sequence(&daemon.spec).await {
            Ok(()) => {
                daemon.up = true;
                daemon.retry_at = None;
                daemon.next_delay = RESTART_MIN;
                tracing::info!(
                    resource = %name,
                    marker = %self.layout.marker(&name).display(),
                    gpus = daemon.spec.gpus.len(),
                    thread_percentage = daemon.spec.thread_percentage(),
                    "MPS control daemon started"
                );
            }
            Err(e) => {
                let delay = daemon.next_delay;
                daemon.up = false;
                daemon.retry_at = Some(Instant::now() + delay);
                daemon.next_delay = (delay * 2).min(RESTART_MAX);
                tracing::error!(resource = %name, error = %e, retry_in_ms = delay.as_millis() as u64, "Failed to start MPS daemon; retrying");
            }
        }
    }

    async fn start_sequence(&self, spec: &DaemonSpec) -> Result<(), MpsError> {
        let env = spec.env(&self.layout);
        for gpu in &spec.gpus {
            self.control
                .compute_mode(&gpu.uuid, "EXCLUSIVE_PROCESS")
                .await?;
        }
        for dir in [
            self.layout.pipe_dir(&spec.resource),
            self.layout.log_dir(&spec.resource),
        ] {
            std::fs::create_dir_all(&dir).map_err(|source| MpsError::Io {
                path: dir.display().to_string(),
                source,
            })?;
        }
        // A server left from a half-finished start or an earlier run of this
        // daemon would make `-d` fail: ask it to quit (no answer = none there).
        let _ = self.control.send(&env, "quit").await;
        self.control.start(&env).await?;
        for command in spec.commands() {
            self.control.send(&env, &command).await?;
        }
        self.control.send(&env, HEALTH_QUERY).await?;
        let marker = self.layout.marker(&spec.resource);
        std::fs::write(&marker, b"").map_err(|source| MpsError::Io {
            path: marker.display().to_string(),
            source,
        })
    }

    /// Removes the marker first (the plugin then stops admitting pods), then
    /// `quit`, the compute mode back to DEFAULT, and the log directory.
    async fn stop(&mut self, name: &str) {
        let Some(daemon) = self.daemons.remove(name) else {
            return;
        };
        self.remove_marker(name);
        let env = daemon.spec.env(&self.layout);
        if let Err(e) = self.control.send(&env, "quit").await {
            tracing::warn!(resource = %name, error = %e, "error sending quit message");
        }
        for gpu in &daemon.spec.gpus {
            if let Err(e) = self.control.compute_mode(&gpu.uuid, "DEFAULT").await {
                tracing::warn!(resource = %name, gpu = %gpu.uuid, error = %e, "cannot reset the compute mode");
            }
        }
        let _ = std::fs::remove_dir_all(self.layout.log_dir(name));
        tracing::info!(resource = %name, "MPS control daemon stopped");
    }

    /// Asks every running daemon the health query.
    async fn check(&mut self) {
        let names: Vec<String> = self
            .daemons
            .iter()
            .filter(|(_, d)| d.up)
            .map(|(k, _)| k.clone())
            .collect();
        for name in names {
            let Some(daemon) = self.daemons.get(&name) else {
                continue;
            };
            let env = daemon.spec.env(&self.layout);
            let Err(e) = self.control.send(&env, HEALTH_QUERY).await else {
                continue;
            };
            self.remove_marker(&name);
            self.remove_ready();
            if let Some(daemon) = self.daemons.get_mut(&name) {
                let delay = daemon.next_delay;
                daemon.up = false;
                daemon.retry_at = Some(Instant::now() + delay);
                daemon.next_delay = (delay * 2).min(RESTART_MAX);
                tracing::warn!(
                    resource = %name,
                    error = %e,
                    retry_in_ms = delay.as_millis() as u64,
                    "the MPS control daemon does not answer: marker removed, restarting it"
                );
            }
        }
    }

    fn next_retry(&self) -> Option<Instant> {
        self.daemons.values().filter_map(|d| d.retry_at).min()
    }

    /// Restarts the daemons whose retry is due.
    async fn retry(&mut self) {
        let now = Instant::now();
        let due: Vec<String> = self
            .daemons
            .iter()
            .filter(|(_, d)| d.retry_at.is_some_and(|at| at <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for name in due {
            let Some(mut daemon) = self.daemons.remove(&name) else {
                continue;
            };
            self.start(&mut daemon).await;
            self.daemons.insert(name, daemon);
        }
        self.update_ready();
    }

    fn remove_marker(&self, name: &str) {
        let marker = self.layout.marker(name);
        match std::fs::remove_file(&marker) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(marker = %marker.display(), error = %e, "failed to remove started file")
            }
        }
    }

    fn remove_ready(&self) {
        let _ = std::fs::remove_file(self.layout.ready());
    }

    /// `.ready` exists while every daemon is up.
    fn update_ready(&self) {
        if !self.daemons.values().all(|d| d.up) {
            return;
        }
        let ready = self.layout.ready();
        if let Err(e) =
            std::fs::create_dir_all(&self.layout.root).and_then(|()| std::fs::write(&ready, b""))
        {
            tracing::error!(path = %ready.display(), error = %e, "failed to create .ready file");
        }
    }
}
