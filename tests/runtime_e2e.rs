//! The runtime on the bad day, end to end with the binary: a rescan is not
//! postponed by a stream of unrelated socket-directory events, SIGHUP right
//! after start with no driver does not end the plugin, a live socket of
//! another process is never taken over, and a missing kubelet socket is
//! reported naming its path.

mod nvml_support;
mod support;

use std::time::{Duration, Instant};

use nvml_support::Stage;
use support::WAIT;
use support::http::{get, metrics_address, wait_metric};
use support::kubelet::FakeKubelet;
use support::process::Plugin;

const TWO_GPUS: &str = "driverVersion: \"550.54.15\"
gpus:
  - index: 0
    uuid: GPU-11111111-1111-1111-1111-111111111111
    name: NVIDIA L4
    memoryMiB: 23034
    pciBusId: \"0000:01:00.0\"
    computeCapability: \"8.9\"
  - index: 1
    uuid: GPU-22222222-2222-2222-2222-222222222222
    name: NVIDIA L4
    memoryMiB: 23034
    pciBusId: \"0000:02:00.0\"
    computeCapability: \"8.9\"
";

/// Whether the process `pid` is alive (not exited, not a zombie).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat.rsplit_once(") ")?.1.chars().next()?;
            Some(state != 'Z' && state != 'X')
        })
        .unwrap_or(false)
}

fn nvml_args(stage: &Stage, k: &FakeKubelet) -> Vec<String> {
    vec![
        "--kubelet-socket".into(),
        k.socket().display().to_string(),
        "--driver-root-ctr-path".into(),
        stage.paths.driver_root().display().to_string(),
        "--sysfs-root".into(),
        stage.paths.sys_root().display().to_string(),
    ]
}

#[tokio::test]
async fn a_stream_of_socket_directory_events_does_not_postpone_a_rescan() {
    let stage = Stage::new(TWO_GPUS);
    let k = FakeKubelet::start();
    let mut args = nvml_args(&stage, &k);
    args.extend(["--rescan-interval".into(), "1s".into()]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let node = stage.paths.node().display().to_string();
    let p = Plugin::start(&refs, &[("FAKE_NVML_NODE", node.as_str())]);
    k.wait_devices(&p, "nvidia.com/gpu", 2).await;

    // The kubelet rewrites its checkpoint in the socket directory this often.
    let dir = k.path().to_path_buf();
    let churn = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(300));
        loop {
            tick.tick().await;
            let tmp = dir.join(".checkpoint.tmp");
            let _ = std::fs::write(&tmp, b"{}");
            let _ = std::fs::rename(&tmp, dir.join("kubelet_internal_checkpoint"));
        }
    });
    let one_gpu = TWO_GPUS
        .split("  - index: 1")
        .next()
        .expect("two entries")
        .to_string();
    let removed = Instant::now();
    stage.paths.write_node(&one_gpu);
    k.wait_devices(&p, "nvidia.com/gpu", 1).await;
    println!(
        "GPU removed -> applied by the rescan: {:?}",
        removed.elapsed()
    );
    churn.abort();
}

#[tokio::test]
async fn sighup_right_after_start_without_a_driver_does_not_end_the_plugin() {
    let empty_root = tempfile::tempdir().unwrap();
    let k = FakeKubelet::start();
    let root = empty_root.path().display().to_string();
    let socket = k.socket().display().to_string();
    let p = Plugin::start(
        &[
            "--kubelet-socket",
            &socket,
            "--driver-root-ctr-path",
            &root,
            "--metrics-address",
            "127.0.0.1:0",
        ],
        &[("FAIL_ON_INIT_ERROR", "false")],
    );
    // The metrics server is up: the daemon is past its signal set-up and
    // is bringing the backend up (which fails: no driver).
    let addr = metrics_address(&p).await;
    p.signal("HUP");
    wait_metric(
        addr,
        "gpu_device_plugin_config_reloads_total{result=\"ok\"}",
        1.0,
    )
    .await;
    assert!(running(p.pid()), "the plugin ended; log:\n{}", p.log());
    assert_eq!(get(addr, "/healthz").await.0, 200);
    // Not ready: there is no driver, so nothing is advertised.
    let (code, body) = get(addr, "/readyz").await;
    assert_eq!(code, 503, "{body}");
}

#[tokio::test]
async fn a_socket_another_process_serves_is_not_taken_over() {
    let k = FakeKubelet::start();
    let theirs = k.path().join("nvidia-gpu.sock");
    let other = std::os::unix::net::UnixListener::bind(&theirs).unwrap();
    let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&theirs).unwrap());
    let node = support::repo_file("config/nodes/workstation.yaml");
    let p = Plugin::simulated(&node, &k.socket(), &["--metrics-address", "127.0.0.1:0"]);
    let addr = metrics_address(&p).await;
    // Planned, not served: not ready, naming the resource.
    let deadline = Instant::now() + WAIT;
    loop {
        let (code, body) = get(addr, "/readyz").await;
        if code == 503 && body.contains("nvidia.com/gpu") {
            break;
        }
        assert!(Instant::now() < deadline, "{code} {body}");
        tokio::time::sleep(Duration::from_millis(5)).await; // poll, bounded by WAIT
    }
    // The refusal names the socket; the other process keeps its socket.
    while !p.log().contains("nvidia-gpu.sock") {
        assert!(Instant::now() < deadline, "log:\n{}", p.log());
        tokio::time::sleep(Duration::from_millis(5)).await; // poll the log, bounded by WAIT
    }
    let now = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&theirs).unwrap());
    assert_eq!(now, ino, "the other process's socket was replaced");
    assert!(std::os::unix::net::UnixStream::connect(&theirs).is_ok());
    assert!(k.get().view().registrations.is_empty());
    // Once the other plugin is gone, ours serves and registers.
    drop(other);
    std::fs::remove_file(&theirs).unwrap();
    k.wait_devices(&p, "nvidia.com/gpu", 1).await;
}

#[tokio::test]
async fn a_missing_kubelet_socket_is_reported_with_its_path() {
    let k = FakeKubelet::absent();
    let node = support::repo_file("config/nodes/workstation.yaml");
    let p = Plugin::simulated(&node, &k.socket(), &[]);
    let want = format!("{}", k.socket().display());
    let deadline = Instant::now() + WAIT;
    loop {
        let log = p.log();
        if log
            .lines()
            .any(|l| l.contains("WARN") && l.contains("kubelet") && l.contains(&want))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no warning naming {want}; log:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await; // poll the log, bounded by WAIT
    }
}
