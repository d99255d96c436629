//! Per-GPU faults, watch failures, XIDs and recovery probes.

use super::*;

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
fn a_gpu_the_watch_cannot_register_or_loses_is_the_only_one_unhealthy() {
    let mut run = Run::registered(None, None, builtin());
    let watching = |unwatched| Event::Watch {
        generation: 1,
        msg: WatchMsg::Report(WatchReport::Watching {
            unwatched,
            unsupported: Vec::new(),
        }),
    };
    let failed = FaultKind::Failed("nvmlDeviceGetSupportedEventTypes: Unknown Error".into());
    let fx = run.step(10, watching(vec![(uuid(3), failed)]));
    let mut want = vec![true; 8];
    want[3] = false;
    assert_eq!(published_health(&fx), Some(want.clone()));
    assert!(run.state.ready_state().problems.is_empty(), "not node-wide");
    // Later the watch loses another GPU: it joins, the rest stay Healthy.
    let fx = run.step(
        20,
        Event::Watch {
            generation: 1,
            msg: WatchMsg::Report(WatchReport::Fault {
                uuid: uuid(5),
                kind: FaultKind::Lost,
            }),
        },
    );
    want[5] = false;
    assert_eq!(published_health(&fx), Some(want));
}
