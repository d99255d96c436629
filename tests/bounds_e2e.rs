//! Bounded input, through the real binary: a config asking for more replicas
//! than fit one ListAndWatch message is refused by the running plugin (the
//! last good config keeps serving, memory stays small) and by check-config.

mod support;

use std::path::Path;
use std::process::Command;

use support::http::{metrics_address, wait_metric};
use support::kubelet::FakeKubelet;
use support::process::{BIN, Plugin};
use support::{repo_file, write_atomic};

/// The chart's memory limit is 64 Mi; the plugin must stay well under it.
/// Measured on the debug build this test runs: 31.7 MiB before the DRA code
/// was linked in, 32.6–33.1 MiB after (with DRA off: the larger binary's
/// relocated data, not an allocation), hence 34 MiB.
const MAX_PEAK_RSS_KIB: u64 = 34 * 1024;

fn time_slicing(replicas: u32) -> String {
    format!(
        "version: v1\nsharing:\n  timeSlicing:\n    resources:\n    - name: nvidia.com/gpu\n      replicas: {replicas}\n"
    )
}

/// Peak resident set size (`VmHWM`) of a live process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc status")
}

#[tokio::test]
async fn the_running_plugin_keeps_the_last_good_config_with_little_memory() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, time_slicing(4)).unwrap();
    let k = FakeKubelet::start();
    let p = Plugin::simulated(
        &repo_file("config/nodes/dgx-a100.yaml"),
        &k.socket(),
        &[
            "--config-file",
            config.to_str().unwrap(),
            "--metrics-address",
            "127.0.0.1:0",
        ],
    );
    let before = k.wait_devices(&p, "nvidia.com/gpu", 32).await;

    write_atomic(&config, &time_slicing(2_000_000));
    let addr = metrics_address(&p).await;
    wait_metric(
        addr,
        "gpu_device_plugin_config_reloads_total{result=\"rejected\"}",
        1.0,
    )
    .await;

    assert_eq!(k.get().view(), before, "the kubelet saw nothing change");
    let gpu = &before.resources["nvidia.com/gpu"];
    assert!(gpu.streaming && gpu.registrations == 1, "{gpu:?}");
    let peak = peak_rss_kib(p.pid());
    println!("peak RSS after rejecting replicas: 2000000: {peak} KiB");
    assert!(peak < MAX_PEAK_RSS_KIB, "peak RSS {peak} KiB");
}

#[test]
fn check_config_exits_1_naming_the_limit_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, time_slicing(2_000_000)).unwrap();
    // 256 MiB of address space: building the 16 million devices would need
    // gigabytes, so an unbounded check aborts instead of reporting.
    let out = Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -v 262144 && exec "$0" check-config --simulate "$1" "$2""#)
        .arg(BIN)
        .arg(repo_file("config/nodes/dgx-a100.yaml"))
        .arg(Path::new(&config))
        .env_clear()
        .output()
        .expect("check-config runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for part in [
        "nvidia.com/gpu would advertise 16000000 devices",
        "limit of 4194304 bytes",
        "lower `replicas` for nvidia.com/gpu to at most 7960",
    ] {
        assert!(stdout.contains(part), "{part:?} in:\n{stdout}");
    }
}
