//! The supervisor owns what is being served: one entry per resource with its
//! snapshot channel, its gRPC server and its registration task. Given a new
//! set of snapshots it updates resources in place, starts new ones and stops
//! removed ones; given socket-directory events it re-serves and re-registers
//! after a kubelet restart.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::kubelet::{DirEvent, KUBELET_SOCKET_NAME, RegisterError, register};
use crate::metrics::{Metrics, RpcMetrics};
use crate::plugin::{RunningServer, Snapshot};

/// First and last retry delay of a failed registration.
const RETRY_MIN: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(5);

struct Entry {
    socket: PathBuf,
    state: watch::Sender<Arc<Snapshot>>,
    server: Option<RunningServer>,
    trigger: watch::Sender<u64>,
    registrar: JoinHandle<()>,
    rpc_metrics: Option<RpcMetrics>,
}

/// Serves a set of resources and keeps them registered.
pub struct Supervisor {
    kubelet_socket: PathBuf,
    socket_dir: PathBuf,
    entries: BTreeMap<String, Entry>,
    metrics: Option<Metrics>,
}

impl Supervisor {
    /// Plugin sockets go in the kubelet socket's directory.
    pub fn new(kubelet_socket: &Path) -> Self {
        let socket_dir = kubelet_socket
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        Supervisor {
            kubelet_socket: kubelet_socket.to_path_buf(),
            socket_dir,
            entries: BTreeMap::new(),
            metrics: None,
        }
    }

    /// Records registrations, kubelet restarts and RPCs in `metrics`.
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Makes the served set equal `desired` (keyed by resource name).
    pub async fn apply(&mut self, desired: BTreeMap<String, Snapshot>) {
        let gone: Vec<String> = self
            .entries
            .keys()
            .filter(|name| !desired.contains_key(*name))
            .cloned()
            .collect();
        for name in gone {
            if let Some(entry) = self.entries.remove(&name) {
                tracing::info!(resource = %name, "resource no longer planned; stopping it");
                stop_entry(entry).await;
            }
        }
        for (name, snapshot) in desired {
            match self.entries.get(&name) {
                Some(entry) => update(entry, snapshot),
                None => self.add(name, snapshot),
            }
        }
    }

    fn add(&mut self, name: String, snapshot: Snapshot) {
        let socket = self.socket_dir.join(snapshot.resource.socket_name());
        let endpoint = snapshot.resource.socket_name();
        let (state, rx) = watch::channel(Arc::new(snapshot));
        let rpc_metrics = self.metrics.as_ref().map(|m| m.rpc(&name));
        let server = start_server(&socket, rx, rpc_metrics.clone());
        let (trigger, trigger_rx) = watch::channel(0u64);
        let registrar = tokio::spawn(registrar(
            self.kubelet_socket.clone(),
            name.clone(),
            endpoint,
            trigger_rx,
            self.metrics.clone(),
        ));
        trigger.send_modify(|g| *g += 1);
        tracing::info!(resource = %name, socket = %socket.display(), "serving resource");
        self.entries.insert(
            name,
            Entry {
                socket,
                state,
                server,
                trigger,
                registrar,
                rpc_metrics,
            },
        );
    }

    /// Reacts to a file created or removed in the socket directory.
    pub async fn on_dir_event(&mut self, event: DirEvent) {
        match event {
            DirEvent::Created(name) if name == KUBELET_SOCKET_NAME => {
                tracing::info!("kubelet socket created; re-registering every resource");
                self.metrics.iter().for_each(Metrics::kubelet_restart);
                for entry in self.entries.values_mut() {
                    if !entry.socket.exists() {
                        restart_server(entry).await;
                    }
                    entry.trigger.send_modify(|g| *g += 1);
                }
            }
            DirEvent::Removed(name) => {
                for (resource, entry) in self.entries.iter_mut() {
                    let ours =
                        entry.socket.file_name().and_then(|n| n.to_str()) == Some(name.as_str());
                    if ours && !entry.socket.exists() {
                        tracing::info!(resource = %resource, "plugin socket was deleted; serving it again");
                        restart_server(entry).await;
                        entry.trigger.send_modify(|g| *g += 1);
                    }
                }
            }
            DirEvent::Created(_) => {}
        }
    }

    /// Stops every server (ending streams, removing sockets).
    pub async fn shutdown(self) {
        let mut stopping = tokio::task::JoinSet::new();
        for (_, entry) in self.entries {
            stopping.spawn(stop_entry(entry));
        }
        while stopping.join_next().await.is_some() {}
    }
}

fn start_server(
    socket: &Path,
    rx: watch::Receiver<Arc<Snapshot>>,
    metrics: Option<RpcMetrics>,
) -> Option<RunningServer> {
    match RunningServer::start(socket, rx, metrics) {
        Ok(server) => Some(server),
        Err(e) => {
            tracing::error!(socket = %socket.display(), error = %e, "cannot listen on plugin socket");
            None
        }
    }
}

async fn restart_server(entry: &mut Entry) {
    if let Some(old) = entry.server.take() {
        old.stop().await;
    }
    entry.server = start_server(
        &entry.socket,
        entry.state.subscribe(),
        entry.rpc_metrics.clone(),
    );
}

/// Replaces the snapshot; streams are only woken when the device list changed.
fn update(entry: &Entry, snapshot: Snapshot) {
    let snapshot = Arc::new(snapshot);
    entry.state.send_if_modified(|current| {
        let changed = current.list != snapshot.list;
        *current = snapshot;
        changed
    });
}

async fn stop_entry(entry: Entry) {
    entry.registrar.abort();
    if let Some(server) = entry.server {
        server.stop().await;
    }
}

async fn registrar(
    kubelet: PathBuf,
    resource: String,
    endpoint: String,
    mut trigger: watch::Receiver<u64>,
    metrics: Option<Metrics>,
) {
    loop {
        if trigger.changed().await.is_err() {
            return;
        }
        let mut delay = RETRY_MIN;
        loop {
            match register(&kubelet, &resource, &endpoint).await {
                Ok(()) => {
                    tracing::info!(resource = %resource, "registered with the kubelet");
                    metrics.iter().for_each(|m| m.registered(&resource));
                    break;
                }
                Err(RegisterError::NoKubelet(socket)) => {
                    tracing::debug!(resource = %resource, socket = %socket, "waiting for the kubelet socket");
                }
                Err(e) => {
                    tracing::warn!(resource = %resource, error = %e, retry_in_ms = delay.as_millis() as u64, "registration failed");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                changed = trigger.changed() => if changed.is_err() { return },
            }
            delay = (delay * 2).min(RETRY_MAX);
        }
    }
}
