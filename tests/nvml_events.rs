//! Health events of the NVML backend against the fake driver: XIDs appended to
//! the node file arrive through `watch_health`, and event failures end it with
//! an error. Each scenario runs in its own child process (`child_*`).

mod nvml_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use gpu_device_plugin::gpu::nvml::Nvml;
use gpu_device_plugin::gpu::{Backend, EventKind, GpuError, HealthEvent};
use nvml_support::{Paths, Stage, run_child};

const GPU0: &str = "GPU-cb8a200a-7754-d47e-4b5b-61a5d71350cb";
const GPU1: &str = "GPU-b6aa6f0a-923a-c4d0-5ca2-ac716e32a236";
const MIG: &str = "MIG-7168c498-e655-264f-57aa-cf8fe9d8e738";
/// Generous bound for one event to travel file → fake driver → backend.
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// Two A100s; GPU 0 has two MIG devices, the second being `MIG` (GI 8, CI 0).
fn node(xids0: &[u64], xids1: &[u64], mig_xids: &[u64]) -> String {
    format!(
        r#"gpus:
  - index: 0
    uuid: {GPU0}
    name: NVIDIA A100-SXM4-40GB
    memoryMiB: 40960
    pciBusId: "0000:07:00.0"
    migEnabled: true
    migDevices:
      - {{uuid: MIG-e828be1d-a3f1-89a5-d52b-c7324a1af6be, profile: 1g.5gb, gpuInstanceId: 7, computeInstanceId: 0, memoryMiB: 4864}}
      - {{uuid: {MIG}, profile: 1g.5gb, gpuInstanceId: 8, computeInstanceId: 0, memoryMiB: 4864}}
    xids: {xids0:?}
    migXids:
      {MIG}: {mig_xids:?}
  - index: 1
    uuid: {GPU1}
    name: NVIDIA A100-SXM4-40GB
    memoryMiB: 40960
    pciBusId: "0000:0f:00.0"
    xids: {xids1:?}
"#
    )
}

fn xid(gpu: &str, xid: u64, instance: Option<(u32, u32)>) -> HealthEvent {
    HealthEvent {
        gpu_uuid: gpu.to_string(),
        kind: EventKind::Xid(xid),
        gpu_instance_id: instance.map(|i| i.0),
        compute_instance_id: instance.map(|i| i.1),
    }
}

/// Sets the stop flag when dropped, so a failed assertion in `drive` also
/// ends the watcher instead of leaving the scope waiting for it.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Runs `watch_health` on both GPUs in a thread while `drive` edits the node
/// file and reads the events; returns what `watch_health` returned.
fn watching(drive: impl FnOnce(&Paths, &mpsc::Receiver<HealthEvent>)) -> Result<(), GpuError> {
    let paths = Paths::from_env();
    let nvml = Nvml::new(paths.options()).unwrap();
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|s| {
        let watcher = s.spawn(|| {
            let gpus = [GPU0.to_string(), GPU1.to_string()];
            let mut sink = |r| {
                if let gpu_device_plugin::gpu::WatchReport::Event(e) = r {
                    tx.send(e).unwrap();
                }
            };
            nvml.watch_health(&gpus, &mut sink, &|| stop.load(Ordering::SeqCst))
        });
        {
            let _stop = StopOnDrop(&stop);
            drive(&paths, &rx);
        }
        watcher.join().unwrap()
    })
}

/// Appends XID 31 to GPU 1 until the watcher reports one, which proves its
/// registration is done; returns GPU 1's XID list. Later events may still
/// include XID 31 on GPU 1 from the appends made meanwhile.
fn synchronise(paths: &Paths, rx: &mpsc::Receiver<HealthEvent>) -> Vec<u64> {
    let mut raised = Vec::new();
    loop {
        raised.push(31);
        paths.write_node(&node(&[], &raised, &[]));
        if let Ok(event) = rx.recv_timeout(Duration::from_millis(100)) {
            assert_eq!(event, xid(GPU1, 31, None));
            return raised;
        }
        assert!(raised.len() < 100, "the watcher never reported an event");
    }
}

/// The next event that is not a leftover of `synchronise`.
fn next_event(rx: &mpsc::Receiver<HealthEvent>) -> HealthEvent {
    loop {
        let event = rx.recv_timeout(EVENT_TIMEOUT).expect("an event");
        if event != xid(GPU1, 31, None) {
            return event;
        }
    }
}

#[test]
fn xids_arrive_through_watch_health() {
    run_child("child_xids_arrive", &Stage::new(&node(&[], &[], &[])), &[]);
}

#[test]
#[ignore = "child process of xids_arrive_through_watch_health"]
fn child_xids_arrive() {
    let result = watching(|paths, rx| {
        let xids1 = synchronise(paths, rx);
        paths.write_node(&node(&[79], &xids1, &[]));
        assert_eq!(next_event(rx), xid(GPU0, 79, None));
        paths.write_node(&node(&[79], &xids1, &[94]));
        assert_eq!(next_event(rx), xid(GPU0, 94, Some((8, 0))));
        paths.write_node(&node(&[79, 48], &xids1, &[94]));
        assert_eq!(next_event(rx), xid(GPU0, 48, None));
    });
    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn gpus_without_event_support_are_skipped() {
    let stage = Stage::new(&node(&[], &[], &[]));
    run_child(
        "child_unsupported_skipped",
        &stage,
        &[("FAKE_NVML_EVENTS_NOT_SUPPORTED", "0")],
    );
}

#[test]
#[ignore = "child process of gpus_without_event_support_are_skipped"]
fn child_unsupported_skipped() {
    let result = watching(|paths, rx| {
        let mut xids1 = synchronise(paths, rx);
        xids1.push(48);
        // GPU 0 is listed first, so its events would come first if it were watched.
        paths.write_node(&node(&[79], &xids1, &[94]));
        assert_eq!(next_event(rx), xid(GPU1, 48, None));
    });
    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn an_event_wait_failure_ends_watch_health_with_an_error() {
    let stage = Stage::new(&node(&[], &[], &[]));
    run_child(
        "child_wait_fails",
        &stage,
        &[("FAKE_NVML_EVENT_WAIT_ERROR", "999")],
    );
}

#[test]
#[ignore = "child process of an_event_wait_failure_ends_watch_health_with_an_error"]
fn child_wait_fails() {
    let paths = Paths::from_env();
    let nvml = Nvml::new(paths.options()).unwrap();
    let gpus = [GPU0.to_string()];
    let result = nvml.watch_health(&gpus, &mut |_| {}, &|| false);
    match result {
        Err(GpuError::Events(message)) => {
            assert!(message.contains("internal driver error"), "{message}")
        }
        other => panic!("expected an event-source error, got {other:?}"),
    }
}

#[test]
fn an_unknown_gpu_uuid_ends_watch_health_with_an_error() {
    run_child("child_unknown_gpu", &Stage::new(&node(&[], &[], &[])), &[]);
}

#[test]
#[ignore = "child process of an_unknown_gpu_uuid_ends_watch_health_with_an_error"]
fn child_unknown_gpu() {
    let nvml = Nvml::new(Paths::from_env().options()).unwrap();
    let gpus = ["GPU-00000000-0000-0000-0000-000000000000".to_string()];
    let result = nvml.watch_health(&gpus, &mut |_| {}, &|| false);
    assert!(matches!(result, Err(GpuError::Events(_))), "{result:?}");
}
