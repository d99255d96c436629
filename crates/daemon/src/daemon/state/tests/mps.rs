//! MPS markers as (event, time) → effects: a resource waits for its marker
//! (read under the in-container MPS root), is advertised once it appears,
//! turns Unhealthy with its capacity kept when it disappears, and is healthy
//! again when it is back; markers are checked for as long as MPS is planned.

use super::*;

const MPS4: &str = "version: v1\nsharing:\n  mps:\n    resources:\n    - name: nvidia.com/gpu\n      replicas: 4\n";

fn markers(ready: &[&str]) -> Event {
    Event::MpsMarkers(ready.iter().map(|s| s.to_string()).collect())
}

fn checked(fx: &[Effect]) -> Option<Vec<(String, PathBuf)>> {
    fx.iter().find_map(|e| match e {
        Effect::CheckMps(m) => Some(m.clone()),
        _ => None,
    })
}

#[derive(Debug, Clone, PartialEq)]
enum Seen {
    /// No publish of the resource.
    Nothing,
    /// Published with this many devices, all healthy or all unhealthy.
    Devices(usize, bool),
}

fn seen(fx: &[Effect]) -> Seen {
    match published_health(fx) {
        None => Seen::Nothing,
        Some(h) if h.iter().all(|x| *x) => Seen::Devices(h.len(), true),
        Some(h) if h.iter().all(|x| !*x) => Seen::Devices(h.len(), false),
        Some(h) => panic!("mixed health {h:?}"),
    }
}

#[test]
fn the_marker_gates_advertising_then_health() {
    let (mut run, _) = Run::with_config(config(MPS4), None, None);
    run.step(0, Event::KubeletSocket(Some(sid(100))));
    run.step(0, Event::BackendStarted(Ok(())));
    let fx = run.step(1, Event::InventoryRead(Ok(builtin())));
    assert_eq!(serves(&fx), 0, "waits for the marker: {fx:?}");
    let wanted = vec![(
        GPU.to_string(),
        PathBuf::from("/mps/nvidia.com/gpu/.started"),
    )];
    assert_eq!(
        checked(&fx),
        Some(wanted.clone()),
        "checked at once, in-container path"
    );

    // (time ms, markers present, serves, stops, what is published)
    let steps: &[(u64, &[&str], usize, usize, Seen)] = &[
        (2, &[], 0, 0, Seen::Nothing),
        (1002, &[GPU], 1, 0, Seen::Devices(32, true)),
        (2002, &[GPU], 0, 0, Seen::Nothing),
        (3002, &[], 0, 0, Seen::Devices(32, false)),
        (4002, &[], 0, 0, Seen::Nothing),
        (5002, &[GPU], 0, 0, Seen::Devices(32, true)),
    ];
    for (ms, present, serve, stop, publish) in steps {
        let fx = run.step(*ms, markers(present));
        let stops = fx
            .iter()
            .filter(|e| matches!(e, Effect::StopServing { .. }))
            .count();
        assert_eq!(
            (serves(&fx), stops, seen(&fx)),
            (*serve, *stop, publish.clone()),
            "at {ms} ms with {present:?}: {fx:?}"
        );
        // The next check is always scheduled a second later...
        assert_eq!(run.next_deadline_ms(), Some(ms + 1000), "at {ms} ms");
        // ... and checks the same marker.
        let fx = run.step(ms + 1000 - 1, Event::Tick);
        assert!(checked(&fx).is_none());
    }
    let fx = run.step(6002, Event::Tick);
    assert_eq!(checked(&fx), Some(wanted));
}

#[test]
fn a_replica_change_keeps_the_resource_advertised_with_the_new_count() {
    let (mut run, _) = Run::with_config(config(MPS4), None, None);
    run.step(0, Event::KubeletSocket(Some(sid(100))));
    run.step(0, Event::BackendStarted(Ok(())));
    run.step(1, Event::InventoryRead(Ok(builtin())));
    let fx = run.step(2, markers(&[GPU]));
    assert_eq!(serves(&fx), 1);
    let fx = run.step(
        3,
        Event::ConfigLoaded(Ok(config(&MPS4.replace("4\n", "8\n")))),
    );
    assert_eq!(seen(&fx), Seen::Devices(64, true), "{fx:?}");
    assert_eq!(serves(&fx), 0, "same resource, same server");
}

#[test]
fn without_mps_no_marker_is_checked() {
    let (mut run, _) = Run::new(None, None);
    run.step(0, Event::BackendStarted(Ok(())));
    let fx = run.step(1, Event::InventoryRead(Ok(builtin())));
    assert!(checked(&fx).is_none());
    assert_eq!(
        run.next_deadline_ms(),
        Some(2000),
        "only the kubelet warning"
    );
}
