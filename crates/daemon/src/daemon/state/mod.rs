//! The daemon's decisions as a pure state machine: `step(event, now)` updates
//! the state and returns the effects to execute; the shell (`shell.rs`) only
//! executes them and feeds the results back as events. Every timer is an
//! absolute deadline in the state (`next_deadline`), so no stream of unrelated
//! events can postpone a rescan, a recovery probe or a retry.
//!
//! Config, inventory and health are separate inputs with their own last good
//! values: a change of one re-plans from the current values of the others, so
//! a bad config file never blocks a hardware rescan and an NVML error never
//! touches the config.

mod cdi;
mod events;
mod hardware;
mod inputs;
mod kubelet;
mod serving;
mod timers;

#[cfg(test)]
mod tests;

pub use hardware::{Hardware, Merged};
pub use serving::{Attempt, RegisterFailure, Server, Serving};

use self::events::mps_resources;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use self::serving::Action;
use self::timers::{Backoff, Debounce, take_due};
use super::prepare::{Prepared, mps_started_marker, prepare};
use crate::config::{Settings, v1};
use crate::gpu::{FaultKind, GpuFault, Probe, WatchReport};
use crate::health::model::{HealthModel, ProbeOutcome, event_name, fault_text};
use crate::health::{XidPolicy, affected_devices};
use crate::kubelet::SocketId;
use crate::metrics::ReadyState;
use crate::plugin::Snapshot;

/// Quiet time after a file event before re-reading, so a burst of events
/// (a ConfigMap swap, an editor's write-and-rename) gives one read...
pub const DEBOUNCE: Duration = Duration::from_millis(20);
/// ... but a steady stream of events still gets one through this often.
const DEBOUNCE_MAX: Duration = Duration::from_millis(200);
/// How often resources waiting for their MPS daemon are checked again.
const MPS_RECHECK: Duration = Duration::from_secs(1);
/// Retry delays of a backend that failed to start (failOnInitError=false).
const INIT_RETRY: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(30));
/// Retry delays of a failed inventory read, and of a failed event watch.
const READ_RETRY: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(30));
const WATCH_RETRY: (Duration, Duration) = (Duration::from_millis(500), Duration::from_secs(30));
/// A watch that ran this long before failing retries from the shortest delay.
const WATCH_STABLE: Duration = Duration::from_secs(60);
/// A missing kubelet socket is reported after this long, then every minute.
const KUBELET_ABSENT_GRACE: Duration = Duration::from_secs(2);
const KUBELET_ABSENT_EVERY: Duration = Duration::from_secs(60);

/// What does not change while the daemon runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// The kubelet's registration socket (for messages; the shell dials it).
    pub kubelet_socket: PathBuf,
    /// How long a marked device stays quiet before its GPU is probed; `None` = never.
    pub recovery: Option<Duration>,
    /// How often the inventory is read again; `None` = only on file events.
    pub rescan: Option<Duration>,
    pub policy: XidPolicy,
    /// NVIDIA control device nodes present in this container.
    pub control_nodes: Vec<String>,
    /// Where the MPS root is mounted in this container; markers are read here.
    pub mps_marker_root: String,
    /// The GPUs DRA serves (`--dra`): the device plugin leaves them out.
    pub dra: Option<crate::dra::DraDevices>,
}

/// A config file read, merged with env and flags, and validated.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedConfig {
    pub file: v1::Config,
    pub settings: Settings,
    /// Keys NVIDIA's decoder would ignore, as warnings.
    pub ignored: Vec<String>,
    /// The effective config as one line of JSON (NVIDIA's shape).
    pub effective: String,
}

/// What the event watch thread of one generation reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchMsg {
    Report(WatchReport),
    /// The event source failed for the whole node.
    Failed(String),
}

/// Something that happened.
#[derive(Debug)]
pub enum Event {
    /// The config file (or its ConfigMap's `..data`) may have changed.
    ConfigFileChanged,
    /// SIGHUP: read the config again.
    Hangup,
    /// The simulated node file may have changed.
    NodeFileChanged,
    ConfigLoaded(Result<Arc<LoadedConfig>, String>),
    BackendStarted(Result<(), String>),
    /// An inventory read; `Err` is node-wide.
    InventoryRead(Result<crate::gpu::Inventory, String>),
    Watch {
        generation: u64,
        msg: WatchMsg,
    },
    Probed {
        gpu: String,
        result: Result<Probe, FaultKind>,
    },
    /// The MPS resources whose control daemon has started.
    MpsMarkers(BTreeSet<String>),
    /// What is at the kubelet socket path now.
    KubeletSocket(Option<SocketId>),
    /// What is at `<socket dir>/<name>` now, after an event on it.
    SocketFile {
        name: String,
        id: Option<SocketId>,
    },
    Served {
        resource: String,
        result: Result<SocketId, String>,
    },
    Registered {
        resource: String,
        attempt: u64,
        /// The kubelet socket the attempt dialed (stat'ed just before).
        reached: Option<SocketId>,
        result: Result<(), RegisterFailure>,
    },
    /// A CDI spec write finished: what was written, or why not.
    CdiWritten(Result<crate::cdi::Written, String>),
    /// A deadline passed.
    Tick,
}

/// A counter to bump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Count {
    Registered(String),
    KubeletRestart,
    Reload {
        ok: bool,
    },
    HealthEvent {
        xid: u64,
        action: &'static str,
    },
    NvmlError,
    InventoryRead {
        ok: bool,
    },
    /// `fit`, `not_fit` or `failed`.
    RecoveryProbe(&'static str),
}

/// Something for the shell to do.
#[derive(Debug)]
pub enum Effect {
    StartBackend,
    ReadConfig,
    ReadInventory,
    Probe(String),
    /// Check which of these MPS markers exist (resource, marker path).
    CheckMps(Vec<(String, PathBuf)>),
    /// Watch these GPUs for health events (ending any earlier watch).
    StartWatch {
        generation: u64,
        gpus: Vec<String>,
    },
    StatKubelet,
    /// Hand a resource's new snapshot to its server (created on first use).
    Publish {
        resource: String,
        snapshot: Snapshot,
    },
    /// (Re)bind the resource's socket and serve it (stopping an older server).
    Serve {
        resource: String,
        socket_name: String,
    },
    /// Stop the resource's server and any registration attempt.
    StopServing {
        resource: String,
    },
    /// Register the resource, unless the socket file at `endpoint` is no
    /// longer `server` (then report `RegisterFailure::SocketGone`).
    Register {
        resource: String,
        endpoint: String,
        attempt: u64,
        server: SocketId,
    },
    /// Generate and write the CDI spec of this inventory (answered by `CdiWritten`).
    WriteCdi {
        inventory: crate::gpu::Inventory,
        /// Boxed: the effect list stays small.
        settings: Box<Settings>,
    },
    Count(Count),
    /// Start-up failed and failOnInitError is true: exit 1 with this error.
    Exit(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Read {
    in_flight: bool,
    again: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum BackendState {
    Starting,
    Up,
    Down { retry_at: Instant },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Watch {
    generation: u64,
    /// The GPUs of the running watch; `None` when none runs.
    gpus: Option<Vec<String>>,
    retry_at: Option<Instant>,
    backoff: Backoff,
    started_at: Option<Instant>,
}

/// The daemon's state.
pub struct State {
    opts: Options,
    config: Arc<LoadedConfig>,
    config_debounce: Debounce,
    config_read: Read,
    ignored_logged: Vec<String>,
    backend: BackendState,
    backend_backoff: Backoff,
    backend_error: Option<String>,
    hardware: Hardware,
    faults_logged: BTreeMap<String, FaultKind>,
    unknown_logged: Vec<GpuFault>,
    node_debounce: Debounce,
    inventory_read: Read,
    rescan_at: Option<Instant>,
    read_retry_at: Option<Instant>,
    read_backoff: Backoff,
    inventory_error: Option<String>,
    health: HealthModel,
    watch: Watch,
    watch_logged: (Vec<(String, FaultKind)>, Vec<String>),
    mps_ready: BTreeSet<String>,
    /// MPS resources whose marker has been present since they were planned:
    /// they stay advertised, Unhealthy while the marker is absent.
    mps_seen: BTreeSet<String>,
    mps_check_at: Option<Instant>,
    mps_waiting_logged: BTreeSet<String>,
    prepared: Option<Prepared>,
    plan_error: Option<String>,
    serving: BTreeMap<String, Serving>,
    kubelet: Option<SocketId>,
    kubelet_seen: bool,
    kubelet_warn_at: Option<Instant>,
    next_attempt: u64,
    cdi: cdi::CdiSpec,
}

impl State {
    /// The state at start-up, with the config already read and validated,
    /// and the first effects: start the backend and look for the kubelet.
    pub fn new(opts: Options, config: Arc<LoadedConfig>, now: Instant) -> (State, Vec<Effect>) {
        let health = HealthModel::new(opts.recovery);
        let mut state = State {
            config: config.clone(),
            config_debounce: Debounce::new(DEBOUNCE, DEBOUNCE_MAX),
            config_read: Read::default(),
            ignored_logged: Vec::new(),
            backend: BackendState::Starting,
            backend_backoff: Backoff::new(INIT_RETRY.0, INIT_RETRY.1),
            backend_error: None,
            hardware: Hardware::default(),
            faults_logged: BTreeMap::new(),
            unknown_logged: Vec::new(),
            node_debounce: Debounce::new(DEBOUNCE, DEBOUNCE_MAX),
            inventory_read: Read::default(),
            rescan_at: None,
            read_retry_at: None,
            read_backoff: Backoff::new(READ_RETRY.0, READ_RETRY.1),
            inventory_error: None,
            health,
            watch: Watch {
                generation: 0,
                gpus: None,
                retry_at: None,
                backoff: Backoff::new(WATCH_RETRY.0, WATCH_RETRY.1),
                started_at: None,
            },
            watch_logged: (Vec::new(), Vec::new()),
            mps_ready: BTreeSet::new(),
            mps_seen: BTreeSet::new(),
            mps_check_at: None,
            mps_waiting_logged: BTreeSet::new(),
            prepared: None,
            plan_error: None,
            serving: BTreeMap::new(),
            kubelet: None,
            kubelet_seen: false,
            kubelet_warn_at: Some(now + KUBELET_ABSENT_GRACE),
            next_attempt: 0,
            cdi: cdi::CdiSpec::default(),
            opts,
        };
        if state.opts.policy.checks_disabled() {
            tracing::warn!("health checks are disabled (DP_DISABLE_HEALTHCHECKS)");
        }
        state.log_config(&config, "running with config");
        (state, vec![Effect::StartBackend, Effect::StatKubelet])
    }

    /// Applies one event; returns what to do.
    pub fn step(&mut self, event: Event, now: Instant) -> Vec<Effect> {
        let mut fx = Vec::new();
        match event {
            Event::ConfigFileChanged | Event::Hangup => self.config_debounce.poke(now),
            Event::NodeFileChanged => self.node_debounce.poke(now),
            Event::ConfigLoaded(result) => self.config_loaded(result, now, &mut fx),
            Event::BackendStarted(result) => self.backend_started(result, now, &mut fx),
            Event::InventoryRead(result) => self.inventory_read(result, now, &mut fx),
            Event::Watch { generation, msg } => self.watch_msg(generation, msg, now, &mut fx),
            Event::Probed { gpu, result } => self.probed(&gpu, &result, now, &mut fx),
            Event::MpsMarkers(ready) => self.mps_markers(ready, now, &mut fx),
            Event::KubeletSocket(id) => self.kubelet_socket(id, now, &mut fx),
            Event::SocketFile { name, id } => self.socket_file(&name, id, now, &mut fx),
            Event::Served { resource, result } => self.served(&resource, result, now),
            Event::Registered {
                resource,
                attempt,
                reached,
                result,
            } => self.registered(&resource, attempt, reached, &result, now, &mut fx),
            Event::CdiWritten(result) => self.cdi_written(result, now, &mut fx),
            Event::Tick => {}
        }
        self.after(now, &mut fx);
        fx
    }

    /// The earliest deadline the state waits for.
    pub fn next_deadline(&self) -> Option<Instant> {
        let backend = match self.backend {
            BackendState::Down { retry_at } => Some(retry_at),
            _ => None,
        };
        let health = self
            .backend_up()
            .then(|| self.health.next_deadline())
            .flatten();
        [
            self.config_debounce.deadline(),
            self.node_debounce.deadline(),
            self.rescan_at,
            self.read_retry_at,
            self.mps_check_at,
            self.watch.retry_at,
            self.kubelet_warn_at,
            self.cdi.deadline(),
            backend,
            health,
        ]
        .into_iter()
        .flatten()
        .chain(self.serving.values().filter_map(Serving::next_deadline))
        .min()
    }

    /// What `/readyz` reports.
    pub fn ready_state(&self) -> ReadyState {
        let backend_ok = match self.backend {
            BackendState::Starting if self.backend_error.is_none() => None,
            BackendState::Up => Some(self.health.node_failure().is_none()),
            _ => Some(false),
        };
        let expected: BTreeSet<String> = self.serving.keys().cloned().collect();
        let registered = self
            .serving
            .iter()
            .filter(|(_, s)| s.is_registered_with(self.kubelet))
            .map(|(name, _)| name.clone())
            .collect();
        let mut problems = Vec::new();
        if let Some(e) = &self.plan_error {
            problems.push(format!(
                "the hardware cannot be planned with the current config: {e}"
            ));
        }
        if let Some(e) = &self.cdi.error {
            problems.push(format!("the CDI spec cannot be written: {e}"));
        }
        if let Some(reason) = self.health.node_failure() {
            problems.push(format!("every device is unhealthy: {reason}"));
        }
        ReadyState {
            backend_ok,
            planned: self.prepared.is_some(),
            expected,
            registered,
            problems,
        }
    }

    /// The config being served.
    pub fn config(&self) -> &LoadedConfig {
        &self.config
    }

    /// The health of the node's devices.
    pub fn health(&self) -> &HealthModel {
        &self.health
    }

    /// Per-resource serving state.
    pub fn serving(&self) -> &BTreeMap<String, Serving> {
        &self.serving
    }

    /// The inventory being planned from, once read.
    pub fn inventory(&self) -> Option<&crate::gpu::Inventory> {
        self.hardware.inventory.as_ref()
    }

    /// The plan being served, if any.
    pub fn prepared(&self) -> Option<&Prepared> {
        self.prepared.as_ref()
    }

    fn backend_up(&self) -> bool {
        self.backend == BackendState::Up
    }
}
