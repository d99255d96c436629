//! Tests of `gpu::simulated`: the bounded node-file read, edits seen by the next
//! inventory and probe, and the watch (unwatched GPUs, events, a GPU becoming lost, prompt stop).
use std::sync::mpsc;

use super::*;
use crate::gpu::{EventKind, HealthEvent, RecoveryAction};

const A: &str = "GPU-aaaaaaaa-0000-0000-0000-000000000000";
const B: &str = "GPU-bbbbbbbb-0000-0000-0000-000000000000";
/// Generous bound for one file edit to reach the watcher.
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

fn node(a: &str, b: &str) -> String {
    format!(
        "gpus:\n  - {{index: 0, uuid: {A}, name: G, memoryMiB: 1024, pciBusId: \"0000:01:00.0\"{a}}}\n  \
         - {{index: 1, uuid: {B}, name: G, memoryMiB: 1024, pciBusId: \"0000:02:00.0\"{b}}}\n"
    )
}

fn write(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn xid(gpu: &str, xid: u64) -> WatchReport {
    WatchReport::Event(HealthEvent {
        gpu_uuid: gpu.to_string(),
        kind: EventKind::Xid(xid),
        gpu_instance_id: None,
        compute_instance_id: None,
    })
}

#[test]
fn a_node_file_over_the_bound_is_refused_unread() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.yaml");
    let mut text = node("", "");
    text.push_str(&"#".repeat(MAX_NODE_FILE_BYTES as usize));
    std::fs::write(&path, text).unwrap();
    let err = Simulated::from_file(&path).inventory().unwrap_err();
    assert!(matches!(err, GpuError::NodeFileInvalid { .. }), "{err}");
    assert!(
        err.to_string().contains("larger than 1048576 bytes"),
        "{err}"
    );
    // At the bound exactly, the file is read.
    let mut text = node("", "");
    text.push_str(&" ".repeat(MAX_NODE_FILE_BYTES as usize - text.len()));
    std::fs::write(&path, text).unwrap();
    assert_eq!(
        Simulated::from_file(&path).inventory().unwrap().gpus.len(),
        2
    );
}

#[test]
fn edits_change_the_next_inventory_and_probe() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.yaml");
    let sim = Simulated::from_file(&path);
    write(&path, &node("", ""));
    assert!(sim.inventory().unwrap().faults.is_empty());
    assert_eq!(
        sim.probe(B).unwrap().recovery_action,
        Some(RecoveryAction::None)
    );
    write(&path, &node("", ", recoveryAction: gpuReset"));
    assert_eq!(sim.inventory().unwrap().faults.len(), 1);
    assert_eq!(
        sim.probe(B).unwrap().recovery_action,
        Some(RecoveryAction::GpuReset)
    );
    write(&path, &node("", ", lost: true"));
    assert_eq!(sim.probe(B), Err(FaultKind::Lost));
    assert_eq!(sim.inventory().unwrap().gpus.len(), 1);
    write(&path, "gpus: [this is not a node");
    assert!(matches!(sim.probe(A), Err(FaultKind::Failed(_))));
}

/// Runs `watch_health_until` on A, B (lost) and an unknown GPU while `drive`
/// edits the file; checks the watch ends well and returns how long it took
/// to return once stopped.
fn watching(drive: impl FnOnce(&Path, &mpsc::Receiver<WatchReport>)) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.yaml");
    write(&path, &node("", ", lost: true"));
    let sim = Simulated::from_file(&path);
    let stop = StopSignal::new();
    let (tx, rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::scope(|s| {
        s.spawn(|| {
            let gpus = [A.to_string(), B.to_string(), "GPU-gone".to_string()];
            let result = sim.watch_health_until(&gpus, &mut |r| tx.send(r).unwrap(), &stop);
            done_tx.send(result).unwrap();
        });
        drive(&path, &rx);
        let stopped = std::time::Instant::now();
        stop.stop();
        let result = done_rx.recv_timeout(EVENT_TIMEOUT).expect("the watch ends");
        assert!(result.is_ok(), "{result:?}");
        stopped.elapsed()
    })
}

#[test]
fn the_watch_reports_unwatched_gpus_events_and_a_gpu_becoming_lost() {
    let took = watching(|path, rx| {
        let Ok(WatchReport::Watching {
            unwatched,
            unsupported,
        }) = rx.recv_timeout(EVENT_TIMEOUT)
        else {
            panic!("the first report says what is watched");
        };
        assert!(unsupported.is_empty());
        assert_eq!(unwatched[0], (B.to_string(), FaultKind::Lost));
        assert_eq!(unwatched[1].0, "GPU-gone");
        assert!(matches!(unwatched[1].1, FaultKind::Failed(_)));
        write(path, &node(", xids: [79]", ", lost: true"));
        assert_eq!(rx.recv_timeout(EVENT_TIMEOUT).unwrap(), xid(A, 79));
        // B answers again, but stays unwatched until a new watch: no events from it.
        write(path, &node(", xids: [79]", ", xids: [48]"));
        write(path, &node(", xids: [79, 48]", ", xids: [48]"));
        assert_eq!(rx.recv_timeout(EVENT_TIMEOUT).unwrap(), xid(A, 48));
        write(path, &node(", xids: [79, 48], lost: true", ", xids: [48]"));
        let lost = WatchReport::Fault {
            uuid: A.to_string(),
            kind: FaultKind::Lost,
        };
        assert_eq!(rx.recv_timeout(EVENT_TIMEOUT).unwrap(), lost);
    });
    // Stopped at once, not at a wake: the watch had none scheduled.
    assert!(took < WATCH_WAKE / 2, "took {took:?}");
}

#[test]
fn usage_many_answers_each_device_as_usage_does_from_one_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.yaml");
    write(&path, &node(", usage: {gpuUtil: 7}", ""));
    let sim = Simulated::from_file(&path);
    let uuids = [A.to_string(), "GPU-nope".to_string(), B.to_string()];
    let one_by_one: Vec<_> = uuids.iter().map(|u| sim.usage(u)).collect();
    let together = sim.usage_many(&uuids);
    assert_eq!(together, one_by_one);
    assert_eq!(together[0].as_ref().unwrap().gpu_util_percent, Some(7));
    assert!(together[1].is_err());
    // An unreadable node file fails every device, and says why.
    std::fs::remove_file(&path).unwrap();
    let gone = sim.usage_many(&uuids);
    assert_eq!(gone.len(), 3);
    assert!(
        gone.iter().all(|r| matches!(r, Err(FaultKind::Failed(_)))),
        "{gone:?}"
    );
}
