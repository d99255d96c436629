//! `gpu-device-plugin demo`: the daemon on a simulated node against an
//! in-process kubelet in a temporary directory, printing what the kubelet sees
//! and one sample Allocate response. Needs no GPU and no cluster.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::kubelet::{KubeletView, LocalKubelet};
use gpu_device_plugin::config::Overrides;
use gpu_device_plugin::daemon::{BackendChoice, DaemonConfig, prepare, read_config_file, run};
use gpu_device_plugin::gpu::Backend;
use gpu_device_plugin::gpu::simulated::{BUILTIN_NAME, Simulated};
use gpu_device_plugin::v1beta1::{
    AllocateRequest, ContainerAllocateRequest, ContainerAllocateResponse,
};

/// How long the demo waits for the kubelet to see every resource.
const SETTLE: Duration = Duration::from_secs(10);

/// What to run the demo on.
#[derive(Debug, Clone, Default)]
pub struct DemoOptions {
    /// Node file; the built-in DGX-class node when `None`.
    pub node: Option<PathBuf>,
    pub config_file: Option<PathBuf>,
    pub overrides: Overrides,
}

/// What the demo observed.
#[derive(Debug, Clone)]
pub struct DemoReport {
    pub node: String,
    pub gpus: usize,
    pub registered_in: Duration,
    pub view: KubeletView,
    /// The resource, the requested IDs and the response of the sample Allocate.
    pub sample: Option<(String, Vec<String>, ContainerAllocateResponse)>,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Daemon(#[from] gpu_device_plugin::daemon::DaemonError),
    #[error("demo setup failed: {0}")]
    Setup(String),
}

/// Runs the demo and returns what the kubelet saw.
pub async fn run_demo(opts: DemoOptions) -> Result<DemoReport, DemoError> {
    let sim = match &opts.node {
        Some(path) => Simulated::from_file(path),
        None => Simulated::builtin(),
    };
    let node = opts
        .node
        .as_ref()
        .map_or_else(|| BUILTIN_NAME.to_string(), |p| p.display().to_string());
    let inventory = sim
        .inventory()
        .map_err(gpu_device_plugin::daemon::DaemonError::from)?;
    let (file, _) = read_config_file(opts.config_file.as_deref())?;
    let settings = gpu_device_plugin::config::Settings::resolve(&opts.overrides, &file)
        .map_err(gpu_device_plugin::daemon::DaemonError::from)?;
    let expected: Vec<String> = prepare(&inventory, &settings, &file, &[], &|_| true)
        .map_err(gpu_device_plugin::daemon::DaemonError::from)?
        .resources
        .into_keys()
        .collect();

    let dir = tempfile::tempdir().map_err(|e| DemoError::Setup(e.to_string()))?;
    let kubelet = LocalKubelet::start(dir.path()).map_err(|e| DemoError::Setup(e.to_string()))?;
    let cfg = DaemonConfig {
        overrides: opts.overrides.clone(),
        config_file: opts.config_file.clone(),
        kubelet_socket: kubelet.socket().to_path_buf(),
        backend: BackendChoice::Simulated(sim),
        health: Default::default(),
        metrics_address: None,
        usage: Default::default(),
    };
    let (stop, stop_rx) = watch::channel(false);
    let started = Instant::now();
    let daemon = tokio::spawn(run(cfg, stop_rx));
    let settled = kubelet
        .wait_for(SETTLE, |v| {
            expected
                .iter()
                .all(|name| v.resources.get(name).is_some_and(|r| r.updates > 0))
        })
        .await;
    let registered_in = started.elapsed();
    let result = match settled {
        Ok(view) => {
            let sample = sample_allocate(&kubelet, &view).await;
            Ok(DemoReport {
                node,
                gpus: inventory.gpus.len(),
                registered_in,
                view,
                sample,
            })
        }
        Err(e) => Err(DemoError::Setup(e.to_string())),
    };
    let _ = stop.send(true);
    match daemon.await {
        Ok(Err(e)) => return Err(e.into()),
        Err(e) => return Err(DemoError::Setup(format!("daemon task failed: {e}"))),
        Ok(Ok(())) => {}
    }
    kubelet.stop().await;
    result
}

async fn sample_allocate(
    kubelet: &LocalKubelet,
    view: &KubeletView,
) -> Option<(String, Vec<String>, ContainerAllocateResponse)> {
    let (name, seen) = view.resources.iter().find(|(_, r)| !r.devices.is_empty())?;
    let ids: Vec<String> = seen.devices.iter().take(1).map(|d| d.id.clone()).collect();
    let mut client = kubelet.client(name).await.ok()?;
    let response = client
        .allocate(AllocateRequest {
            container_requests: vec![ContainerAllocateRequest {
                devices_ids: ids.clone(),
            }],
        })
        .await
        .ok()?
        .into_inner();
    let first = response.container_responses.into_iter().next()?;
    Some((name.clone(), ids, first))
}

/// The report as text for a terminal.
pub fn render(report: &DemoReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "simulated node: {} ({} GPUs); kubelet saw every resource {:.1} ms after start\n",
        report.node,
        report.gpus,
        report.registered_in.as_secs_f64() * 1000.0
    );
    let _ = writeln!(
        out,
        "{:<28} {:>7} {:>7}  {:<22} SOCKET",
        "RESOURCE", "DEVICES", "HEALTHY", "NUMA"
    );
    for (name, seen) in &report.view.resources {
        let _ = writeln!(
            out,
            "{:<28} {:>7} {:>7}  {:<22} {}",
            name,
            seen.devices.len(),
            seen.healthy(),
            numa_spread(seen),
            seen.endpoint
        );
    }
    if report.view.resources.is_empty() {
        let _ = writeln!(
            out,
            "(no resources: the node has no devices for this configuration)"
        );
    }
    if let Some((name, ids, resp)) = &report.sample {
        let _ = writeln!(out, "\nAllocate {name} {ids:?} →");
        let envs: BTreeMap<_, _> = resp.envs.iter().collect();
        for (k, v) in envs {
            let _ = writeln!(out, "  env    {k}={v}");
        }
        for m in &resp.mounts {
            let _ = writeln!(out, "  mount  {} -> {}", m.host_path, m.container_path);
        }
        for d in &resp.devices {
            let _ = writeln!(
                out,
                "  device {} -> {} ({})",
                d.host_path, d.container_path, d.permissions
            );
        }
    }
    out
}

fn numa_spread(seen: &crate::kubelet::SeenResource) -> String {
    let mut per_node: BTreeMap<Option<i64>, usize> = BTreeMap::new();
    for d in &seen.devices {
        let node = d
            .topology
            .as_ref()
            .and_then(|t| t.nodes.first())
            .map(|n| n.id);
        *per_node.entry(node).or_default() += 1;
    }
    per_node
        .iter()
        .map(|(node, n)| match node {
            Some(id) => format!("node{id}: {n}"),
            None => format!("none: {n}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}
