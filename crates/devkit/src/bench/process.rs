//! Figures of the real binary as a child process against an in-process
//! kubelet: process start → registered, and idle RSS / CPU after some load.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::stats::{cpu_ticks, status_kib, summarize};
use super::synthetic::GPU;
use super::{BenchError, SETTLE, rpc};
use crate::kubelet::LocalKubelet;

/// The plugin binary running against a kubelet in its own temp directory.
pub struct Spawned {
    pub child: Child,
    pub kubelet: LocalKubelet,
    pub started: Instant,
    _dir: tempfile::TempDir,
}

impl Spawned {
    /// Starts a kubelet, then `exe --simulate node extra…` against it.
    pub fn start(exe: &Path, node: &Path, extra: &[&str]) -> Result<Self, BenchError> {
        let dir = tempfile::tempdir().map_err(BenchError::io("temp dir"))?;
        let kubelet = LocalKubelet::start(dir.path()).map_err(BenchError::io("kubelet"))?;
        let started = Instant::now();
        let child = Command::new(exe)
            .arg("--simulate")
            .arg(node)
            .arg("--kubelet-socket")
            .arg(kubelet.socket())
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(BenchError::io("spawning the plugin binary"))?;
        Ok(Spawned {
            child,
            kubelet,
            started,
            _dir: dir,
        })
    }

    /// Waits until the kubelet holds the first device list of `nvidia.com/gpu`.
    pub async fn registered(&self) -> Result<Duration, BenchError> {
        self.kubelet
            .wait_for(SETTLE, |v| {
                v.resources.get(GPU).is_some_and(|r| r.updates > 0)
            })
            .await
            .map_err(|e| BenchError::Setup(e.to_string()))?;
        Ok(self.started.elapsed())
    }

    /// On-CPU time (ns, every thread) and context switches of the child,
    /// from each thread's `schedstat` and `status`: exact where `stat`'s
    /// clock ticks are 10 ms.
    fn cpu_and_switches(&self) -> Option<(u64, u64)> {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", self.child.id())).ok()?;
        let (mut ns, mut switches) = (0u64, 0u64);
        for task in tasks.flatten() {
            let dir = task.path();
            let sched = std::fs::read_to_string(dir.join("schedstat")).ok()?;
            ns += sched.split_whitespace().next()?.parse::<u64>().ok()?;
            let status = std::fs::read_to_string(dir.join("status")).ok()?;
            switches += status_kib(&status, "voluntary_ctxt_switches").unwrap_or(0);
            switches += status_kib(&status, "nonvoluntary_ctxt_switches").unwrap_or(0);
        }
        Some((ns, switches))
    }

    fn proc_file(&self, name: &str) -> Result<String, BenchError> {
        let path = PathBuf::from(format!("/proc/{}/{name}", self.child.id()));
        std::fs::read_to_string(&path).map_err(BenchError::io("reading /proc"))
    }

    /// Kills the child (we started it) and stops the kubelet.
    pub async fn stop(self) {
        let mut child = self.child;
        let _ = child.kill();
        let _ = tokio::task::spawn_blocking(move || child.wait()).await;
        self.kubelet.stop().await;
    }
}

/// Process start until the kubelet has the first list, over `runs` starts.
pub async fn start_to_registered(
    exe: &Path,
    node: &Path,
    runs: usize,
) -> Result<Value, BenchError> {
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let spawned = Spawned::start(exe, node, &[])?;
        let took = spawned.registered().await;
        spawned.stop().await;
        samples.push(took?);
    }
    Ok(summarize(&mut samples).json_ms(json!({"figure": "process_start_to_registered"})))
}

/// Clock ticks per second of `/proc/<pid>/stat` times (USER_HZ).
fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// The daemon's flags for the idle figure with usage sampling on: a metrics
/// server (sampling runs only with one) and NVIDIA-default 15 s sampling.
/// The PodResources socket is absent, as on a node without the mount.
pub const USAGE_SAMPLING: &[&str] = &[
    "--metrics-address",
    "127.0.0.1:0",
    "--usage-interval",
    "15s",
];

/// Registers, drives some load (Allocate, GetPreferredAllocation), then
/// measures CPU and RSS while idle for `idle`; reports peak RSS too.
/// `figure` names the line, `extra` are more daemon flags.
pub async fn idle(
    exe: &Path,
    node: &Path,
    idle: Duration,
    figure: &str,
    extra: &[&str],
) -> Result<Value, BenchError> {
    let spawned = Spawned::start(exe, node, extra)?;
    let result = idle_inner(&spawned, idle, figure).await;
    spawned.stop().await;
    result
}

async fn idle_inner(spawned: &Spawned, idle: Duration, figure: &str) -> Result<Value, BenchError> {
    spawned.registered().await?;
    let rss_registered = status_kib(&spawned.proc_file("status")?, "VmRSS");
    let client = spawned
        .kubelet
        .client(GPU)
        .await
        .map_err(|e| BenchError::Setup(e.to_string()))?;
    let ids = super::device_ids(&spawned.kubelet)?;
    let load = rpc::allocate(&client, &ids, 16).await;
    let _ = rpc::preferred(&client, &ids, 4).await;
    let ticks_before = cpu_ticks(&spawned.proc_file("stat")?);
    let precise_before = spawned.cpu_and_switches();
    tokio::time::sleep(idle).await;
    let precise_after = spawned.cpu_and_switches();
    let ticks_after = cpu_ticks(&spawned.proc_file("stat")?);
    let (cpu_us, switches) = match (precise_before, precise_after) {
        (Some((nb, sb)), Some((na, sa))) => (
            Some(na.saturating_sub(nb) / 1000),
            Some(sa.saturating_sub(sb)),
        ),
        _ => (None, None),
    };
    let status = spawned.proc_file("status")?;
    let cpu_ms = match (ticks_before, ticks_after) {
        (Some(b), Some(a)) => Some(a.saturating_sub(b) * 1000 / clock_ticks()),
        _ => None,
    };
    Ok(json!({
        "figure": figure,
        "idle_s": idle.as_secs(),
        "cpu_ms": cpu_ms,
        "cpu_us_schedstat": cpu_us,
        "context_switches": switches,
        "cpu_percent": cpu_ms.map(|ms| (ms as f64 / idle.as_secs_f64().max(1e-9) / 10.0 * 1000.0).round() / 1000.0),
        "rss_after_registration_kib": rss_registered,
        "rss_idle_kib": status_kib(&status, "VmRSS"),
        "peak_rss_kib": status_kib(&status, "VmHWM"),
        "load_before_idle_calls": load.get("n"),
    }))
}
