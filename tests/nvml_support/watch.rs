//! Health watches on both backends from one node file: the file's state,
//! a watch run in a named thread while a test edits the file, and waits
//! for the reports it gives.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use gpu_device_plugin::gpu::nvml::Nvml;
use gpu_device_plugin::gpu::simulated::Simulated;
use gpu_device_plugin::gpu::{
    Backend, EventKind, FaultKind, GpuError, HealthEvent, StopSignal, WatchReport,
};

use super::Paths;

pub const GPU0: &str = "GPU-cb8a200a-7754-d47e-4b5b-61a5d71350cb";
pub const GPU1: &str = "GPU-b6aa6f0a-923a-c4d0-5ca2-ac716e32a236";
pub const MIG: &str = "MIG-7168c498-e655-264f-57aa-cf8fe9d8e738";
pub const UNKNOWN: &str = "GPU-00000000-0000-0000-0000-000000000000";
/// Generous bound for one report to travel file → driver → backend → test.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The node file's XID lists and GPU 1's `lost` key.
#[derive(Debug, Clone, Default)]
pub struct State {
    pub xids: [Vec<u64>; 2],
    pub mig: Vec<u64>,
    pub lost1: bool,
}

/// Two A100s; GPU 0 has two MIG devices, the second being `MIG` (GI 8, CI 0).
pub fn node(s: &State) -> String {
    let ([x0, x1], mig, lost) = (&s.xids, &s.mig, s.lost1);
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
    xids: {x0:?}
    migXids:
      {MIG}: {mig:?}
  - index: 1
    uuid: {GPU1}
    name: NVIDIA A100-SXM4-40GB
    memoryMiB: 40960
    pciBusId: "0000:0f:00.0"
    xids: {x1:?}
    lost: {lost}
"#
    )
}

pub fn xid(gpu: &str, xid: u64, instance: Option<(u32, u32)>) -> WatchReport {
    WatchReport::Event(HealthEvent {
        gpu_uuid: gpu.to_string(),
        kind: EventKind::Xid(xid),
        gpu_instance_id: instance.map(|i| i.0),
        compute_instance_id: instance.map(|i| i.1),
    })
}

pub fn lost(gpu: &str) -> WatchReport {
    WatchReport::Fault {
        uuid: gpu.to_string(),
        kind: FaultKind::Lost,
    }
}

/// The backends a scenario runs on: NVML, and the simulated backend when
/// the node file alone describes it.
pub fn backends(paths: &Paths, both: bool) -> Vec<Box<dyn Backend>> {
    let mut list: Vec<Box<dyn Backend>> = vec![Box::new(Nvml::new(paths.options()).unwrap())];
    if both {
        list.push(Box::new(Simulated::from_file(paths.node())));
    }
    list
}

/// One watch in progress: the file's state and the reports.
pub struct Watch<'a> {
    paths: &'a Paths,
    state: State,
    pub rx: &'a mpsc::Receiver<WatchReport>,
    /// The GPU whose XID 31s proved registration; later ones are leftovers.
    synced: Option<&'static str>,
}

impl Watch<'_> {
    pub fn write(&mut self, edit: impl FnOnce(&mut State)) {
        edit(&mut self.state);
        self.paths.write_node(&node(&self.state));
    }

    /// The first report, which says what is watched.
    pub fn watching(&self) -> (Vec<(String, FaultKind)>, Vec<String>) {
        match self.rx.recv_timeout(TIMEOUT) {
            Ok(WatchReport::Watching {
                unwatched,
                unsupported,
            }) => (unwatched, unsupported),
            other => panic!("expected Watching first, got {other:?}"),
        }
    }

    /// Appends XID 31 to GPU `index` until its event arrives, proving its
    /// registration is done.
    pub fn synchronise(&mut self, index: usize) {
        let gpu = [GPU0, GPU1][index];
        for _ in 0..100 {
            self.write(|s| s.xids[index].push(31));
            if let Ok(report) = self.rx.recv_timeout(Duration::from_millis(100)) {
                assert_eq!(report, xid(gpu, 31, None));
                self.synced = Some(gpu);
                return;
            }
        }
        panic!("the watcher never reported an event");
    }

    /// The next report that is not a leftover of `synchronise`.
    pub fn next(&self) -> WatchReport {
        loop {
            let report = self.rx.recv_timeout(TIMEOUT).expect("a report");
            if self.synced.is_none_or(|g| report != xid(g, 31, None)) {
                return report;
            }
        }
    }
}

/// Runs `watch_health_until` of `backend` on `gpus` in a thread named
/// `watch-caller` while `drive` edits the node file and reads the reports;
/// then stops it, and returns what it returned and how long that took.
pub fn watching(
    backend: &dyn Backend,
    paths: &Paths,
    initial: State,
    gpus: &[&str],
    drive: impl FnOnce(&mut Watch),
) -> (Result<(), GpuError>, Duration) {
    paths.write_node(&node(&initial));
    let stop = StopSignal::new();
    let (tx, rx) = mpsc::channel();
    let gpus: Vec<String> = gpus.iter().map(|g| g.to_string()).collect();
    std::thread::scope(|s| {
        let watcher = std::thread::Builder::new()
            .name("watch-caller".into())
            .spawn_scoped(s, || {
                let result = backend.watch_health_until(&gpus, &mut |r| tx.send(r).unwrap(), &stop);
                (result, Instant::now())
            })
            .unwrap();
        let mut watch = Watch {
            paths,
            state: initial,
            rx: &rx,
            synced: None,
        };
        // A failed assertion must still stop the watcher, or the scope waits forever.
        struct StopOnDrop<'a>(&'a StopSignal);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.stop();
            }
        }
        let guard = StopOnDrop(&stop);
        drive(&mut watch);
        let stopped = Instant::now();
        drop(guard);
        let (result, ended) = watcher.join().unwrap();
        (result, ended.saturating_duration_since(stopped))
    })
}

pub fn check_ok((result, _): (Result<(), GpuError>, Duration), backend: &dyn Backend) {
    assert!(result.is_ok(), "{}: {result:?}", backend.name());
}
