//! Config, inventory and backend as separate inputs: timers unrelated events
//! cannot postpone, early SIGHUP, rejected configs, coalesced reads, start-up
//! failures.

use super::*;

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

#[test]
fn hardware_that_cannot_be_planned_at_start_is_fatal_unless_fail_on_init_error_is_false() {
    let h100 = parse_node(
        include_str!("../../../../../../config/nodes/h100-mig.yaml"),
        "h100",
    )
    .unwrap()
    .inventory;
    let single = "version: v1\nflags:\n  migStrategy: single\n";
    let (mut run, _) = Run::with_config(config(single), None, None);
    run.step(0, Event::BackendStarted(Ok(())));
    let fx = run.step(1, Event::InventoryRead(Ok(h100.clone())));
    assert!(
        has(
            &fx,
            |e| matches!(e, Effect::Exit(m) if m.contains("invalid MIG configuration"))
        ),
        "{fx:?}"
    );

    let lenient = "version: v1\nflags:\n  migStrategy: single\n  failOnInitError: false\n";
    let (mut run, _) = Run::with_config(config(lenient), None, None);
    run.step(0, Event::BackendStarted(Ok(())));
    let fx = run.step(1, Event::InventoryRead(Ok(h100)));
    assert!(!has(&fx, |e| matches!(e, Effect::Exit(_))));
    let ready = run.state.ready_state();
    assert!(
        ready
            .problems
            .iter()
            .any(|p| p.contains("invalid MIG configuration")),
        "{ready:?}"
    );
}
