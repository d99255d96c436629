//! The plugin binary against a fake kubelet over real Unix sockets:
//! registration, kubelet restarts, a late kubelet, deleted sockets, SIGTERM.

mod support;

use std::time::{Duration, Instant};

use support::kubelet::FakeKubelet;
use support::process::Plugin;
use support::{WAIT, repo_file};

fn dgx() -> std::path::PathBuf {
    repo_file("config/nodes/dgx-a100.yaml")
}

#[tokio::test]
async fn registers_with_nvidia_compatible_fields() {
    let k = FakeKubelet::start();
    let _p = Plugin::simulated(&dgx(), &k.socket(), &[]);
    let view = k
        .get()
        .wait_for(WAIT, |v| !v.registrations.is_empty())
        .await
        .unwrap();
    let req = &view.registrations[0];
    assert_eq!(req.version, "v1beta1");
    assert_eq!(req.endpoint, "nvidia-gpu.sock");
    assert_eq!(req.resource_name, "nvidia.com/gpu");
    let opts = req.options.expect("options sent");
    assert!(opts.get_preferred_allocation_available);
    assert!(!opts.pre_start_required);
    // GetDevicePluginOptions (what current kubelets use) says the same.
    assert_eq!(view.resources["nvidia.com/gpu"].options, Some(opts));
    assert!(k.path().join("nvidia-gpu.sock").exists());
}

#[tokio::test]
async fn re_registers_once_after_a_kubelet_restart() {
    let mut k = FakeKubelet::start();
    let p = Plugin::simulated(&dgx(), &k.socket(), &[]);
    k.wait_resource(&p, "nvidia.com/gpu", |r| r.updates > 0)
        .await;
    let restarted = Instant::now();
    k.restart().await; // deletes nvidia-gpu.sock, recreates kubelet.sock
    let view = k.wait_devices(&p, "nvidia.com/gpu", 8).await;
    println!("kubelet restart -> listed: {:?}", restarted.elapsed());
    assert_eq!(view.registrations.len(), 1, "{:?}", view.registrations);
    assert_eq!(view.registrations[0].endpoint, "nvidia-gpu.sock");
    assert!(
        k.path().join("nvidia-gpu.sock").exists(),
        "socket served again"
    );
}

#[tokio::test]
async fn waits_for_a_kubelet_that_starts_later() {
    let mut k = FakeKubelet::absent();
    let p = Plugin::simulated(&dgx(), &k.socket(), &[]);
    // The plugin serves before any kubelet exists.
    let sock = k.path().join("nvidia-gpu.sock");
    let deadline = Instant::now() + WAIT;
    while !sock.exists() {
        assert!(
            Instant::now() < deadline,
            "plugin never served; log:\n{}",
            p.log()
        );
        tokio::time::sleep(Duration::from_millis(5)).await; // poll a file, bounded by WAIT
    }
    // A kubelet that starts now deletes the plugin's socket first; the plugin
    // must serve again and register.
    k.start_now();
    let view = k
        .wait_resource(&p, "nvidia.com/gpu", |r| r.devices.len() == 8)
        .await;
    assert_eq!(view.resources["nvidia.com/gpu"].endpoint, "nvidia-gpu.sock");
}

#[tokio::test]
async fn a_deleted_plugin_socket_is_served_again() {
    let k = FakeKubelet::start();
    let p = Plugin::simulated(&dgx(), &k.socket(), &[]);
    k.wait_resource(&p, "nvidia.com/gpu", |r| r.updates > 0)
        .await;
    let sock = k.path().join("nvidia-gpu.sock");
    std::fs::remove_file(&sock).unwrap();
    let view = k
        .wait_resource(&p, "nvidia.com/gpu", |r| r.registrations >= 2)
        .await;
    assert!(sock.exists());
    assert_eq!(view.resources["nvidia.com/gpu"].endpoint, "nvidia-gpu.sock");
}

#[tokio::test]
async fn sigterm_ends_streams_removes_sockets_and_exits_zero() {
    let k = FakeKubelet::start();
    let mut p = Plugin::simulated(
        &repo_file("config/nodes/h100-mig.yaml"),
        &k.socket(),
        &["--mig-strategy", "mixed"],
    );
    k.get()
        .wait_for(WAIT, |v| {
            v.resources.len() == 6 && v.resources.values().all(|r| r.streaming)
        })
        .await
        .unwrap();
    p.signal("TERM");
    let status = p.wait_exit(WAIT).await.expect("plugin exits after SIGTERM");
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        p.log()
    );
    k.get()
        .wait_for(WAIT, |v| v.resources.values().all(|r| !r.streaming))
        .await
        .unwrap_or_else(|e| panic!("{e}; log:\n{}", p.log()));
    let left: Vec<_> = std::fs::read_dir(k.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "kubelet.sock")
        .collect();
    assert!(left.is_empty(), "sockets left behind: {left:?}");
}

#[tokio::test]
async fn missing_socket_directory_is_a_clear_start_up_error() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("nope/kubelet.sock");
    let mut p = Plugin::simulated(&dgx(), &socket, &[]);
    let status = p.wait_exit(WAIT).await.expect("plugin exits");
    assert_eq!(status.code(), Some(1));
    assert!(
        p.log().contains("kubelet socket directory"),
        "log:\n{}",
        p.log()
    );
}
