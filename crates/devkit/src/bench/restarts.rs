//! Kubelet restarts: the plugin binary on the H100 MIG node (mixed strategy,
//! six resources) against the in-process kubelet, which is stopped and started
//! again 200 times. Per start: time until every resource has registered and
//! until every resource has its device list, Register calls beyond one per
//! resource (duplicates), and resources that did not come back (lost).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::stats::{Summary, summarize};
use super::{BenchError, SETTLE};
use crate::kubelet::{KubeletView, LocalKubelet, SeenResource};

/// Kubelet restarts measured.
pub const RESTARTS: usize = 200;
/// The node, written to a temp file for the binary.
const NODE: &str = include_str!("../../../../config/nodes/h100-mig.yaml");
/// What the node advertises with `--mig-strategy mixed`.
pub const RESOURCES: [&str; 6] = [
    "nvidia.com/gpu",
    "nvidia.com/mig-1g.10gb",
    "nvidia.com/mig-1g.10gb.me",
    "nvidia.com/mig-2g.20gb",
    "nvidia.com/mig-3g.40gb",
    "nvidia.com/mig-7g.80gb",
];
/// Kubelet down time between stop and the next start.
const GAP: Duration = Duration::from_millis(20);
/// After the full list, how long a late Register still counts for that start
/// (on the old runtime 400 ms counted no more duplicates than 100 ms).
const HOLD: Duration = Duration::from_millis(100);
/// How long each wait of one start may take before what is missing is lost.
const LIMIT: Duration = Duration::from_secs(5);
/// The goal from issue 10, printed with the figures.
const TARGET_P99: Duration = Duration::from_millis(50);

/// What one kubelet start saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Restart {
    /// Start → every resource registered (`None`: some never did).
    pub registered: Option<Duration>,
    /// Start → every resource has a device list (`None`: some never did).
    pub listed: Option<Duration>,
    /// Register calls beyond one per resource.
    pub duplicates: u64,
    /// Wanted resources that never registered.
    pub lost: usize,
}

/// Duplicate Register calls and lost resources in one kubelet's view.
pub fn account(view: &KubeletView, want: &[&str]) -> (u64, usize) {
    let duplicates = view
        .resources
        .values()
        .map(|r| r.registrations.saturating_sub(1))
        .sum();
    let lost = want
        .iter()
        .filter(|w| view.resources.get(**w).is_none_or(|r| r.registrations == 0))
        .count();
    (duplicates, lost)
}

fn every(v: &KubeletView, want: &[&str], pred: fn(&SeenResource) -> bool) -> bool {
    want.iter().all(|w| v.resources.get(*w).is_some_and(pred))
}

/// Waits out one kubelet start that began at `started`.
async fn one_start(kubelet: &LocalKubelet, started: Instant) -> Restart {
    let registered = kubelet
        .wait_for(LIMIT, |v| every(v, &RESOURCES, |r| r.registrations > 0))
        .await
        .ok()
        .map(|_| started.elapsed());
    let listed = kubelet
        .wait_for(LIMIT, |v| every(v, &RESOURCES, |r| r.updates > 0))
        .await
        .ok()
        .map(|_| started.elapsed());
    tokio::time::sleep(HOLD).await; // a window for late duplicates, not a wait for state
    let (duplicates, lost) = account(&kubelet.view(), &RESOURCES);
    Restart {
        registered,
        listed,
        duplicates,
        lost,
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e4).round() / 10.0
}

fn latency(figure: &str, samples: &mut [Duration], restarts: usize) -> Value {
    let s: Summary = summarize(samples);
    json!({
        "figure": figure,
        "restarts": restarts,
        "resources": RESOURCES.len(),
        "n": s.n,
        "p50_ms": ms(s.p50),
        "p99_ms": ms(s.p99),
        "max_ms": ms(s.max),
        "target_p99_ms": ms(TARGET_P99),
    })
}

/// The figure lines for a series of restarts.
pub fn report(restarts: &[Restart]) -> Vec<Value> {
    let mut registered: Vec<Duration> = restarts.iter().filter_map(|r| r.registered).collect();
    let mut listed: Vec<Duration> = restarts.iter().filter_map(|r| r.listed).collect();
    let duplicates: u64 = restarts.iter().map(|r| r.duplicates).sum();
    let lost: usize = restarts.iter().map(|r| r.lost).sum();
    let n = restarts.len();
    let counts = json!({
        "figure": "kubelet_restart_registrations",
        "restarts": n,
        "resources": RESOURCES.len(),
        "duplicate_registers": duplicates,
        "restarts_with_duplicates": restarts.iter().filter(|r| r.duplicates > 0).count(),
        "lost_registrations": lost,
        "restarts_with_lost": restarts.iter().filter(|r| r.lost > 0).count(),
        "restarts_not_listed": restarts.iter().filter(|r| r.listed.is_none()).count(),
        "target": "0 duplicates, 0 lost",
    });
    vec![
        latency("kubelet_restart_all_registered", &mut registered, n),
        latency("kubelet_restart_all_listed", &mut listed, n),
        counts,
    ]
}

fn spawn(exe: &Path, node: &Path, socket: &Path, log: &Path) -> Result<Child, BenchError> {
    let log = std::fs::File::create(log).map_err(BenchError::io("plugin log"))?;
    Command::new(exe)
        .arg("--simulate")
        .arg(node)
        .args(["--mig-strategy", "mixed", "--kubelet-socket"])
        .arg(socket)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(BenchError::io("spawning the plugin binary"))
}

/// The first start, then `RESTARTS` restarts of the kubelet in `dir`.
async fn series(
    kubelet: &mut Option<LocalKubelet>,
    dir: &Path,
) -> Result<Vec<Restart>, BenchError> {
    let first = kubelet
        .as_ref()
        .ok_or_else(|| BenchError::Setup("no kubelet".into()))?;
    let first = first
        .wait_for(SETTLE, |v| every(v, &RESOURCES, |r| r.updates > 0))
        .await;
    first.map_err(|e| BenchError::Setup(format!("first registration: {e}")))?;
    let mut out = Vec::with_capacity(RESTARTS);
    for _ in 0..RESTARTS {
        if let Some(old) = kubelet.take() {
            old.stop().await;
        }
        tokio::time::sleep(GAP).await; // the kubelet's down time, not a wait for state
        let started = Instant::now();
        let new = kubelet.insert(LocalKubelet::start(dir).map_err(BenchError::io("kubelet"))?);
        out.push(one_start(new, started).await);
    }
    Ok(out)
}

/// Runs the series against `exe` and emits its figures.
pub async fn figures(exe: &Path, emit: &mut dyn FnMut(Value)) -> Result<(), BenchError> {
    let dir = tempfile::tempdir().map_err(BenchError::io("temp dir"))?;
    let sockets = dir.path().join("device-plugins");
    std::fs::create_dir(&sockets).map_err(BenchError::io("socket dir"))?;
    let node = dir.path().join("h100-mig.yaml");
    std::fs::write(&node, NODE).map_err(BenchError::io("writing the node file"))?;
    let log = dir.path().join("plugin.log");
    let first = LocalKubelet::start(&sockets).map_err(BenchError::io("kubelet"))?;
    let mut child = spawn(exe, &node, first.socket(), &log)?;
    let mut kubelet = Some(first);
    let result = series(&mut kubelet, &sockets).await;
    let _ = child.kill();
    let _ = tokio::task::spawn_blocking(move || child.wait()).await;
    if let Some(k) = kubelet {
        k.stop().await;
    }
    let restarts = result.map_err(|e| {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(5).collect();
        BenchError::Setup(format!("{e}; plugin log ends: {tail:?}"))
    })?;
    report(&restarts).into_iter().for_each(emit);
    Ok(())
}

#[cfg(test)]
#[path = "restarts_tests.rs"]
mod tests;
