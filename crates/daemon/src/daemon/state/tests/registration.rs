//! Serving and registering: once per kubelet start in every event order, no
//! doubled attempt, fast retries of a refused kubelet, bind retries.

use super::*;

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
