//! The daemon's main loop: SIGHUP is handled before anything else is done,
//! the config is read once (an invalid config at start is fatal, as in
//! NVIDIA's plugin), then every event is stepped through the state machine
//! and its effects executed, until shutdown.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, watch};

use super::node_side::NodeSide;
use super::shell::{Shell, node_file, socket_dir};
use super::state::{Event, Options, State};
use super::{DaemonConfig, DaemonError, control_nodes, load_config, stopped};
use crate::health::XidPolicy;
use crate::node::NodeOptions;
use crate::watch::{on_file_change, watch_dir};

/// The clock the loop runs on (tokio's, so paused-time tests work).
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Runs until `shutdown` becomes true. Start-up errors are returned (the
/// binary exits 1); later errors are logged and the last good state serves on.
pub async fn run(cfg: DaemonConfig, shutdown: watch::Receiver<bool>) -> Result<(), DaemonError> {
    run_on_node(cfg, NodeOptions::default(), shutdown).await
}

/// [`run`], with the node features (per-node config by label, GPU feature
/// labels) of `node`. With neither on, the API server is never contacted.
pub async fn run_on_node(
    mut cfg: DaemonConfig,
    node: NodeOptions,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), DaemonError> {
    // Before any other work: a config-manager may send SIGHUP at any time.
    let mut hangup = signal(SignalKind::hangup()).map_err(DaemonError::Signal)?;
    tracing::debug!("daemon starting");
    let (metrics, _metrics_server) = crate::metrics::start(cfg.metrics_address.as_deref()).await?;
    let _alive = metrics.alive("daemon");
    // Usage is only read through /metrics: without a metrics server, no
    // sampling and no PodResources calls.
    let _usage = match cfg.metrics_address {
        Some(_) => crate::usage::start(metrics.usage(), &cfg.usage).map_err(DaemonError::Usage)?,
        None => None,
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let node_side = NodeSide::start(&mut cfg, &node, &metrics, &tx).await?;
    let dra_devices = node.dra.as_ref().map(|d| d.devices.clone());
    let config = Arc::new(load_config(
        node_side.slot.get().as_deref(),
        &cfg.overrides,
    )?);

    let dir = socket_dir(&cfg.kubelet_socket);
    if !dir.is_dir() {
        return Err(DaemonError::SocketDir(dir.display().to_string()));
    }
    let watch_error = |path: &std::path::Path| {
        let dir = path.display().to_string();
        move |source| DaemonError::Watch { dir, source }
    };
    let (internal_tx, mut internal_rx) = mpsc::unbounded_channel();
    let (_dir_watch, mut dir_events) = watch_dir(&dir).map_err(watch_error(&dir))?;
    let _config_watch = match &cfg.config_file {
        Some(path) => {
            let tx = tx.clone();
            Some(
                on_file_change(path, move || {
                    let _ = tx.send(Event::ConfigFileChanged);
                })
                .map_err(watch_error(path))?,
            )
        }
        None => None,
    };
    let node = node_file(&cfg.backend);
    let _node_watch = match &node {
        Some(path) => {
            let tx = tx.clone();
            Some(
                on_file_change(path, move || {
                    let _ = tx.send(Event::NodeFileChanged);
                })
                .map_err(watch_error(path))?,
            )
        }
        None => None,
    };

    let opts = Options {
        kubelet_socket: cfg.kubelet_socket.clone(),
        recovery: cfg.health.recovery,
        // The simulated node is re-read on every change of its file instead.
        rescan: if node.is_some() {
            None
        } else {
            cfg.health.rescan
        },
        policy: XidPolicy::from_env_values(
            cfg.health.disable.as_deref(),
            cfg.health.enable.as_deref(),
        ),
        control_nodes: control_nodes(),
        mps_marker_root: cfg.health.mps_marker_root.clone(),
        dra: dra_devices,
    };
    let settings = config.settings.clone();
    let (mut state, first) = State::new(opts, config, now());
    let mut shell = Shell::new(cfg, settings, dir, metrics.clone(), tx, internal_tx)
        .with_config_slot(node_side.slot.clone());
    let mut queue: VecDeque<Event> = shell.execute(first)?;

    let result = loop {
        while let Some(event) = queue.pop_front() {
            let effects = state.step(event, now());
            match shell.execute(effects) {
                Ok(more) => queue.extend(more),
                Err(e) => {
                    shell.shutdown().await;
                    node_side.shutdown().await;
                    return Err(e);
                }
            }
        }
        metrics.set_ready(state.ready_state());
        if let Some(features) = &node_side.features {
            features.update(state.inventory(), state.config());
        }
        if let Some(dra) = &node_side.dra {
            dra.update(
                state.inventory(),
                state.health(),
                &state.config().settings,
                &metrics,
            );
        }
        let deadline = state.next_deadline().map(tokio::time::Instant::from_std);
        let event = tokio::select! {
            biased;
            _ = stopped(&mut shutdown) => break Ok(()),
            Some(event) = rx.recv() => event,
            Some(msg) = internal_rx.recv() => match shell.internal(msg) {
                Some(event) => event,
                None => continue,
            },
            Some(event) = dir_events.recv() => shell.observe(event),
            _ = hangup.recv() => Event::Hangup,
            _ = sleep_until_opt(deadline) => Event::Tick,
        };
        if let Event::Watch {
            msg: super::state::WatchMsg::Report(report),
            ..
        } = &event
        {
            metrics.usage().record(report);
        }
        queue.push_back(event);
    };
    tracing::info!("shutting down");
    shell.shutdown().await;
    node_side.shutdown().await;
    result
}

async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
