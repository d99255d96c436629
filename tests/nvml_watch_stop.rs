//! Ending and idling of health watches against the fake driver: a watch
//! stopped through its `StopSignal` ends at once (its NVML wait is left to
//! finish alone), one polled through `stop()` within one wait, an idle one
//! does not wake, and a node-wide wait failure ends it with an error. Each
//! scenario runs in its own child process (`child_*`).

mod nvml_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use gpu_device_plugin::gpu::nvml::Nvml;
use gpu_device_plugin::gpu::{Backend, GpuError, StopSignal, WATCH_WAKE, WatchReport};
use nvml_support::watch::*;
use nvml_support::{Paths, Stage, run_child, voluntary_switches};

#[test]
fn a_stopped_watch_ends_at_once_and_an_idle_one_does_not_wake() {
    run_child(
        "child_stop_and_idle",
        &Stage::new(&node(&State::default())),
        &[],
    );
}

#[test]
#[ignore = "child process of a_stopped_watch_ends_at_once_and_an_idle_one_does_not_wake"]
fn child_stop_and_idle() {
    let paths = Paths::from_env();
    for backend in backends(&paths, true) {
        let (result, took) = watching(
            backend.as_ref(),
            &paths,
            State::default(),
            &[GPU0, GPU1],
            |w| {
                assert_eq!(w.watching(), (vec![], vec![]));
                w.synchronise(1);
                // Drain leftovers, then a quiet second: no report, and the
                // watching threads sleep through it (a few switches at most).
                while w.rx.recv_timeout(Duration::from_millis(200)).is_ok() {}
                let threads = ["watch-caller", "nvml-events"];
                let before = threads.map(voluntary_switches);
                assert!(
                    w.rx.recv_timeout(Duration::from_secs(1)).is_err(),
                    "no report when idle"
                );
                let after = threads.map(voluntary_switches);
                for ((name, b), a) in threads.iter().zip(before).zip(after) {
                    if let (Some(b), Some(a)) = (b, a) {
                        assert!(a - b <= 3, "{name} woke {} times in an idle second", a - b);
                    }
                }
                assert!(before[0].is_some(), "the caller thread is found");
            },
        );
        assert!(result.is_ok(), "{result:?}");
        // Not at the end of the pending NVML wait: at once.
        assert!(
            took < WATCH_WAKE / 2,
            "{}: took {took:?} to stop",
            backend.name()
        );
        // The NVML wait thread ends by itself once its current wait is over.
        let deadline = Instant::now() + WATCH_WAKE + TIMEOUT;
        while voluntary_switches("nvml-events").is_some() {
            assert!(
                Instant::now() < deadline,
                "the NVML wait thread never ended"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn watch_health_polls_stop_after_each_wait() {
    run_child(
        "child_polled_stop",
        &Stage::new(&node(&State::default())),
        &[],
    );
}

#[test]
#[ignore = "child process of watch_health_polls_stop_after_each_wait"]
fn child_polled_stop() {
    let nvml = Nvml::new(Paths::from_env().options()).unwrap();
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel();
    let gpus = [GPU0.to_string()];
    std::thread::scope(|s| {
        let watcher = s.spawn(|| {
            let result = nvml.watch_health(&gpus, &mut |r| tx.send(r).unwrap(), &|| {
                stop.load(Ordering::SeqCst)
            });
            (result, Instant::now())
        });
        let first = rx.recv_timeout(TIMEOUT);
        assert!(
            matches!(first, Ok(WatchReport::Watching { .. })),
            "{first:?}"
        );
        // The watcher is in (or about to enter) its first wait.
        let stopped = Instant::now();
        stop.store(true, Ordering::SeqCst);
        let (result, ended) = watcher.join().unwrap();
        assert!(result.is_ok(), "{result:?}");
        let took = ended.saturating_duration_since(stopped);
        assert!(took <= WATCH_WAKE + Duration::from_secs(2), "took {took:?}");
    });
}

#[test]
fn an_event_wait_failure_ends_the_watch_with_an_error() {
    let stage = Stage::new(&node(&State::default()));
    run_child(
        "child_wait_fails",
        &stage,
        &[("FAKE_NVML_EVENT_WAIT_ERROR", "999")],
    );
}

#[test]
#[ignore = "child process of an_event_wait_failure_ends_the_watch_with_an_error"]
fn child_wait_fails() {
    let paths = Paths::from_env();
    let nvml = Nvml::new(paths.options()).unwrap();
    let gpus = [GPU0.to_string()];
    for result in [
        nvml.watch_health(&gpus, &mut |_| {}, &|| false),
        nvml.watch_health_until(&gpus, &mut |_| {}, &StopSignal::new()),
    ] {
        match result {
            Err(GpuError::Events(message)) => {
                assert!(message.contains("internal driver error"), "{message}")
            }
            other => panic!("expected an event-source error, got {other:?}"),
        }
    }
}
