//! The "Done means" scenario of per-pod usage metrics, shared by the usage
//! and Prometheus tests: the simulated DGX node with a `usage:` map on GPUs
//! 0 and 1 (GPU 2 has none: nothing supported), two time-slicing replicas
//! per GPU, and a fake PodResources server assigning GPU 0 to pod A and the
//! two replicas of GPU 1 to pods B and C.
#![allow(dead_code)]

use std::path::PathBuf;

use crate::nvml_support::with_keys;
use crate::support::podresources::{FakePodResources, Held};
use crate::support::repo_file;

pub const GPU0: &str = "GPU-bd73a270-54aa-3a74-1e01-362282297cd1";
pub const GPU1: &str = "GPU-84d0da3d-547f-c101-747c-3308b9ef6a48";
pub const GPU2: &str = "GPU-eca881aa-ab52-9816-346a-6510f5a5ca72";

pub const USAGE0: &str = "usage: {gpuUtil: 5, memoryUtil: 1, memoryUsedMiB: 1024, temperatureC: 35, powerW: 61.5, smClockMHz: 210}";
pub const USAGE1: &str = "usage: {gpuUtil: 80, memoryUtil: 60, memoryUsedMiB: 78000, temperatureC: 70, powerW: 350, smClockMHz: 1410}";

/// The DGX node file with `usage0` on GPU 0 and `USAGE1` on GPU 1.
pub fn node_text(usage0: &str) -> String {
    let text = std::fs::read_to_string(repo_file("config/nodes/dgx-a100.yaml")).unwrap();
    with_keys(&with_keys(&text, 0, &[usage0]), 1, &[USAGE1])
}

pub const CONFIG: &str = "version: v1
sharing:
  timeSlicing:
    resources:
      - name: nvidia.com/gpu
        replicas: 2
";

/// Node and config files in a temp directory.
pub struct Files {
    pub dir: tempfile::TempDir,
}

impl Files {
    pub fn new() -> Files {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("node.yaml"), node_text(USAGE0)).unwrap();
        std::fs::write(dir.path().join("config.yaml"), CONFIG).unwrap();
        Files { dir }
    }
    pub fn node(&self) -> PathBuf {
        self.dir.path().join("node.yaml")
    }
    pub fn config(&self) -> PathBuf {
        self.dir.path().join("config.yaml")
    }
}

/// A on GPU 0, B and C on the two replicas of GPU 1.
pub fn held() -> Vec<Held> {
    vec![
        (
            "A",
            "team-a",
            "main",
            "nvidia.com/gpu",
            vec![format!("{GPU0}::0")],
        ),
        (
            "B",
            "team-b",
            "worker",
            "nvidia.com/gpu",
            vec![format!("{GPU1}::0")],
        ),
        (
            "C",
            "team-c",
            "worker",
            "nvidia.com/gpu",
            vec![format!("{GPU1}::1")],
        ),
    ]
}

pub fn pod_resources() -> FakePodResources {
    FakePodResources::start(held())
}

/// The plugin's flags for the scenario (simulated backend added by the caller).
pub fn args(files: &Files, pods: &FakePodResources, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "--config-file",
        &files.config().display().to_string(),
        "--metrics-address",
        "127.0.0.1:0",
        "--usage-interval",
        "200ms",
        "--pod-resources-socket",
        &pods.socket().display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// The lines of `text` that start with `prefix` and contain every one of `parts`.
pub fn lines_with<'a>(text: &'a str, prefix: &str, parts: &[&str]) -> Vec<&'a str> {
    text.lines()
        .filter(|l| l.starts_with(prefix) && parts.iter().all(|p| l.contains(p)))
        .collect()
}
