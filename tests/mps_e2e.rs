//! MPS end to end: `mps-control-daemon` with a fake `nvidia-cuda-mps-control`
//! (tests/fake-mps-control) and the plugin against an in-process kubelet, both
//! on one MPS root: the resource is advertised once the daemon has started,
//! Allocate carries the pipe directory, a killed control daemon turns the
//! devices Unhealthy until it is restarted, replicas 4 → 8 reconfigures it
//! with NVIDIA's limits, SIGTERM quits it; MIG and too many replicas are refused.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use gpu_device_plugin::v1beta1::{AllocateRequest, ContainerAllocateRequest};
use support::kubelet::FakeKubelet;
use support::process::Plugin;
use support::{WAIT, write_atomic};

const GPU: &str = "nvidia.com/gpu";
const NODE: &str = "driverVersion: \"550.54.15\"\ngpus:\n  - {index: 0, uuid: GPU-aaaa0000-0000-0000-0000-000000000000, name: NVIDIA A100-SXM4-80GB, memoryMiB: 81920, pciBusId: \"0000:07:00.0\", numaNode: 0, computeCapability: \"8.0\"}\n  - {index: 1, uuid: GPU-bbbb0000-0000-0000-0000-000000000000, name: NVIDIA A100-SXM4-40GB, memoryMiB: 40960, pciBusId: \"0000:0f:00.0\", numaNode: 0, computeCapability: \"8.0\"}\n";

fn mps(replicas: u32) -> String {
    format!(
        "version: v1\nsharing:\n  mps:\n    resources:\n    - name: nvidia.com/gpu\n      replicas: {replicas}\n"
    )
}

/// The fake control binary, built on first use.
fn fake() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .args([
                "build",
                "-p",
                "fake-mps-control",
                "--message-format=json-render-diagnostics",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("run cargo to build tests/fake-mps-control");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|m| {
                m["reason"] == "compiler-artifact" && m["target"]["name"] == "fake-mps-control"
            })
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .expect("cargo reported no fake-mps-control executable")
    })
}

struct Node {
    dir: tempfile::TempDir,
}

impl Node {
    fn new(config: &str) -> Node {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("node.yaml"), NODE).unwrap();
        std::fs::write(dir.path().join("config.yaml"), config).unwrap();
        std::fs::create_dir(dir.path().join("mps")).unwrap();
        Node { dir }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn root(&self) -> PathBuf {
        self.path("mps")
    }
    fn recorded(&self) -> Vec<String> {
        let log = self.root().join(GPU).join("fake-mps-commands.log");
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
    fn common(&self) -> Vec<String> {
        let s = |p: PathBuf| p.display().to_string();
        vec![
            "--simulate".into(),
            s(self.path("node.yaml")),
            "--config-file".into(),
            s(self.path("config.yaml")),
            "--mps-root".into(),
            s(self.root()),
            "--mps-root-ctr-path".into(),
            s(self.root()),
        ]
    }
    fn daemon(&self, extra: &[&str]) -> Plugin {
        let mut args = vec!["mps-control-daemon".to_string()];
        args.extend(self.common());
        let fake = fake().display().to_string();
        for a in [
            "--mps-control-bin",
            &fake,
            "--nvidia-smi-bin",
            &fake,
            "--mps-health-interval",
            "100ms",
        ] {
            args.push(a.to_string());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let smi = self.path("nvidia-smi.log").display().to_string();
        Plugin::start(&refs, &[("FAKE_NVIDIA_SMI_LOG", &smi)])
    }
    fn plugin(&self, kubelet: &Path) -> Plugin {
        let mut args = self.common();
        args.extend([
            "--kubelet-socket".to_string(),
            kubelet.display().to_string(),
        ]);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        Plugin::start(&refs, &[])
    }
}

/// The recorded commands of one start with `replicas` per GPU (NVIDIA's limits).
fn expected(replicas: u64) -> Vec<String> {
    vec![
        "start CUDA_VISIBLE_DEVICES=GPU-aaaa0000-0000-0000-0000-000000000000,GPU-bbbb0000-0000-0000-0000-000000000000".into(),
        format!("set_default_device_pinned_mem_limit 0 {}M", 81920 / replicas),
        format!("set_default_device_pinned_mem_limit 1 {}M", 40960 / replicas),
        format!("set_default_active_thread_percentage {}", 100 / replicas),
    ]
}

/// Waits until the kubelet sees `pred` hold for the GPU resource; panics with both logs.
async fn wait(k: &FakeKubelet, log: &dyn Fn() -> String, devices: usize, healthy: usize) {
    let seen = |v: &_| {
        let v: &support::kubelet::View = v;
        v.resources
            .get(GPU)
            .is_some_and(|r| r.devices.len() == devices && r.healthy() == healthy)
    };
    if let Err(e) = k.get().wait_for(WAIT, seen).await {
        panic!("{e}; {}", log());
    }
}

async fn wait_file(path: &Path, present: bool, what: &str, log: &dyn Fn() -> String) {
    let start = Instant::now();
    while path.exists() != present {
        assert!(
            start.elapsed() < WAIT,
            "{what}: {} still {}; log:\n{}",
            path.display(),
            if present { "absent" } else { "present" },
            log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn daemon_and_plugin_agree_through_death_and_reconfiguration() {
    let node = Node::new(&mps(4));
    let k = FakeKubelet::start();
    let plugin = node.plugin(&k.socket());
    let started = Instant::now();
    let mut daemon = node.daemon(&[]);
    let (daemon_log, plugin_log) = (daemon.log_path(), plugin.log_path());
    let log = move || {
        let read = |p: &PathBuf| std::fs::read_to_string(p).unwrap_or_default();
        format!(
            "daemon:\n{}\nplugin:\n{}",
            read(&daemon_log),
            read(&plugin_log)
        )
    };

    k.wait_resource(&plugin, GPU, |r| r.devices.len() == 8 && r.healthy() == 8)
        .await;
    eprintln!(
        "advertised {} ms after the daemon started",
        started.elapsed().as_millis()
    );
    let marker = node.root().join(GPU).join(".started");
    assert!(marker.exists());
    assert!(node.root().join(".ready").exists());
    assert_eq!(node.recorded(), expected(4), "{}", log());
    let smi = std::fs::read_to_string(node.path("nvidia-smi.log")).unwrap();
    assert!(
        smi.contains("nvidia-smi -i GPU-aaaa0000-0000-0000-0000-000000000000 -c EXCLUSIVE_PROCESS"),
        "{smi}"
    );
    assert!(
        plugin.log().contains(&marker.display().to_string()),
        "the marker path is logged"
    );

    let id = k.get().view().resources[GPU].devices[0].id.clone();
    let mut client = k.get().client(GPU).await.unwrap();
    let resp = client
        .allocate(AllocateRequest {
            container_requests: vec![ContainerAllocateRequest {
                devices_ids: vec![id],
            }],
        })
        .await
        .unwrap()
        .into_inner();
    let c = &resp.container_responses[0];
    let pipe = node.root().join(GPU).join("pipe");
    assert_eq!(
        c.envs["CUDA_MPS_PIPE_DIRECTORY"],
        "/mps/nvidia.com/gpu/pipe"
    );
    let mounts: Vec<(String, String)> = c
        .mounts
        .iter()
        .map(|m| (m.container_path.clone(), m.host_path.clone()))
        .collect();
    assert!(
        mounts.contains(&(
            "/mps/nvidia.com/gpu/pipe".into(),
            pipe.display().to_string()
        )),
        "{mounts:?}"
    );
    assert!(
        mounts.contains(&(
            "/dev/shm".into(),
            node.root().join("shm").display().to_string()
        )),
        "{mounts:?}"
    );

    // Kill the control daemon: Unhealthy (capacity kept), then back after the restart.
    // The fake refuses restarts until told otherwise, so the outage is seen.
    let refuse = node.root().join(GPU).join("fake-refuse-start");
    std::fs::write(&refuse, "").unwrap();
    let pid = std::fs::read_to_string(pipe.join("fake-server.pid")).unwrap();
    let killed = Instant::now();
    assert!(
        Command::new("kill")
            .args(["-9", pid.trim()])
            .status()
            .unwrap()
            .success()
    );
    wait(&k, &log, 8, 0).await;
    eprintln!(
        "unhealthy {} ms after the kill",
        killed.elapsed().as_millis()
    );
    std::fs::remove_file(&refuse).unwrap();
    wait(&k, &log, 8, 8).await;
    eprintln!(
        "healthy again {} ms after the kill",
        killed.elapsed().as_millis()
    );
    let restarted: Vec<String> = node.recorded()[4..].to_vec();
    assert_eq!(
        restarted,
        expected(4),
        "the restart sends the same limits; {}",
        log()
    );

    // Replicas 4 -> 8: the daemon quits and starts with the new limits.
    write_atomic(&node.path("config.yaml"), &mps(8));
    wait(&k, &log, 16, 16).await;
    let deadline = Instant::now();
    while node.recorded().len() < 13 {
        assert!(
            deadline.elapsed() < WAIT,
            "{:?}; {}",
            node.recorded(),
            log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let mut want = vec!["quit".to_string()];
    want.extend(expected(8));
    assert_eq!(node.recorded()[8..].to_vec(), want, "{}", log());

    // SIGTERM: quit, marker and .ready removed, exit 0.
    daemon.signal("TERM");
    let status = daemon
        .wait_exit(WAIT)
        .await
        .expect("daemon exits on SIGTERM");
    assert!(status.success(), "{}", daemon.log());
    assert_eq!(node.recorded().last().map(String::as_str), Some("quit"));
    assert!(!marker.exists() && !node.root().join(".ready").exists());
    wait_file(&marker, false, "marker removed", &|| plugin.log()).await;
    wait(&k, &log, 16, 0).await;
}

#[tokio::test]
async fn what_nvidia_refuses_stops_the_daemon_with_its_error() {
    let mig =
        std::fs::read_to_string(support::repo_file("config/nodes/a100-mig-single.yaml")).unwrap();
    let single = "version: v1\nflags:\n  migStrategy: single\nsharing:\n  mps:\n    resources:\n    - name: nvidia.com/gpu\n      replicas: 2\n";
    let cases: Vec<(Option<&str>, String, &str)> = vec![
        (
            None,
            mps(49),
            "invalid MPS configuration: invalid device maximum allowed replicas exceeded: 49 > 48",
        ),
        (
            Some(mig.as_str()),
            single.to_string(),
            "sharing using MPS is not supported for MIG devices",
        ),
    ];
    for (node_text, config, want) in cases {
        let node = Node::new(&config);
        if let Some(text) = node_text {
            std::fs::write(node.path("node.yaml"), text).unwrap();
        }
        let mut daemon = node.daemon(&[]);
        let status = daemon.wait_exit(WAIT).await.expect("the daemon exits");
        assert!(!status.success());
        assert!(daemon.log().contains(want), "{want}: {}", daemon.log());
        assert!(node.recorded().is_empty(), "nothing started");
    }
}

/// Per-node config in the MPS control daemon: the node's label picks its
/// config as it does the plugin's (needs the kube-apiserver bundle).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_label_picks_the_daemons_config_too() {
    use support::apiserver::ApiServer;
    use support::nodeapi::LABEL;
    let Some(api) = ApiServer::start("MPS daemon per-node config") else {
        return;
    };
    api.create_node("mps-node");
    api.label_node("mps-node", LABEL, Some("mps"));
    let node = Node::new("version: v1\n");
    let configs = node.path("configs");
    std::fs::create_dir(&configs).unwrap();
    std::fs::write(configs.join("default"), "version: v1\n").unwrap();
    std::fs::write(configs.join("mps"), mps(2)).unwrap();
    let fake = fake().display().to_string();
    let mut args = vec!["mps-control-daemon".to_string()];
    args.extend(node.common());
    for a in ["--mps-control-bin", &fake, "--nvidia-smi-bin", &fake] {
        args.push(a.to_string());
    }
    args.extend(["--config-dir".to_string(), configs.display().to_string()]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let kubeconfig = api.kubeconfig.display().to_string();
    let smi = node.path("nvidia-smi.log").display().to_string();
    let daemon = Plugin::start(
        &refs,
        &[
            ("FAKE_NVIDIA_SMI_LOG", &smi),
            ("KUBECONFIG", &kubeconfig),
            ("NODE_NAME", "mps-node"),
        ],
    );
    let log = || daemon.log();
    let marker = node.root().join(GPU).join(".started");
    wait_file(&marker, true, "the labelled config shares with MPS", &log).await;
    assert_eq!(node.recorded(), expected(2));
    api.label_node("mps-node", LABEL, Some("default"));
    wait_file(&marker, false, "the default config has no MPS", &log).await;
}
