//! `gpu-device-plugin bench`: performance figures on a simulated node, one
//! JSON line per figure. The daemon runs in-process on its own thread (like
//! its own process) against an in-process kubelet; process-level figures
//! spawn the real binary. Nothing here runs inside the daemon.

mod events;
mod process;
mod restarts;
mod rpc;
mod stats;
mod synthetic;
mod thread;

pub use stats::{Summary, cpu_ticks, status_kib, summarize};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::watch;

use crate::kubelet::LocalKubelet;
use gpu_device_plugin::config::Overrides;
use gpu_device_plugin::daemon::{BackendChoice, DaemonConfig, run, stopped};
use gpu_device_plugin::gpu::simulated::{BUILTIN_NODE, Simulated};
use gpu_device_plugin::kubelet::unix_channel;
use gpu_device_plugin::plugin::RunningServer;
use gpu_device_plugin::v1beta1::device_plugin_client::DevicePluginClient;
use rpc::Budget;
use synthetic::GPU;
use thread::Background;

/// How long to wait for the kubelet to see a registration.
pub const SETTLE: Duration = Duration::from_secs(10);

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Idle measurement of the spawned daemon.
    pub idle: Duration,
    /// The plugin binary to spawn for process figures.
    pub exe: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("bench setup failed: {0}")]
    Setup(String),
    #[error("bench setup failed: {what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl BenchError {
    fn io(what: &'static str) -> impl Fn(std::io::Error) -> BenchError {
        move |source| BenchError::Io { what, source }
    }
}

/// One JSON line with `figure` first (the rest in key order), for reading
/// by eye as well as by `jq`.
pub fn render_line(line: &Value) -> String {
    let Some(map) = line.as_object() else {
        return line.to_string();
    };
    let mut out = String::from("{");
    let figure = map.get("figure").into_iter().map(|v| ("figure", v));
    let rest = map
        .iter()
        .filter(|(k, _)| *k != "figure")
        .map(|(k, v)| (k.as_str(), v));
    for (i, (k, v)) in figure.chain(rest).enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&Value::from(k).to_string());
        out.push(':');
        out.push_str(&v.to_string());
    }
    out.push('}');
    out
}

/// The device IDs the kubelet holds for `nvidia.com/gpu`.
fn device_ids(kubelet: &LocalKubelet) -> Result<Vec<String>, BenchError> {
    kubelet
        .view()
        .resources
        .get(GPU)
        .map(|r| r.devices.iter().map(|d| d.id.clone()).collect())
        .ok_or_else(|| BenchError::Setup(format!("the kubelet has no {GPU}")))
}

async fn wait_listed(kubelet: &LocalKubelet) -> Result<(), BenchError> {
    kubelet
        .wait_for(SETTLE, |v| {
            v.resources.get(GPU).is_some_and(|r| r.updates > 0)
        })
        .await
        .map(drop)
        .map_err(|e| BenchError::Setup(e.to_string()))
}

/// Runs every figure, handing each JSON line to `emit` as soon as it is known.
pub async fn run_bench(opts: &BenchOptions, emit: &mut dyn FnMut(Value)) -> Result<(), BenchError> {
    let started = Instant::now();
    in_process(emit).await?;
    synthetic_figures(emit).await?;
    events::figures(emit).await?;
    let dir = tempfile::tempdir().map_err(BenchError::io("temp dir"))?;
    let node = dir.path().join("dgx-a100.yaml");
    std::fs::write(&node, BUILTIN_NODE).map_err(BenchError::io("writing the node file"))?;
    emit(process::start_to_registered(&opts.exe, &node, 5).await?);
    emit(process::idle(&opts.exe, &node, opts.idle, "idle", &[]).await?);
    emit(
        process::idle(
            &opts.exe,
            &node,
            opts.idle,
            "idle_usage_sampling_15s",
            process::USAGE_SAMPLING,
        )
        .await?,
    );
    restarts::figures(&opts.exe, emit).await?;
    emit(json!({"figure": "bench_total", "seconds": started.elapsed().as_secs()}));
    Ok(())
}

/// The daemon on the built-in node, in-process: RPC figures and kubelet restarts.
async fn in_process(emit: &mut dyn FnMut(Value)) -> Result<(), BenchError> {
    let dir = tempfile::tempdir().map_err(BenchError::io("temp dir"))?;
    let mut kubelet = LocalKubelet::start(dir.path()).map_err(BenchError::io("kubelet"))?;
    let cfg = DaemonConfig {
        overrides: Overrides::default(),
        config_file: None,
        kubelet_socket: kubelet.socket().to_path_buf(),
        backend: BackendChoice::Simulated(Simulated::builtin()),
        health: Default::default(),
        metrics_address: None,
        usage: Default::default(),
    };
    let daemon = Background::spawn("daemon", move |stop| async move {
        if let Err(e) = run(cfg, stop).await {
            tracing::error!(error = %e, "bench daemon failed");
        }
    })
    .map_err(BenchError::io("daemon thread"))?;
    wait_listed(&kubelet).await?;
    let ids = device_ids(&kubelet)?;
    let client = kubelet
        .client(GPU)
        .await
        .map_err(|e| BenchError::Setup(e.to_string()))?;
    for line in rpc::baseline(&client).await {
        emit(line);
    }
    emit(rpc::allocate(&client, &ids, 1).await);
    emit(rpc::allocate(&client, &ids, 16).await);
    for size in [1, 2, 4, 8] {
        emit(rpc::preferred(&client, &ids, size).await);
    }
    emit(rpc::first_list(&client, rpc::QUICK).await);
    drop(client);

    let mut samples = Vec::new();
    for _ in 0..10 {
        kubelet.stop().await;
        let restarted = Instant::now();
        kubelet = LocalKubelet::start(dir.path()).map_err(BenchError::io("kubelet"))?;
        wait_listed(&kubelet).await?;
        samples.push(restarted.elapsed());
    }
    emit(summarize(&mut samples).json_ms(json!({"figure": "kubelet_restart_to_registered"})));
    daemon.stop().await;
    kubelet.stop().await;
    Ok(())
}

/// Replicated snapshots (800 and 8000 devices) served on their own thread.
async fn synthetic_figures(emit: &mut dyn FnMut(Value)) -> Result<(), BenchError> {
    let dir = tempfile::tempdir().map_err(BenchError::io("temp dir"))?;
    let mut served = Vec::new();
    for replicas in [100, 1000] {
        let snapshot = synthetic::replicated(replicas)?;
        served.push((dir.path().join(format!("r{replicas}.sock")), snapshot));
    }
    let sockets: Vec<PathBuf> = served.iter().map(|(p, _)| p.clone()).collect();
    let (ready_tx, mut ready) = watch::channel(0usize);
    let server = Background::spawn("replicas", move |stop| serve_all(served, stop, ready_tx))
        .map_err(BenchError::io("server thread"))?;
    let n = sockets.len();
    tokio::time::timeout(SETTLE, ready.wait_for(|r| *r == n))
        .await
        .map_err(|_| BenchError::Setup("replica servers did not start".into()))?
        .map_err(|_| BenchError::Setup("replica servers failed to start".into()))?;
    for (i, socket) in sockets.iter().enumerate() {
        let client = connect(socket).await?;
        let first = rpc::first_list(
            &client,
            Budget {
                calls: 200,
                time: Duration::from_secs(3),
            },
        )
        .await;
        emit(first);
        if i == 0 {
            let ids: Vec<String> = synthetic::replicated(100)?
                .resource
                .devices
                .iter()
                .map(|d| d.id.clone())
                .collect();
            for size in [1, 2, 4, 8] {
                emit(rpc::preferred(&client, &ids, size).await);
            }
        }
    }
    server.stop().await;
    Ok(())
}

async fn connect(
    socket: &Path,
) -> Result<DevicePluginClient<tonic::transport::Channel>, BenchError> {
    unix_channel(socket)
        .await
        // The kubelet's 4 MiB receive limit applies here too (tonic's default).
        .map(DevicePluginClient::new)
        .map_err(|e| BenchError::Setup(format!("cannot dial {}: {e}", socket.display())))
}

async fn serve_all(
    served: Vec<(PathBuf, gpu_device_plugin::plugin::Snapshot)>,
    mut stop: watch::Receiver<bool>,
    ready: watch::Sender<usize>,
) {
    let mut keep = Vec::new();
    for (socket, snapshot) in served {
        let (tx, rx) = watch::channel(Arc::new(snapshot));
        match RunningServer::start(&socket, rx, None) {
            Ok(server) => {
                keep.push((server, tx));
                ready.send_modify(|n| *n += 1);
            }
            Err(e) => tracing::error!(socket = %socket.display(), error = %e, "cannot serve"),
        }
    }
    stopped(&mut stop).await;
    for (server, _tx) in keep {
        let _ = server.stop().await;
    }
}

#[cfg(test)]
#[path = "bench_tests.rs"]
mod tests;
