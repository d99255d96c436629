//! Per-node config at run time: resolves the node's label to a file of the
//! config directory at start (after a bounded wait for the label, so the
//! wrong config is never served first), then re-resolves on every label
//! change and every change in the directory, and pokes the daemon's reload
//! input (the same debounce and last-good rule as a config file edit). An
//! unknown name keeps the current config and makes `/readyz` fail.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use kube::Client;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::client::{LabelState, watch_label};
use super::select::{Selected, read_candidates, select};
use super::{NodeError, NodeOptions};
use crate::metrics::Metrics;

/// The `/readyz` problem source of a failed selection.
const PROBLEM: &str = "config-selection";

/// The config file the daemon reads on its next reload (`None`: the empty
/// config). Shared by the shell, which reads it, and the selector.
#[derive(Debug, Clone, Default)]
pub struct ConfigSlot(Arc<Mutex<Option<PathBuf>>>);

impl ConfigSlot {
    pub fn new(path: Option<PathBuf>) -> Self {
        ConfigSlot(Arc::new(Mutex::new(path)))
    }

    pub fn get(&self) -> Option<PathBuf> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set(&self, path: Option<PathBuf>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = path;
    }
}

fn path_of(dir: &Path, selected: &Selected) -> Option<PathBuf> {
    match selected {
        Selected::Named(name) => Some(dir.join(name)),
        Selected::Empty => None,
    }
}

/// The running selection; dropping it stops the label watch and the loop.
pub struct Selection {
    pub slot: ConfigSlot,
    tasks: Vec<JoinHandle<()>>,
    _dir_watch: notify::RecommendedWatcher,
}

impl Drop for Selection {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

struct Selector {
    dir: PathBuf,
    opts: NodeOptions,
    metrics: Metrics,
    slot: ConfigSlot,
    current: Selected,
    /// The last selection error logged, so a repeated one is logged once.
    logged: Option<String>,
}

impl Selector {
    /// Resolves `label`; returns true when the selection changed.
    fn resolve(&mut self, label: Option<&str>) -> bool {
        let available = read_candidates(&self.dir);
        match select(label, &available, &self.opts.rules) {
            Ok(selected) => {
                self.metrics.set_problem(PROBLEM, None);
                if self.logged.take().is_some() {
                    tracing::info!(config = selected.name(), "per-node config resolves again");
                }
                if selected == self.current {
                    return false;
                }
                tracing::info!(
                    config = selected.name(),
                    label = label.unwrap_or(""),
                    "per-node config selected"
                );
                self.slot.set(path_of(&self.dir, &selected));
                self.metrics.set_config_selected(Some(selected.name()));
                self.current = selected;
                true
            }
            Err(e) => {
                let e = e.to_string();
                if self.logged.as_deref() != Some(e.as_str()) {
                    tracing::warn!(error = %e, config = self.current.name(), "per-node config cannot be resolved; the current config keeps serving");
                }
                self.metrics.set_problem(
                    PROBLEM,
                    Some(format!("{e}; still serving config {}", self.current.name())),
                );
                self.logged = Some(e);
                false
            }
        }
    }
}

/// Starts per-node config: waits (bounded) for the label, selects the
/// first config, then follows label and directory changes, calling
/// `reload` whenever the selected file or its content may have changed.
/// Fails only when no config at all can be selected at start.
pub async fn start(
    client: Client,
    opts: &NodeOptions,
    metrics: Metrics,
    reload: impl Fn() + Send + 'static,
) -> Result<Selection, NodeError> {
    let dir = opts.config_dir.clone().unwrap_or_default();
    let node = opts.node_name.clone().ok_or(NodeError::NoNodeName)?;
    let (dir_tx, mut dir_rx) = mpsc::unbounded_channel();
    let dir_watch = crate::watch::on_any_change(&dir, move || {
        let _ = dir_tx.send(());
    })
    .map_err(|e| NodeError::WatchDir {
        dir: dir.display().to_string(),
        error: e.to_string(),
    })?;
    let (tx, mut rx) = watch::channel::<LabelState>(None);
    let watch_task = tokio::spawn(watch_label(
        client,
        node.clone(),
        opts.rules.label.clone(),
        tx,
        metrics.clone(),
    ));
    let label = match tokio::time::timeout(opts.label_wait, rx.wait_for(Option::is_some)).await {
        Ok(Ok(state)) => state.clone().flatten(),
        _ => {
            tracing::warn!(node = %node, wait_s = opts.label_wait.as_secs_f32(), "the node's label could not be read in time; starting with the default config");
            None
        }
    };
    rx.mark_unchanged();
    let mut selector = Selector {
        dir: dir.clone(),
        opts: opts.clone(),
        metrics,
        slot: ConfigSlot::default(),
        current: Selected::Empty,
        logged: None,
    };
    let available = read_candidates(&dir);
    let first = match select(label.as_deref(), &available, &opts.rules) {
        Ok(s) => s,
        Err(e) => {
            // An unknown label at start: the default serves, not ready.
            let fallback = select(None, &available, &opts.rules)?;
            selector.current = fallback.clone();
            selector.resolve(label.as_deref());
            tracing::debug!(error = %e, "started on the default config");
            fallback
        }
    };
    if selector.logged.is_none() {
        tracing::info!(
            config = first.name(),
            label = label.as_deref().unwrap_or(""),
            "per-node config selected"
        );
    }
    selector.slot.set(path_of(&dir, &first));
    selector.metrics.set_config_selected(Some(first.name()));
    selector.current = first;
    let slot = selector.slot.clone();

    let loop_task = tokio::spawn(async move {
        let mut label = label;
        loop {
            tokio::select! {
                changed = rx.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    label = rx.borrow_and_update().clone().flatten();
                    if selector.resolve(label.as_deref()) {
                        reload();
                    }
                }
                Some(()) = dir_rx.recv() => {
                    while dir_rx.try_recv().is_ok() {}
                    selector.resolve(label.as_deref());
                    // The selected file's content may have changed.
                    reload();
                }
            }
        }
    });
    Ok(Selection {
        slot,
        tasks: vec![watch_task, loop_task],
        _dir_watch: dir_watch,
    })
}
