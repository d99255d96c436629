//! The runtime's decisions as sequences of (event, time) → effects: start-up,
//! exactly one registration per kubelet start (in every event order),
//! registration and bind retries, timers that unrelated events cannot
//! postpone, SIGHUP before the backend is up, rejected configs, per-GPU
//! faults, watch failures and recovery probes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
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

#[test]
fn start_up_serves_then_registers_once() {
    let (mut run, fx) = Run::new(None, None);
    assert!(matches!(
        fx.as_slice(),
        [Effect::StartBackend, Effect::StatKubelet]
    ));
    assert!(run.step(0, Event::KubeletSocket(Some(sid(100)))).is_empty());
    let fx = run.step(0, Event::BackendStarted(Ok(())));
    assert!(matches!(fx.as_slice(), [Effect::ReadInventory]), "{fx:?}");
    let fx = run.step(1, Event::InventoryRead(Ok(builtin())));
    assert_eq!(published_health(&fx), Some(vec![true; 8]));
    assert_eq!(serves(&fx), 1);
    assert!(
        register_attempts(&fx).is_empty(),
        "not before the socket is served"
    );
    assert!(has(
        &fx,
        |e| matches!(e, Effect::StartWatch { generation: 1, gpus } if gpus.len() == 8)
    ));
    let fx = run.step(1, served(sid(1)));
    assert_eq!(register_attempts(&fx), [0]);
    let fx = run.step(2, ok(0, Some(sid(100))));
    assert!(has(
        &fx,
        |e| matches!(e, Effect::Count(Count::Registered(r)) if r == GPU)
    ));
    let ready = run.state.ready_state();
    assert!(ready.registered.contains(GPU), "{ready:?}");
    assert_eq!(run.next_deadline_ms(), None, "nothing left to wait for");
}

#[test]
fn one_registration_per_kubelet_start_in_every_event_order() {
    // The kubelet deletes every socket (ours included), then creates kubelet.sock.
    // inotify delivers that in one order, but our stat of kubelet.sock may
    // already see the new socket when our socket's deletion is processed.
    let orders: [(&str, &[u8]); 4] = [
        ("kubelet gone, ours gone, kubelet back", &[0, 1, 2]),
        ("ours gone, kubelet gone, kubelet back", &[1, 0, 2]),
        (
            "ours gone, kubelet back (socket seen), kubelet events late",
            &[1, 2, 0, 2],
        ),
        ("kubelet back before ours is noticed", &[2, 1]),
    ];
    for (name, order) in orders {
        let mut run = Run::registered(None, None, builtin());
        let mut attempts = Vec::new();
        let mut t = 10;
        let mut pending: Vec<(u64, SocketId)> = Vec::new();
        let mut served_again = false;
        // The kubelet deleted our socket before it created its own.
        let mut ours: Option<SocketId> = None;
        for ev in order {
            let event = match ev {
                0 => Event::KubeletSocket(None),
                1 => Event::SocketFile {
                    name: SOCK.into(),
                    id: ours,
                },
                _ => Event::KubeletSocket(Some(sid(200))),
            };
            let fx = run.step(t, event);
            if serves(&fx) > 0 {
                ours = Some(sid(2));
                let fx = run.step(t, served(sid(2)));
                served_again = true;
                pending.extend(register_targets(&fx));
            }
            pending.extend(register_targets(&fx));
            // An attempt checks our socket, then reaches the new kubelet.
            while let Some((a, server)) = pending.pop() {
                assert!(
                    attempts.len() < 10,
                    "{name}: registers in a loop: {attempts:?}"
                );
                let fx = if Some(server) == ours {
                    attempts.push(a);
                    run.step(t, ok(a, Some(sid(200))))
                } else {
                    let fx = run.step(t, gone(a, ours));
                    if serves(&fx) > 0 {
                        ours = Some(sid(2));
                        served_again = true;
                        let mut fx = fx;
                        fx.extend(run.step(t, served(sid(2))));
                        fx
                    } else {
                        fx
                    }
                };
                pending.extend(register_targets(&fx));
            }
            t += 1;
        }
        assert!(served_again, "{name}: our socket is served again");
        assert_eq!(attempts.len(), 1, "{name}: {attempts:?}");
        assert!(
            run.state.serving()[GPU].is_registered_with(Some(sid(200))),
            "{name}"
        );
        // A repeated event about the same kubelet socket changes nothing.
        let fx = run.step(t, Event::KubeletSocket(Some(sid(200))));
        assert!(register_attempts(&fx).is_empty(), "{name}");
    }
}

#[test]
fn an_attempt_in_flight_is_not_doubled_when_the_kubelet_changes() {
    let mut run = Run::registered(None, None, builtin());
    let fx = run.step(
        10,
        Event::SocketFile {
            name: SOCK.into(),
            id: None,
        },
    );
    assert_eq!(serves(&fx), 1);
    let fx = run.step(10, served(sid(2)));
    let a = register_attempts(&fx);
    assert_eq!(a.len(), 1);
    // The kubelet restarts while the attempt runs: wait for its result.
    let fx = run.step(11, Event::KubeletSocket(Some(sid(200))));
    assert!(register_attempts(&fx).is_empty(), "{fx:?}");
    // It hit the old, dead socket: retried within milliseconds.
    let fx = run.step(12, refused(a[0]));
    assert!(register_attempts(&fx).is_empty());
    assert_eq!(run.next_deadline_ms(), Some(14));
    let fx = run.step(14, Event::Tick);
    let b = register_attempts(&fx);
    assert_eq!(b.len(), 1);
    run.step(15, ok(b[0], Some(sid(200))));
    assert!(run.state.serving()[GPU].is_registered_with(Some(sid(200))));
}

#[test]
fn a_refused_registration_is_retried_fast_then_backs_off() {
    let (mut run, _) = Run::new(None, None);
    run.step(0, Event::KubeletSocket(Some(sid(100))));
    run.step(0, Event::BackendStarted(Ok(())));
    run.step(0, Event::InventoryRead(Ok(builtin())));
    let mut fx = run.step(0, served(sid(1)));
    let mut delays = Vec::new();
    for _ in 0..6 {
        let a = register_attempts(&fx)[0];
        run.step(run.now, refused(a));
        let due = run.next_deadline_ms().unwrap();
        delays.push(due - run.now);
        fx = run.step(due, Event::Tick);
    }
    assert_eq!(delays, [2, 4, 8, 16, 32, 64]);
}

#[test]
fn no_registration_while_the_kubelet_socket_is_absent() {
    let (mut run, _) = Run::new(None, None);
    run.step(0, Event::KubeletSocket(None));
    run.step(0, Event::BackendStarted(Ok(())));
    run.step(0, Event::InventoryRead(Ok(builtin())));
    let fx = run.step(0, served(sid(1)));
    assert!(register_attempts(&fx).is_empty());
    // Reported after the grace period, then every minute, re-checking the path.
    assert_eq!(run.next_deadline_ms(), Some(2_000));
    let fx = run.step(2_000, Event::Tick);
    assert!(has(&fx, |e| matches!(e, Effect::StatKubelet)));
    assert_eq!(run.next_deadline_ms(), Some(62_000));
    let fx = run.step(3_000, Event::KubeletSocket(Some(sid(100))));
    assert_eq!(register_attempts(&fx).len(), 1);
}

#[test]
fn a_failed_bind_is_retried_and_nothing_registers_meanwhile() {
    let (mut run, _) = Run::new(None, None);
    run.step(0, Event::KubeletSocket(Some(sid(100))));
    run.step(0, Event::BackendStarted(Ok(())));
    run.step(0, Event::InventoryRead(Ok(builtin())));
    let fx = run.step(
        0,
        Event::Served {
            resource: GPU.into(),
            result: Err("another process serves /k/nvidia-gpu.sock".into()),
        },
    );
    assert!(register_attempts(&fx).is_empty());
    assert_eq!(run.next_deadline_ms(), Some(1_000));
    let fx = run.step(1_000, Event::Tick);
    assert_eq!(serves(&fx), 1);
    let fx = run.step(
        1_000,
        Event::Served {
            resource: GPU.into(),
            result: Err("still".into()),
        },
    );
    assert!(register_attempts(&fx).is_empty());
    assert_eq!(run.next_deadline_ms(), Some(3_000), "backs off");
    // The blocking socket goes away: bind at once.
    let fx = run.step(
        1_500,
        Event::SocketFile {
            name: SOCK.into(),
            id: None,
        },
    );
    assert!(fx.is_empty() || serves(&fx) == 1);
    let fx = if serves(&fx) == 1 {
        fx
    } else {
        run.step(1_500, Event::Tick)
    };
    assert_eq!(serves(&fx), 1);
    let fx = run.step(1_500, served(sid(1)));
    assert_eq!(register_attempts(&fx).len(), 1);
}

#[test]
fn unrelated_events_do_not_postpone_a_rescan() {
    let mut run = Run::registered(Some(1_000), None, builtin());
    // The first read completed at 1 ms.
    assert_eq!(run.next_deadline_ms(), Some(1_001));
    for t in (300..=900).step_by(300) {
        let fx = run.step(
            t,
            Event::SocketFile {
                name: "kubelet_internal_checkpoint".into(),
                id: None,
            },
        );
        assert!(fx.is_empty(), "{fx:?}");
        assert_eq!(run.next_deadline_ms(), Some(1_001));
    }
    let fx = run.step(1_001, Event::Tick);
    assert!(has(&fx, |e| matches!(e, Effect::ReadInventory)));
    // A GPU removed from the node is applied from that read.
    let mut fewer = builtin();
    fewer.gpus.pop();
    let fx = run.step(1_010, Event::InventoryRead(Ok(fewer)));
    assert_eq!(published_health(&fx), Some(vec![true; 7]));
    assert_eq!(run.next_deadline_ms(), Some(2_010));
}

#[test]
fn a_stream_of_file_events_still_reloads() {
    let (mut run, _) = Run::new(None, None);
    let mut reads = 0;
    for t in (0..=400).step_by(10) {
        let fx = run.step(t, Event::ConfigFileChanged);
        reads += fx
            .iter()
            .filter(|e| matches!(e, Effect::ReadConfig))
            .count();
        if let Some(due) = run.next_deadline_ms()
            && due <= t + 9
        {
            let fx = run.step(due, Event::Tick);
            reads += fx
                .iter()
                .filter(|e| matches!(e, Effect::ReadConfig))
                .count();
        }
    }
    assert!(reads >= 1, "the debounce must not starve the reload");
}

#[test]
fn sighup_before_the_backend_is_up_reloads_the_config() {
    let (mut run, _) = Run::new(None, None);
    let fx = run.step(0, Event::Hangup);
    assert!(fx.is_empty());
    let fx = run.step(20, Event::Tick);
    assert!(matches!(fx.as_slice(), [Effect::ReadConfig]), "{fx:?}");
    let fx = run.step(
        21,
        Event::ConfigLoaded(Ok(config("version: v1\nflags:\n  migStrategy: mixed\n"))),
    );
    assert!(has(&fx, |e| matches!(
        e,
        Effect::Count(Count::Reload { ok: true })
    )));
    assert!(!has(&fx, |e| matches!(e, Effect::Exit(_))));
    assert_eq!(
        run.state.config().settings.mig_strategy,
        crate::resources::MigStrategy::Mixed
    );
}

#[test]
fn a_config_that_cannot_be_planned_is_rejected_and_changes_nothing() {
    let mut run = Run::registered(None, None, builtin());
    let before = run.state.config().clone();
    let mps = "version: v1\nsharing:\n  mps:\n    resources:\n    - name: nvidia.com/gpu\n      replicas: 1000\n";
    run.step(10, Event::ConfigFileChanged);
    run.step(30, Event::Tick);
    let fx = run.step(31, Event::ConfigLoaded(Ok(config(mps))));
    assert!(has(&fx, |e| matches!(
        e,
        Effect::Count(Count::Reload { ok: false })
    )));
    assert!(published_health(&fx).is_none(), "{fx:?}");
    assert_eq!(*run.state.config(), before);
    let fx = run.step(32, Event::ConfigLoaded(Err("line 3: bad".into())));
    assert!(has(&fx, |e| matches!(
        e,
        Effect::Count(Count::Reload { ok: false })
    )));
    assert_eq!(*run.state.config(), before);
}

#[test]
fn a_bad_config_does_not_block_a_hardware_change() {
    let mut run = Run::registered(None, None, builtin());
    run.step(10, Event::ConfigLoaded(Err("line 3: bad".into())));
    run.step(11, Event::NodeFileChanged);
    let fx = run.step(31, Event::Tick);
    assert!(has(&fx, |e| matches!(e, Effect::ReadInventory)), "{fx:?}");
    let mut fewer = builtin();
    fewer.gpus.truncate(4);
    let fx = run.step(32, Event::InventoryRead(Ok(fewer)));
    assert_eq!(published_health(&fx), Some(vec![true; 4]));
}

#[test]
fn a_lost_gpu_makes_only_its_devices_unhealthy() {
    let mut run = Run::registered(None, None, builtin());
    let mut read = builtin();
    read.gpus.remove(3);
    read.faults.push(GpuFault {
        index: 3,
        uuid: None,
        kind: FaultKind::Lost,
    });
    let fx = run.step(10, Event::InventoryRead(Ok(read)));
    let mut want = vec![true; 8];
    want[3] = false;
    assert_eq!(published_health(&fx), Some(want));
    // The watch follows the GPUs that answer.
    assert!(has(
        &fx,
        |e| matches!(e, Effect::StartWatch { gpus, .. } if gpus.len() == 7)
    ));
    let fx = run.step(20, Event::InventoryRead(Ok(builtin())));
    assert_eq!(published_health(&fx), Some(vec![true; 8]));
}

#[test]
fn an_nvml_error_during_a_config_edit_does_not_touch_the_config() {
    let mut run = Run::registered(None, None, builtin());
    let fx = run.step(
        10,
        Event::InventoryRead(Err("NVML call failed: Unknown Error".into())),
    );
    assert_eq!(published_health(&fx), Some(vec![false; 8]));
    let ts = "version: v1\nsharing:\n  timeSlicing:\n    resources:\n    - name: nvidia.com/gpu\n      replicas: 2\n";
    let fx = run.step(11, Event::ConfigLoaded(Ok(config(ts))));
    assert!(has(&fx, |e| matches!(
        e,
        Effect::Count(Count::Reload { ok: true })
    )));
    assert_eq!(
        published_health(&fx),
        Some(vec![false; 16]),
        "still unhealthy, new config applied"
    );
    // The read is retried, and recovery restores health.
    assert_eq!(run.next_deadline_ms(), Some(1_010));
    let fx = run.step(1_010, Event::Tick);
    assert!(has(&fx, |e| matches!(e, Effect::ReadInventory)));
    let fx = run.step(1_011, Event::InventoryRead(Ok(builtin())));
    assert_eq!(published_health(&fx), Some(vec![true; 16]));
}

#[test]
fn a_watch_failure_is_node_wide_and_retried_with_backoff() {
    let mut run = Run::registered(None, None, builtin());
    let fx = run.step(
        10,
        Event::Watch {
            generation: 1,
            msg: WatchMsg::Failed("waiting for NVML events failed".into()),
        },
    );
    assert_eq!(published_health(&fx), Some(vec![false; 8]));
    assert_eq!(run.next_deadline_ms(), Some(510));
    let fx = run.step(510, Event::Tick);
    assert!(has(&fx, |e| matches!(
        e,
        Effect::StartWatch { generation: 2, .. }
    )));
    // A report from the replaced watch is ignored.
    let stale = run.step(
        511,
        Event::Watch {
            generation: 1,
            msg: WatchMsg::Report(WatchReport::Watching {
                unwatched: Vec::new(),
                unsupported: Vec::new(),
            }),
        },
    );
    assert!(stale.is_empty());
    let fx = run.step(
        512,
        Event::Watch {
            generation: 2,
            msg: WatchMsg::Report(WatchReport::Watching {
                unwatched: vec![(uuid(1), FaultKind::Lost)],
                unsupported: Vec::new(),
            }),
        },
    );
    let mut want = vec![true; 8];
    want[1] = false;
    assert_eq!(published_health(&fx), Some(want));
}

fn xid(gpu: usize, xid: u64) -> Event {
    Event::Watch {
        generation: 1,
        msg: WatchMsg::Report(WatchReport::Event(HealthEvent {
            gpu_uuid: uuid(gpu),
            kind: EventKind::Xid(xid),
            gpu_instance_id: None,
            compute_instance_id: None,
        })),
    }
}

fn probe(action: Option<RecoveryAction>) -> Result<Probe, FaultKind> {
    Ok(Probe {
        recovery_action: action,
        ..Probe::default()
    })
}

#[test]
fn xid_79_recovers_only_once_the_gpu_needs_no_reset() {
    let mut run = Run::registered(None, Some(1_000), builtin());
    let fx = run.step(10, xid(2, 79));
    let mut want = vec![true; 8];
    want[2] = false;
    assert_eq!(published_health(&fx), Some(want.clone()));
    assert_eq!(run.next_deadline_ms(), Some(1_010));
    let fx = run.step(1_010, Event::Tick);
    assert!(has(&fx, |e| matches!(e, Effect::Probe(g) if *g == uuid(2))));
    let fx = run.step(
        1_011,
        Event::Probed {
            gpu: uuid(2),
            result: probe(Some(RecoveryAction::GpuReset)),
        },
    );
    assert!(published_health(&fx).is_none(), "still unhealthy");
    assert_eq!(run.next_deadline_ms(), Some(2_011));
    let fx = run.step(2_011, Event::Tick);
    assert!(has(&fx, |e| matches!(e, Effect::Probe(_))));
    let fx = run.step(
        2_012,
        Event::Probed {
            gpu: uuid(2),
            result: probe(Some(RecoveryAction::None)),
        },
    );
    assert_eq!(published_health(&fx), Some(vec![true; 8]));
}

#[test]
fn an_ignored_xid_changes_nothing() {
    let mut run = Run::registered(None, Some(1_000), builtin());
    let fx = run.step(10, xid(2, 13));
    assert!(published_health(&fx).is_none());
    assert!(has(&fx, |e| matches!(
        e,
        Effect::Count(Count::HealthEvent {
            xid: 13,
            action: "ignored"
        })
    )));
}

#[test]
fn a_backend_that_fails_to_start_exits_or_retries_per_fail_on_init_error() {
    let (mut run, _) = Run::new(None, None);
    let fx = run.step(
        0,
        Event::BackendStarted(Err("failed to initialize NVML".into())),
    );
    assert!(has(&fx, |e| matches!(e, Effect::Exit(_))));

    let cfg = config("version: v1\nflags:\n  failOnInitError: false\n");
    let (mut run, _) = Run::with_config(cfg, None, None);
    run.step(0, Event::KubeletSocket(Some(sid(100))));
    let fx = run.step(
        0,
        Event::BackendStarted(Err("failed to initialize NVML".into())),
    );
    assert!(!has(&fx, |e| matches!(e, Effect::Exit(_))));
    assert_eq!(run.next_deadline_ms(), Some(1_000));
    // SIGHUP meanwhile is just a reload.
    run.step(10, Event::Hangup);
    let fx = run.step(30, Event::Tick);
    assert!(matches!(fx.as_slice(), [Effect::ReadConfig]));
    let fx = run.step(1_000, Event::Tick);
    assert!(has(&fx, |e| matches!(e, Effect::StartBackend)));
    run.step(
        1_001,
        Event::BackendStarted(Err("failed to initialize NVML".into())),
    );
    assert_eq!(run.next_deadline_ms(), Some(3_001), "backs off");
}

#[test]
fn inventory_reads_are_coalesced_while_one_is_in_flight() {
    let mut run = Run::registered(None, None, builtin());
    run.step(10, Event::NodeFileChanged);
    let fx = run.step(30, Event::Tick);
    assert!(has(&fx, |e| matches!(e, Effect::ReadInventory)));
    run.step(31, Event::NodeFileChanged);
    let fx = run.step(51, Event::Tick);
    assert!(
        !has(&fx, |e| matches!(e, Effect::ReadInventory)),
        "one in flight"
    );
    let fx = run.step(60, Event::InventoryRead(Ok(builtin())));
    assert!(
        has(&fx, |e| matches!(e, Effect::ReadInventory)),
        "read again after it"
    );
}
