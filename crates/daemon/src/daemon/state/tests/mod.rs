//! The runtime's decisions as sequences of (event, time) → effects: start-up,
//! exactly one registration per kubelet start (in every event order),
//! registration and bind retries, timers that unrelated events cannot
//! postpone, SIGHUP before the backend is up, rejected configs, per-GPU
//! faults, watch failures and recovery probes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;

mod cdi;
mod health;
mod inputs;
mod mps;
mod registration;
use crate::config::{Overrides, Settings, v1};
use crate::gpu::simulated::{BUILTIN_NODE, parse_node};
use crate::gpu::{EventKind, HealthEvent, Inventory, RecoveryAction};

const GPU: &str = "nvidia.com/gpu";
const SOCK: &str = "nvidia-gpu.sock";

fn sid(n: u64) -> SocketId {
    SocketId {
        dev: 1,
        ino: n,
        ctime_sec: 0,
        ctime_nsec: 0,
    }
}

fn config(text: &str) -> Arc<LoadedConfig> {
    let check = v1::check(text);
    let file = check.config.expect("config decodes");
    assert!(check.errors.is_empty(), "{:?}", check.errors);
    let overrides = Overrides {
        mps_root: Some("/run/nvidia/mps".into()),
        ..Overrides::default()
    };
    let settings = Settings::resolve(&overrides, &file).expect("settings");
    Arc::new(LoadedConfig {
        effective: file.to_json().to_string(),
        file,
        settings,
        ignored: Vec::new(),
    })
}

fn builtin() -> Inventory {
    parse_node(BUILTIN_NODE, "builtin").unwrap().inventory
}

fn uuid(i: usize) -> String {
    builtin().gpus[i].uuid.clone()
}

/// A state machine and a clock in milliseconds after `t0`.
struct Run {
    state: State,
    t0: Instant,
    now: u64,
}

impl Run {
    fn new(rescan: Option<u64>, recovery: Option<u64>) -> (Run, Vec<Effect>) {
        Run::with_config(config(""), rescan, recovery)
    }

    fn with_config(
        cfg: Arc<LoadedConfig>,
        rescan: Option<u64>,
        recovery: Option<u64>,
    ) -> (Run, Vec<Effect>) {
        let t0 = Instant::now();
        let opts = Options {
            kubelet_socket: "/k/kubelet.sock".into(),
            recovery: recovery.map(Duration::from_millis),
            rescan: rescan.map(Duration::from_millis),
            policy: XidPolicy::from_env_values(None, None),
            control_nodes: Vec::new(),
            mps_marker_root: "/mps".into(),
            dra: None,
        };
        let (state, fx) = State::new(opts, cfg, t0);
        (Run { state, t0, now: 0 }, fx)
    }

    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    fn step(&mut self, ms: u64, event: Event) -> Vec<Effect> {
        assert!(ms >= self.now, "time goes forward");
        self.now = ms;
        let at = self.at(ms);
        self.state.step(event, at)
    }

    fn next_deadline_ms(&self) -> Option<u64> {
        self.state
            .next_deadline()
            .map(|d| d.duration_since(self.t0).as_millis() as u64)
    }

    /// Start-up through the first registration: kubelet `k`, our socket `s`.
    fn registered(rescan: Option<u64>, recovery: Option<u64>, inventory: Inventory) -> Run {
        let (mut run, _) = Run::new(rescan, recovery);
        run.step(0, Event::KubeletSocket(Some(sid(100))));
        run.step(0, Event::BackendStarted(Ok(())));
        run.step(1, Event::InventoryRead(Ok(inventory)));
        let fx = run.step(1, served(sid(1)));
        let a = register_attempts(&fx);
        assert_eq!(a.len(), 1, "{fx:?}");
        run.step(2, ok(a[0], Some(sid(100))));
        assert!(run.state.serving()[GPU].is_registered_with(Some(sid(100))));
        run
    }
}

fn served(id: SocketId) -> Event {
    Event::Served {
        resource: GPU.into(),
        result: Ok(id),
    }
}

fn ok(attempt: u64, reached: Option<SocketId>) -> Event {
    Event::Registered {
        resource: GPU.into(),
        attempt,
        reached,
        result: Ok(()),
    }
}

fn gone(attempt: u64, observed: Option<SocketId>) -> Event {
    Event::Registered {
        resource: GPU.into(),
        attempt,
        reached: Some(sid(200)),
        result: Err(RegisterFailure::socket_gone(observed)),
    }
}

fn refused(attempt: u64) -> Event {
    Event::Registered {
        resource: GPU.into(),
        attempt,
        reached: None,
        result: Err(RegisterFailure::call(true, "connection refused".into())),
    }
}

/// Attempts with the socket of ours each one names.
fn register_targets(fx: &[Effect]) -> Vec<(u64, SocketId)> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Register {
                attempt, server, ..
            } => Some((*attempt, *server)),
            _ => None,
        })
        .collect()
}

fn register_attempts(fx: &[Effect]) -> Vec<u64> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Register { attempt, .. } => Some(*attempt),
            _ => None,
        })
        .collect()
}

fn serves(fx: &[Effect]) -> usize {
    fx.iter()
        .filter(|e| matches!(e, Effect::Serve { .. }))
        .count()
}

fn has(fx: &[Effect], pred: impl Fn(&Effect) -> bool) -> bool {
    fx.iter().any(pred)
}

/// Health per device of the published GPU resource.
fn published_health(fx: &[Effect]) -> Option<Vec<bool>> {
    fx.iter().find_map(|e| match e {
        Effect::Publish { resource, snapshot } if resource == GPU => Some(snapshot.healthy.clone()),
        _ => None,
    })
}
