//! The CDI spec in the state machine: a plan is served only once its spec
//! is on disk, writes never overlap, a failed write keeps the old plan.

use super::*;

fn cdi_run() -> Run {
    let cfg = config("version: v1\nflags:\n  plugin:\n    deviceListStrategy: [cdi-cri]\n");
    let (mut run, _) = Run::with_config(cfg, None, None);
    run.step(0, Event::KubeletSocket(Some(sid(100))));
    run.step(0, Event::BackendStarted(Ok(())));
    run
}

/// The inventories of the spec writes in `fx`.
fn writes(fx: &[Effect]) -> Vec<&Inventory> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::WriteCdi { inventory, .. } => Some(inventory),
            _ => None,
        })
        .collect()
}

fn publishes(fx: &[Effect]) -> usize {
    fx.iter()
        .filter(|e| matches!(e, Effect::Publish { .. } | Effect::Serve { .. }))
        .count()
}

fn written() -> Event {
    written_with(&[])
}

fn written_with(gated: &[&str]) -> Event {
    Event::CdiWritten(Ok(crate::cdi::Written {
        paths: vec!["/var/run/cdi/k8s.device-plugin.nvidia.com-gpu.json".into()],
        gated: gated.iter().map(|s| s.to_string()).collect(),
    }))
}

fn fewer_gpus() -> Inventory {
    let mut inv = builtin();
    inv.gpus.truncate(1);
    inv
}

#[test]
fn a_plan_is_served_only_once_its_spec_is_written() {
    let mut run = cdi_run();
    let fx = run.step(1, Event::InventoryRead(Ok(builtin())));
    assert_eq!(writes(&fx), [&builtin()]);
    assert_eq!(publishes(&fx), 0, "{fx:?}");
    assert!(!run.state.ready_state().planned);
    let fx = run.step(2, written());
    assert_eq!(publishes(&fx), 2, "publish and serve: {fx:?}");
    assert!(run.state.prepared().is_some());
}

#[test]
fn new_hardware_rewrites_the_spec_before_its_devices_are_published() {
    let mut run = cdi_run();
    run.step(1, Event::InventoryRead(Ok(builtin())));
    run.step(2, written());
    let before = run.state.prepared().unwrap().inventory.clone();
    let fx = run.step(3, Event::InventoryRead(Ok(fewer_gpus())));
    assert_eq!(writes(&fx), [&fewer_gpus()]);
    assert_eq!(publishes(&fx), 0, "{fx:?}");
    assert_eq!(run.state.prepared().unwrap().inventory, before);
    let fx = run.step(4, written());
    assert!(publishes(&fx) > 0);
    assert_eq!(run.state.prepared().unwrap().inventory, fewer_gpus());
}

#[test]
fn an_unchanged_inventory_is_not_written_again() {
    let mut run = cdi_run();
    run.step(1, Event::InventoryRead(Ok(builtin())));
    run.step(2, written());
    let fx = run.step(3, Event::InventoryRead(Ok(builtin())));
    assert!(writes(&fx).is_empty(), "{fx:?}");
}

#[test]
fn a_failed_write_keeps_the_old_plan_shows_in_readiness_and_is_retried() {
    let mut run = cdi_run();
    run.step(1, Event::InventoryRead(Ok(builtin())));
    run.step(2, written());
    run.step(3, Event::InventoryRead(Ok(fewer_gpus())));
    let fx = run.step(4, Event::CdiWritten(Err("disk full".into())));
    assert_eq!(publishes(&fx), 0);
    assert_eq!(run.state.prepared().unwrap().inventory, builtin());
    let problems = run.state.ready_state().problems;
    assert!(
        problems
            .iter()
            .any(|p| p.contains("CDI spec cannot be written: disk full")),
        "{problems:?}"
    );
    assert_eq!(run.next_deadline_ms(), Some(1004));
    let fx = run.step(1004, Event::Tick);
    assert_eq!(writes(&fx), [&fewer_gpus()]);
    run.step(1005, written());
    assert!(run.state.ready_state().problems.is_empty());
    assert_eq!(run.state.prepared().unwrap().inventory, fewer_gpus());
}

#[test]
fn writes_never_overlap_and_the_newest_plan_wins() {
    let mut run = cdi_run();
    run.step(1, Event::InventoryRead(Ok(builtin())));
    // A change while the first write is in flight: no second write yet.
    let fx = run.step(2, Event::InventoryRead(Ok(fewer_gpus())));
    assert!(writes(&fx).is_empty(), "{fx:?}");
    // The first write's result: the newer inventory is written next, nothing served yet.
    let fx = run.step(3, written());
    assert_eq!(writes(&fx), [&fewer_gpus()]);
    assert_eq!(publishes(&fx), 0);
    let fx = run.step(4, written());
    assert!(publishes(&fx) > 0);
    assert_eq!(run.state.prepared().unwrap().inventory, fewer_gpus());
}

#[test]
fn without_a_cdi_strategy_no_spec_is_written() {
    let (mut run, _) = Run::new(None, None);
    run.step(0, Event::BackendStarted(Ok(())));
    let fx = run.step(1, Event::InventoryRead(Ok(builtin())));
    assert!(writes(&fx).is_empty());
    assert!(publishes(&fx) > 0);
}

#[test]
fn the_gated_specs_written_are_named_by_every_later_plan() {
    let mut run = cdi_run();
    run.step(1, Event::InventoryRead(Ok(builtin())));
    run.step(2, written_with(&["gds"]));
    let gated = |run: &Run| {
        run.state
            .prepared()
            .unwrap()
            .options
            .cdi
            .as_ref()
            .unwrap()
            .gated
            .clone()
    };
    assert_eq!(gated(&run), ["k8s.device-plugin.nvidia.com/gds=all"]);
    // A reload that changes the plan but not the spec's inputs: no write, still named.
    let before = run.state.prepared().unwrap().resources[GPU]
        .resource
        .devices
        .len();
    let shared = "version: v1\nflags:\n  plugin:\n    deviceListStrategy: [cdi-cri]\n\
                  sharing:\n  timeSlicing:\n    resources:\n    - name: nvidia.com/gpu\n      replicas: 2\n";
    let fx = run.step(3, Event::ConfigLoaded(Ok(config(shared))));
    assert!(writes(&fx).is_empty(), "{fx:?}");
    let after = run.state.prepared().unwrap().resources[GPU]
        .resource
        .devices
        .len();
    assert_eq!(after, 2 * before, "the reload was applied");
    assert_eq!(gated(&run), ["k8s.device-plugin.nvidia.com/gds=all"]);
}

#[test]
fn leaving_the_cdi_strategies_clears_a_write_failure() {
    let mut run = cdi_run();
    run.step(1, Event::InventoryRead(Ok(builtin())));
    run.step(2, Event::CdiWritten(Err("read-only file system".into())));
    assert!(!run.state.ready_state().problems.is_empty());
    let fx = run.step(3, Event::ConfigLoaded(Ok(config("version: v1\n"))));
    assert!(publishes(&fx) > 0, "served without a spec: {fx:?}");
    assert!(run.state.ready_state().problems.is_empty());
    assert_eq!(run.next_deadline_ms(), None);
}
