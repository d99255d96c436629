//! Event-to-kubelet figures: how long a config edit and a health event take
//! to reach the kubelet's ListAndWatch, with the daemon in-process on its own
//! thread watching a real config file and a real node file.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;

use super::synthetic::{GPU, time_slicing_config};
use super::thread::Background;
use super::{BenchError, SETTLE, summarize};
use crate::kubelet::LocalKubelet;
use gpu_device_plugin::config::Overrides;
use gpu_device_plugin::daemon::{BackendChoice, DaemonConfig, HealthOptions, run};
use gpu_device_plugin::gpu::simulated::{BUILTIN_NODE, Simulated};

fn write_atomic(path: &Path, text: &str) -> Result<(), BenchError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(BenchError::io("writing a file"))?;
    std::fs::rename(&tmp, path).map_err(BenchError::io("renaming a file"))
}

/// The built-in node with `xids: [79]` on the first `hit` GPUs.
fn node_with_xids(hit: usize) -> String {
    let mut out = String::with_capacity(BUILTIN_NODE.len() + 64);
    let mut seen = 0;
    for line in BUILTIN_NODE.lines() {
        out.push_str(line);
        out.push('\n');
        if line.trim_start().starts_with("uuid: GPU-") {
            if seen < hit {
                out.push_str("    xids: [79]\n");
            }
            seen += 1;
        }
    }
    out
}

/// A daemon on its own node file and config file (`replicas` of each GPU),
/// against an in-process kubelet, all in one temporary directory.
struct Rig {
    node: PathBuf,
    config: PathBuf,
    kubelet: LocalKubelet,
    daemon: Background,
    _dir: TempDir,
}

impl Rig {
    fn start(replicas: u32) -> Result<Rig, BenchError> {
        let dir = tempfile::tempdir().map_err(BenchError::io("temp dir"))?;
        let sockets = dir.path().join("sockets");
        std::fs::create_dir(&sockets).map_err(BenchError::io("socket dir"))?;
        let node = dir.path().join("node.yaml");
        let config = dir.path().join("config.yaml");
        write_atomic(&node, BUILTIN_NODE)?;
        write_atomic(&config, &time_slicing_config(replicas))?;
        let kubelet = LocalKubelet::start(&sockets).map_err(BenchError::io("kubelet"))?;
        let daemon = spawn_daemon(&kubelet, &node, &config)?;
        Ok(Rig {
            node,
            config,
            kubelet,
            daemon,
            _dir: dir,
        })
    }

    async fn stop(self) {
        self.daemon.stop().await;
        self.kubelet.stop().await;
        // Let the daemon's detached threads see the stop before the temp dir goes.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Config edit → ListAndWatch, and health event → ListAndWatch.
pub async fn figures(emit: &mut dyn FnMut(Value)) -> Result<(), BenchError> {
    let rig = Rig::start(2)?;
    let (kubelet, config) = (&rig.kubelet, &rig.config);
    let devices = |n: usize| {
        move |v: &crate::kubelet::KubeletView| {
            v.resources.get(GPU).is_some_and(|r| r.devices.len() == n)
        }
    };
    let settle = |e: crate::kubelet::WaitTimeout| BenchError::Setup(e.to_string());
    kubelet
        .wait_for(SETTLE, devices(16))
        .await
        .map_err(settle)?;

    let mut edits = Vec::new();
    for replicas in 3..=12u32 {
        let started = Instant::now();
        write_atomic(config, &time_slicing_config(replicas))?;
        kubelet
            .wait_for(SETTLE, devices(8 * replicas as usize))
            .await
            .map_err(settle)?;
        edits.push(started.elapsed());
    }
    emit(summarize(&mut edits).json_ms(
        json!({"figure": "config_edit_to_update", "note": "includes the 20 ms debounce"}),
    ));

    emit(health_events(kubelet, &rig.node, 12).await?);
    rig.stop().await;
    large_health_events(emit).await
}

/// XID 79 on one more GPU at a time → ListAndWatch with every healthy count
/// right, on a daemon already listing `replicas` replicas of each GPU.
async fn health_events(
    kubelet: &LocalKubelet,
    node: &Path,
    replicas: usize,
) -> Result<Value, BenchError> {
    let settle = |e: crate::kubelet::WaitTimeout| BenchError::Setup(e.to_string());
    let mut events = Vec::new();
    let total = 8 * replicas;
    for hit in 1..=8usize {
        let started = Instant::now();
        write_atomic(node, &node_with_xids(hit))?;
        let healthy = total - replicas * hit;
        kubelet
            .wait_for(SETTLE, |v| {
                v.resources.get(GPU).is_some_and(|r| r.healthy() == healthy)
            })
            .await
            .map_err(settle)?;
        events.push(started.elapsed());
    }
    let note = format!("XID 79 appended to the node file; {replicas} replicas per GPU");
    let figure = if replicas == 12 {
        "health_event_to_update"
    } else {
        "health_event_to_update_800"
    };
    Ok(summarize(&mut events).json_ms(json!({"figure": figure, "note": note})))
}

/// Health event → ListAndWatch with 800 devices (100 replicas of each GPU),
/// on a daemon of its own so that every GPU starts healthy.
async fn large_health_events(emit: &mut dyn FnMut(Value)) -> Result<(), BenchError> {
    let rig = Rig::start(100)?;
    rig.kubelet
        .wait_for(SETTLE, |v| {
            v.resources.get(GPU).is_some_and(|r| r.devices.len() == 800)
        })
        .await
        .map_err(|e| BenchError::Setup(e.to_string()))?;
    // The health watch starts beside the first list: let it see the file first.
    tokio::time::sleep(Duration::from_millis(500)).await;
    emit(health_events(&rig.kubelet, &rig.node, 100).await?);
    rig.stop().await;
    Ok(())
}

/// The daemon on the node file and config file, no recovery, on its own thread.
fn spawn_daemon(
    kubelet: &LocalKubelet,
    node: &Path,
    config: &Path,
) -> Result<Background, BenchError> {
    let cfg = DaemonConfig {
        overrides: Overrides::default(),
        config_file: Some(config.to_path_buf()),
        kubelet_socket: kubelet.socket().to_path_buf(),
        backend: BackendChoice::Simulated(Simulated::from_file(node)),
        health: HealthOptions {
            recovery: None,
            ..HealthOptions::default()
        },
        metrics_address: None,
        usage: Default::default(),
    };
    Background::spawn("daemon", move |stop| async move {
        if let Err(e) = run(cfg, stop).await {
            tracing::error!(error = %e, "bench daemon failed");
        }
    })
    .map_err(BenchError::io("daemon thread"))
}
