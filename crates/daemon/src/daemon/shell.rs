//! The thin shell around the state machine: one loop waits for the next
//! event (a result coming back, a file or socket-directory change, SIGHUP or
//! the state's next deadline), steps the state and executes the effects.
//! Anything that may block (NVML, file reads, registration calls) runs off
//! the loop and comes back as an event, so one slow call never stalls it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::state::{Count, Effect, Event, RegisterFailure, WatchMsg};
use super::watcher::{self, Watcher};
use super::{BackendChoice, DaemonConfig, DaemonError, load_config, make_backend};
use crate::config::Settings;
use crate::gpu::Backend;
use crate::kubelet::{KUBELET_SOCKET_NAME, RegisterError, SocketId, register, socket_id};
use crate::metrics::{Metrics, RpcMetrics};
use crate::node::selector::ConfigSlot;
use crate::plugin::{RunningServer, Snapshot};
use crate::watch::DirEvent;

/// Results of the shell's own background work, taken in by the loop.
pub enum Internal {
    /// A server bound after its predecessor had fully stopped.
    Bound {
        resource: String,
        result: Result<RunningServer, String>,
    },
}

/// One served resource's effects side.
struct Resource {
    state: watch::Sender<Arc<Snapshot>>,
    server: Option<RunningServer>,
    registration: Option<JoinHandle<()>>,
    rpc_metrics: RpcMetrics,
}

/// Executes effects; holds every handle the state machine talks about.
pub struct Shell {
    cfg: DaemonConfig,
    settings: Settings,
    socket_dir: PathBuf,
    metrics: Metrics,
    tx: mpsc::UnboundedSender<Event>,
    internal: mpsc::UnboundedSender<Internal>,
    backend: Arc<Mutex<Option<Arc<dyn Backend>>>>,
    resources: BTreeMap<String, Resource>,
    watcher: Option<Watcher>,
    /// Servers being stopped, awaited at shutdown.
    stopping: Vec<JoinHandle<()>>,
    /// The config file each reload reads (per-node config changes it).
    config_slot: ConfigSlot,
}

impl Shell {
    pub fn new(
        cfg: DaemonConfig,
        settings: Settings,
        socket_dir: PathBuf,
        metrics: Metrics,
        tx: mpsc::UnboundedSender<Event>,
        internal: mpsc::UnboundedSender<Internal>,
    ) -> Self {
        Shell {
            config_slot: ConfigSlot::new(cfg.config_file.clone()),
            cfg,
            settings,
            socket_dir,
            metrics,
            tx,
            internal,
            backend: Arc::default(),
            resources: BTreeMap::new(),
            watcher: None,
            stopping: Vec::new(),
        }
    }

    /// Reads the config from `slot` on every reload instead of the config file.
    pub fn with_config_slot(mut self, slot: ConfigSlot) -> Self {
        self.config_slot = slot;
        self
    }

    fn backend(&self) -> Option<Arc<dyn Backend>> {
        self.backend
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// What a socket-directory event means, observed now.
    pub fn observe(&self, event: DirEvent) -> Event {
        let name = match event {
            DirEvent::Created(name) | DirEvent::Removed(name) => name,
        };
        if name == KUBELET_SOCKET_NAME {
            Event::KubeletSocket(socket_id(&self.cfg.kubelet_socket))
        } else {
            let id = socket_id(&self.socket_dir.join(&name));
            Event::SocketFile { name, id }
        }
    }

    /// Runs `f` on a blocking thread and sends its event back.
    fn off_loop(
        &self,
        f: impl FnOnce() -> Event + Send + 'static,
        failed: impl FnOnce(String) -> Event + Send + 'static,
    ) {
        let tx = self.tx.clone();
        let task = tokio::task::spawn_blocking(f);
        tokio::spawn(async move {
            let event = match task.await {
                Ok(event) => event,
                Err(e) => failed(format!("internal error: {e}")),
            };
            let _ = tx.send(event);
        });
    }

    /// Executes `effects` in order; returns the events of those that finish
    /// at once (bind, stat), to be stepped next.
    pub fn execute(&mut self, effects: Vec<Effect>) -> Result<VecDeque<Event>, DaemonError> {
        let mut now = VecDeque::new();
        for effect in effects {
            match effect {
                Effect::StartBackend => self.start_backend(),
                Effect::ReadConfig => {
                    let path = self.config_slot.get();
                    let overrides = self.cfg.overrides.clone();
                    self.off_loop(
                        move || {
                            Event::ConfigLoaded(
                                load_config(path.as_deref(), &overrides)
                                    .map(Arc::new)
                                    .map_err(|e| e.to_string()),
                            )
                        },
                        |e| Event::ConfigLoaded(Err(e)),
                    );
                }
                Effect::ReadInventory => {
                    if let Some(backend) = self.backend() {
                        let usage = self.metrics.usage().clone();
                        self.off_loop(
                            move || {
                                let read = backend.inventory();
                                if let Ok(inventory) = &read {
                                    usage.set_inventory(inventory);
                                }
                                Event::InventoryRead(read.map_err(|e| e.to_string()))
                            },
                            |e| Event::InventoryRead(Err(e)),
                        );
                    }
                }
                Effect::Probe(gpu) => {
                    if let Some(backend) = self.backend() {
                        let g = gpu.clone();
                        self.off_loop(
                            move || {
                                let result = backend.probe(&g);
                                Event::Probed { gpu: g, result }
                            },
                            move |e| Event::Probed {
                                gpu,
                                result: Err(crate::gpu::FaultKind::Failed(e)),
                            },
                        );
                    }
                }
                Effect::CheckMps(markers) => self.off_loop(
                    move || {
                        let ready: BTreeSet<String> = markers
                            .into_iter()
                            .filter(|(_, path)| path.exists())
                            .map(|(resource, _)| resource)
                            .collect();
                        Event::MpsMarkers(ready)
                    },
                    |_| Event::MpsMarkers(BTreeSet::new()),
                ),
                Effect::StartWatch { generation, gpus } => self.start_watch(generation, gpus),
                Effect::StatKubelet => {
                    now.push_back(Event::KubeletSocket(socket_id(&self.cfg.kubelet_socket)))
                }
                Effect::Publish { resource, snapshot } => self.publish(resource, snapshot),
                Effect::Serve {
                    resource,
                    socket_name,
                } => now.extend(self.serve(resource, &socket_name)),
                Effect::StopServing { resource } => self.stop_serving(&resource),
                Effect::Register {
                    resource,
                    endpoint,
                    attempt,
                    server,
                } => self.register(resource, endpoint, attempt, server),
                Effect::WriteCdi {
                    inventory,
                    settings,
                } => self.off_loop(
                    move || {
                        let result = crate::cdi::write_specs(&inventory, &settings);
                        Event::CdiWritten(result.map_err(|e| e.to_string()))
                    },
                    |e| Event::CdiWritten(Err(e)),
                ),
                Effect::Count(count) => self.count(count),
                Effect::Exit(error) => return Err(DaemonError::Init(error)),
            }
        }
        Ok(now)
    }

    fn start_backend(&self) {
        let choice = self.cfg.backend.clone();
        let settings = self.settings.clone();
        let slot = self.backend.clone();
        let usage = self.metrics.usage().clone();
        self.off_loop(
            move || {
                let result = make_backend(&choice, &settings);
                Event::BackendStarted(match result {
                    Ok(backend) => {
                        tracing::debug!(backend = backend.name(), "GPU backend ready");
                        usage.set_backend(backend.clone());
                        *slot
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(backend);
                        Ok(())
                    }
                    Err(e) => Err(e.to_string()),
                })
            },
            |e| Event::BackendStarted(Err(e)),
        );
    }

    fn start_watch(&mut self, generation: u64, gpus: Vec<String>) {
        self.watcher = None;
        let Some(backend) = self.backend() else {
            return;
        };
        match watcher::spawn(backend, generation, gpus, self.tx.clone()) {
            Ok(w) => self.watcher = Some(w),
            Err(e) => {
                let _ = self.tx.send(Event::Watch {
                    generation,
                    msg: WatchMsg::Failed(format!("cannot start the health event thread: {e}")),
                });
            }
        }
    }

    fn publish(&mut self, resource: String, snapshot: Snapshot) {
        self.metrics
            .set_devices(&resource, snapshot.healthy.len(), snapshot.healthy_count());
        self.metrics
            .usage()
            .set_resource(&resource, &snapshot.resource);
        match self.resources.get(&resource) {
            Some(r) => {
                let snapshot = Arc::new(snapshot);
                r.state.send_if_modified(|current| {
                    let changed = current.list != snapshot.list;
                    *current = snapshot;
                    changed
                });
            }
            None => {
                let rpc_metrics = self.metrics.rpc(&resource);
                let (state, _) = watch::channel(Arc::new(snapshot));
                self.resources.insert(
                    resource,
                    Resource {
                        state,
                        server: None,
                        registration: None,
                        rpc_metrics,
                    },
                );
            }
        }
    }

    /// Binds and serves the resource's socket. A server that replaces an
    /// older one binds only once the older one has fully stopped (its
    /// ListAndWatch streams ended), in the background: the kubelet's device
    /// manager drops its *current* client when an older client's stream
    /// ends, so the old stream must end before the new registration.
    fn serve(&mut self, resource: String, socket_name: &str) -> Option<Event> {
        let socket = self.socket_dir.join(socket_name);
        let Some(r) = self.resources.get_mut(&resource) else {
            let result = Err(format!("{resource} has no snapshot to serve"));
            return Some(Event::Served { resource, result });
        };
        let state = r.state.subscribe();
        let metrics = Some(r.rpc_metrics.clone());
        match r.server.take() {
            None => {
                let result = RunningServer::start(&socket, state, metrics)
                    .map_err(|e| e.to_string())
                    .and_then(|server| {
                        let id = server.id();
                        r.server = Some(server);
                        id.ok_or_else(|| {
                            format!("{} vanished right after it was bound", socket.display())
                        })
                    });
                Some(Event::Served { resource, result })
            }
            Some(old) => {
                let internal = self.internal.clone();
                tokio::spawn(async move {
                    let _ = old.stop().await;
                    let result =
                        RunningServer::start(&socket, state, metrics).map_err(|e| e.to_string());
                    let _ = internal.send(Internal::Bound { resource, result });
                });
                None
            }
        }
    }

    /// Takes in the shell's own background results.
    pub fn internal(&mut self, msg: Internal) -> Option<Event> {
        match msg {
            Internal::Bound { resource, result } => {
                let Some(r) = self.resources.get_mut(&resource) else {
                    if let Ok(server) = result {
                        self.stopping.push(server.stop());
                    }
                    return None;
                };
                let result = result.and_then(|server| {
                    let id = server.id();
                    r.server = Some(server);
                    id.ok_or_else(|| {
                        format!("{resource}'s socket vanished right after it was bound")
                    })
                });
                Some(Event::Served { resource, result })
            }
        }
    }

    fn stop_serving(&mut self, resource: &str) {
        if let Some(mut r) = self.resources.remove(resource) {
            if let Some(task) = r.registration.take() {
                task.abort();
            }
            if let Some(server) = r.server.take() {
                self.stopping.push(server.stop());
            }
        }
        self.metrics.remove_resource(resource);
        self.metrics.usage().remove_resource(resource);
        self.stopping.retain(|t| !t.is_finished());
    }

    fn register(&mut self, resource: String, endpoint: String, attempt: u64, server: SocketId) {
        let Some(r) = self.resources.get_mut(&resource) else {
            return;
        };
        if let Some(old) = r.registration.take() {
            old.abort();
        }
        let kubelet = self.cfg.kubelet_socket.clone();
        let tx = self.tx.clone();
        let name = resource.clone();
        let ours = self.socket_dir.join(&endpoint);
        r.registration = Some(tokio::spawn(async move {
            // The kubelet deletes every plugin socket when it starts: pointing
            // it at a deleted socket would waste a registration.
            let observed = socket_id(&ours);
            let reached = socket_id(&kubelet);
            let result = if observed != Some(server) {
                Err(RegisterFailure::socket_gone(observed))
            } else {
                register(&kubelet, &name, &endpoint).await.map_err(|e| {
                    let not_listening = matches!(
                        e,
                        RegisterError::NoKubelet(_) | RegisterError::Connect { .. }
                    );
                    RegisterFailure::call(not_listening, e.to_string())
                })
            };
            let _ = tx.send(Event::Registered {
                resource: name,
                attempt,
                reached,
                result,
            });
        }));
    }

    fn count(&self, count: Count) {
        let m = &self.metrics;
        match count {
            Count::Registered(resource) => m.registered(&resource),
            Count::KubeletRestart => m.kubelet_restart(),
            Count::Reload { ok } => m.reload(ok),
            Count::HealthEvent { xid, action } => m.health_event(xid, action),
            Count::NvmlError => m.nvml_error(),
            Count::InventoryRead { ok } => m.inventory_read(ok),
            Count::RecoveryProbe(result) => m.recovery_probe(result),
        }
    }

    /// Stops the watch, every registration and every server (ending
    /// streams, removing sockets), and waits for the servers.
    pub async fn shutdown(mut self) {
        self.watcher = None;
        for (_, mut r) in std::mem::take(&mut self.resources) {
            if let Some(task) = r.registration.take() {
                task.abort();
            }
            if let Some(server) = r.server.take() {
                self.stopping.push(server.stop());
            }
        }
        for task in self.stopping {
            let _ = task.await;
        }
    }
}

/// The socket directory: the kubelet socket's parent.
pub fn socket_dir(kubelet_socket: &Path) -> PathBuf {
    kubelet_socket
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Whether `choice` watches a node file (the simulated backend on a file).
pub fn node_file(choice: &BackendChoice) -> Option<PathBuf> {
    match choice {
        BackendChoice::Simulated(sim) => sim.path().map(Path::to_path_buf),
        BackendChoice::Nvml(_) => None,
    }
}
