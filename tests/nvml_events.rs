//! Health events against the fake driver: XIDs appended to the node file
//! arrive through the watch; a GPU that cannot be registered, is unknown, or
//! is lost while watched is reported alone and the others keep delivering
//! events, on both backends where the node file can say it. Each scenario
//! runs in its own child process (`child_*`).

mod nvml_support;

use gpu_device_plugin::gpu::FaultKind;
use gpu_device_plugin::gpu::nvml::Nvml;
use nvml_support::watch::*;
use nvml_support::{Paths, Stage, run_child};

#[test]
fn xids_arrive_through_the_watch_on_both_backends() {
    run_child(
        "child_xids_arrive",
        &Stage::new(&node(&State::default())),
        &[],
    );
}

#[test]
#[ignore = "child process of xids_arrive_through_the_watch_on_both_backends"]
fn child_xids_arrive() {
    let paths = Paths::from_env();
    for backend in backends(&paths, true) {
        let ran = watching(
            backend.as_ref(),
            &paths,
            State::default(),
            &[GPU0, GPU1],
            |w| {
                assert_eq!(w.watching(), (vec![], vec![]));
                w.synchronise(1);
                w.write(|s| s.xids[0].push(79));
                assert_eq!(w.next(), xid(GPU0, 79, None));
                w.write(|s| s.mig.push(94));
                assert_eq!(w.next(), xid(GPU0, 94, Some((8, 0))));
                w.write(|s| s.xids[0].push(48));
                assert_eq!(w.next(), xid(GPU0, 48, None));
            },
        );
        check_ok(ran, backend.as_ref());
    }
}

#[test]
fn gpus_without_event_support_are_reported_and_skipped() {
    let stage = Stage::new(&node(&State::default()));
    run_child(
        "child_unsupported",
        &stage,
        &[("FAKE_NVML_EVENTS_NOT_SUPPORTED", "0")],
    );
}

#[test]
#[ignore = "child process of gpus_without_event_support_are_reported_and_skipped"]
fn child_unsupported() {
    let paths = Paths::from_env();
    let nvml = Nvml::new(paths.options()).unwrap();
    let ran = watching(&nvml, &paths, State::default(), &[GPU0, GPU1], |w| {
        assert_eq!(w.watching(), (vec![], vec![GPU0.to_string()]));
        w.synchronise(1);
        // GPU 0 is listed first, so its events would come first if it were watched.
        w.write(|s| {
            s.xids[0].push(79);
            s.mig.push(94);
            s.xids[1].push(48);
        });
        assert_eq!(w.next(), xid(GPU1, 48, None));
    });
    check_ok(ran, &nvml);
}

#[test]
fn a_gpu_failing_registration_is_unwatched_and_the_others_are_watched() {
    let calls = [
        "nvmlDeviceGetHandleByUUID",
        "nvmlDeviceGetSupportedEventTypes",
        "nvmlDeviceRegisterEvents",
    ];
    for call in calls {
        let env = [("FAKE_NVML_LOST_GPU", "1"), ("FAKE_NVML_LOST_CALL", call)];
        run_child(
            "child_registration_fails",
            &Stage::new(&node(&State::default())),
            &env,
        );
    }
    // `lost: true` from the start, on both backends.
    let stage = Stage::new(&node(&State::default()));
    run_child("child_registration_fails", &stage, &[("LOST_IN_FILE", "1")]);
}

#[test]
#[ignore = "child process of a_gpu_failing_registration_is_unwatched_and_the_others_are_watched"]
fn child_registration_fails() {
    let paths = Paths::from_env();
    let in_file = std::env::var_os("LOST_IN_FILE").is_some();
    let initial = State {
        lost1: in_file,
        ..State::default()
    };
    for backend in backends(&paths, in_file) {
        let ran = watching(
            backend.as_ref(),
            &paths,
            initial.clone(),
            &[GPU0, GPU1, UNKNOWN],
            |w| {
                let (unwatched, unsupported) = w.watching();
                assert!(unsupported.is_empty());
                assert_eq!(unwatched[0], (GPU1.to_string(), FaultKind::Lost));
                assert_eq!(unwatched[1].0, UNKNOWN);
                assert!(
                    matches!(unwatched[1].1, FaultKind::Failed(_)),
                    "{unwatched:?}"
                );
                w.synchronise(0);
                w.write(|s| {
                    s.xids[1].push(79);
                    s.xids[0].push(48);
                });
                assert_eq!(w.next(), xid(GPU0, 48, None));
            },
        );
        check_ok(ran, backend.as_ref());
    }
}

#[test]
fn a_gpu_lost_while_watched_is_reported_and_the_others_stay_watched() {
    let stage = Stage::new(&node(&State::default()));
    run_child("child_lost_while_watched", &stage, &[]);
    // The wait itself fails naming the GPU, right after registration.
    let env = [
        ("FAKE_NVML_LOST_GPU", "1"),
        ("FAKE_NVML_LOST_CALL", "nvmlEventSetWait_v2"),
    ];
    run_child(
        "child_wait_names_lost_gpu",
        &Stage::new(&node(&State::default())),
        &env,
    );
}

#[test]
#[ignore = "child process of a_gpu_lost_while_watched_is_reported_and_the_others_stay_watched"]
fn child_lost_while_watched() {
    let paths = Paths::from_env();
    for backend in backends(&paths, true) {
        let ran = watching(
            backend.as_ref(),
            &paths,
            State::default(),
            &[GPU0, GPU1],
            |w| {
                assert_eq!(w.watching(), (vec![], vec![]));
                w.synchronise(0);
                w.write(|s| s.lost1 = true);
                assert_eq!(w.next(), lost(GPU1));
                w.write(|s| s.xids[0].push(79));
                assert_eq!(w.next(), xid(GPU0, 79, None));
                // Back on the bus, it stays unwatched until a new watch.
                w.write(|s| {
                    s.lost1 = false;
                    s.xids[1].push(48);
                });
                w.write(|s| s.xids[0].push(94));
                assert_eq!(w.next(), xid(GPU0, 94, None));
            },
        );
        check_ok(ran, backend.as_ref());
    }
}

#[test]
#[ignore = "child process of a_gpu_lost_while_watched_is_reported_and_the_others_stay_watched"]
fn child_wait_names_lost_gpu() {
    let paths = Paths::from_env();
    let nvml = Nvml::new(paths.options()).unwrap();
    let ran = watching(&nvml, &paths, State::default(), &[GPU0, GPU1], |w| {
        assert_eq!(w.watching(), (vec![], vec![]));
        assert_eq!(w.next(), lost(GPU1));
        w.synchronise(0);
        w.write(|s| s.xids[0].push(79));
        assert_eq!(w.next(), xid(GPU0, 79, None));
    });
    check_ok(ran, &nvml);
}
