//! Health end to end on the simulated backend: XIDs appended to the node file
//! reach the kubelet as Unhealthy devices (every replica of the GPU, only the
//! matching MIG device), ignored XIDs change nothing, a GPU recovers only once
//! the quiet period has passed and a probe finds it needs no reset, and a
//! failing backend makes every device unhealthy until it answers again.

mod support;

use std::path::Path;

use devkit::kubelet::KubeletView;
use support::http::{get, metric, metrics_address, wait_metric};
use support::kubelet::FakeKubelet;
use support::process::Plugin;
use support::{WAIT, repo_file, write_atomic};

/// A copy of an example node in a temp dir, editable by the test.
struct Node {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    text: String,
}

impl Node {
    fn copy(name: &str) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.yaml");
        let text =
            std::fs::read_to_string(repo_file(&format!("config/nodes/{name}.yaml"))).unwrap();
        std::fs::write(&path, &text).unwrap();
        Node {
            _dir: dir,
            path,
            text,
        }
    }

    /// UUID of GPU `index` (the n-th `- index:` entry).
    fn gpu_uuid(&self, index: usize) -> String {
        let line = self
            .text
            .lines()
            .filter(|l| l.trim_start().starts_with("uuid: GPU-"))
            .nth(index)
            .unwrap();
        line.trim().trim_start_matches("uuid: ").to_string()
    }

    /// Adds `line` (a key of the GPU's mapping) after the GPU's uuid line, atomically.
    fn add_to_gpu(&mut self, uuid: &str, line: &str) {
        let at = format!("    uuid: {uuid}\n");
        self.text = self.text.replacen(&at, &format!("{at}    {line}\n"), 1);
        write_atomic(&self.path, &self.text);
    }
}

fn unhealthy(view: &KubeletView, resource: &str) -> Vec<String> {
    let mut ids: Vec<String> = view.resources[resource]
        .devices
        .iter()
        .filter(|d| d.health != "Healthy")
        .map(|d| d.id.clone())
        .collect();
    ids.sort();
    ids
}

fn config(dir: &Path, replicas: u32) -> String {
    let path = dir.join("config.yaml");
    std::fs::write(
        &path,
        format!("version: v1\nsharing:\n  timeSlicing:\n    resources:\n    - name: nvidia.com/gpu\n      replicas: {replicas}\n"),
    )
    .unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn a_critical_xid_marks_every_replica_of_its_gpu() {
    let mut node = Node::copy("dgx-a100");
    let cfgdir = tempfile::tempdir().unwrap();
    let cfg = config(cfgdir.path(), 4);
    let k = FakeKubelet::start();
    let p = Plugin::simulated(&node.path, &k.socket(), &["--config-file", &cfg]);
    k.wait_devices(&p, "nvidia.com/gpu", 32).await;
    let gpu1 = node.gpu_uuid(1);
    node.add_to_gpu(&gpu1, "xids: [79]");
    let view = k
        .get()
        .wait_for(WAIT, |v| v.resources["nvidia.com/gpu"].healthy() == 28)
        .await
        .unwrap_or_else(|e| panic!("{e}; log:\n{}", p.log()));
    let want: Vec<String> = (0..4).map(|n| format!("{gpu1}::{n}")).collect();
    assert_eq!(unhealthy(&view, "nvidia.com/gpu"), want);
}

#[tokio::test]
async fn xid_79_recovers_only_once_the_gpu_needs_no_reset() {
    let mut node = Node::copy("dgx-a100");
    let k = FakeKubelet::start();
    let p = Plugin::simulated(
        &node.path,
        &k.socket(),
        &[
            "--health-recovery-period",
            "200ms",
            "--metrics-address",
            "127.0.0.1:0",
        ],
    );
    let addr = metrics_address(&p).await;
    k.wait_devices(&p, "nvidia.com/gpu", 8).await;
    let gpu1 = node.gpu_uuid(1);
    node.add_to_gpu(&gpu1, "recoveryAction: gpuReset");
    node.add_to_gpu(&gpu1, "xids: [79]");
    k.get()
        .wait_for(WAIT, |v| v.resources["nvidia.com/gpu"].healthy() == 7)
        .await
        .unwrap_or_else(|e| panic!("{e}; log:\n{}", p.log()));
    // Past the quiet period, a probe found the reset still pending...
    wait_metric(
        addr,
        "gpu_device_plugin_recovery_probes_total{result=\"not_fit\"}",
        2.0,
    )
    .await;
    assert_eq!(k.get().view().resources["nvidia.com/gpu"].healthy(), 7);
    // ... and once the GPU needs nothing, it recovers.
    node.text = node
        .text
        .replace("recoveryAction: gpuReset", "recoveryAction: none");
    write_atomic(&node.path, &node.text);
    k.get()
        .wait_for(WAIT, |v| v.resources["nvidia.com/gpu"].healthy() == 8)
        .await
        .unwrap_or_else(|e| panic!("{e}; log:\n{}", p.log()));
}

#[tokio::test]
async fn an_ignored_xid_changes_nothing() {
    let mut node = Node::copy("dgx-a100");
    let k = FakeKubelet::start();
    let p = Plugin::simulated(
        &node.path,
        &k.socket(),
        &["--metrics-address", "127.0.0.1:0"],
    );
    let addr = metrics_address(&p).await;
    let before = k.wait_devices(&p, "nvidia.com/gpu", 8).await;
    let gpu = node.gpu_uuid(2);
    node.add_to_gpu(&gpu, "xids: [13]");
    wait_metric(
        addr,
        "gpu_device_plugin_health_events_total{xid=\"13\",action=\"ignored\"}",
        1.0,
    )
    .await;
    assert_eq!(k.get().view(), before);
}

#[tokio::test]
async fn a_mig_event_hits_only_its_mig_device() {
    let mut node = Node::copy("h100-mig");
    let k = FakeKubelet::start();
    let p = Plugin::simulated(&node.path, &k.socket(), &["--mig-strategy", "mixed"]);
    k.wait_devices(&p, "nvidia.com/gpu", 4).await;
    let view = k
        .wait_resource(&p, "nvidia.com/mig-1g.10gb", |r| r.devices.len() == 8)
        .await;
    // GPU 1 holds seven 1g.10gb devices; hit the third one.
    let gpu1 = node.gpu_uuid(1);
    let mig_line = node
        .text
        .lines()
        .skip_while(|l| !l.contains(&gpu1))
        .filter(|l| l.contains("profile: 1g.10gb,"))
        .nth(2)
        .unwrap()
        .to_string();
    let mig = mig_line
        .split("uuid: ")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_string();
    assert!(
        view.resources["nvidia.com/mig-1g.10gb"]
            .devices
            .iter()
            .any(|d| d.id == mig)
    );
    node.add_to_gpu(&gpu1, &format!("migXids: {{{mig}: [94]}}"));
    let view = k
        .get()
        .wait_for(WAIT, |v| {
            v.resources["nvidia.com/mig-1g.10gb"].healthy() == 7
        })
        .await
        .unwrap_or_else(|e| panic!("{e}; log:\n{}", p.log()));
    assert_eq!(unhealthy(&view, "nvidia.com/mig-1g.10gb"), vec![mig]);
    assert_eq!(
        view.resources["nvidia.com/gpu"].fewest_healthy,
        Some(4),
        "whole GPUs untouched in every list"
    );
}

#[tokio::test]
async fn health_checks_can_be_disabled_as_with_nvidia() {
    let mut node = Node::copy("workstation");
    let k = FakeKubelet::start();
    let args = [
        "--simulate".to_string(),
        node.path.display().to_string(),
        "--kubelet-socket".to_string(),
        k.socket().display().to_string(),
        "--metrics-address".to_string(),
        "127.0.0.1:0".to_string(),
    ];
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let p = Plugin::start(&refs, &[("DP_DISABLE_HEALTHCHECKS", "all")]);
    let addr = metrics_address(&p).await;
    k.wait_devices(&p, "nvidia.com/gpu", 1).await;
    let reads = "gpu_device_plugin_inventory_reads_total{result=\"ok\"}";
    let (_, text) = get(addr, "/metrics").await;
    let before = metric(&text, reads).expect("inventory read counted");
    let gpu = node.gpu_uuid(0);
    node.add_to_gpu(&gpu, "xids: [79]");
    // The node file is read again; health stays as it was.
    wait_metric(addr, reads, before + 1.0).await;
    assert_eq!(k.get().view().resources["nvidia.com/gpu"].healthy(), 1);
    assert!(p.log().contains("health checks are disabled"));
}
