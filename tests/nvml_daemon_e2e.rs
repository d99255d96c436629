//! The daemon with the real NVML backend, loading the fake driver
//! (`tests/fake-nvml`) from a staged driver root, against the fake kubelet:
//! it advertises exactly what the simulated backend advertises for the same
//! node file, NUMA comes through the sysfs path, XIDs arrive through the real
//! event loop, and a failing event loop takes every device down.

mod nvml_support;
mod support;

use nvml_support::Stage;
use support::expected::{assert_sees, expected};
use support::kubelet::FakeKubelet;
use support::process::Plugin;
use support::{WAIT, repo_file};

const NODES: [&str; 4] = ["dgx-a100", "h100-mig", "a100-mig-single", "workstation"];

fn start(stage: &Stage, k: &FakeKubelet, extra: &[&str], env: &[(&str, &str)]) -> Plugin {
    start_at(stage, &stage.paths.driver_root(), k, extra, env)
}

/// As `start`, with the driver root at `driver_root`.
fn start_at(
    stage: &Stage,
    driver_root: &std::path::Path,
    k: &FakeKubelet,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Plugin {
    let socket = k.socket().display().to_string();
    let driver_root = driver_root.display().to_string();
    let sys_root = stage.paths.sys_root().display().to_string();
    let node = stage.paths.node().display().to_string();
    let mut args = vec![
        "--kubelet-socket",
        &socket,
        "--driver-root-ctr-path",
        &driver_root,
        "--sysfs-root",
        &sys_root,
    ];
    args.extend_from_slice(extra);
    let mut envs = vec![("FAKE_NVML_NODE", node.as_str())];
    envs.extend_from_slice(env);
    Plugin::start(&args, &envs)
}

#[tokio::test]
async fn nvml_and_simulated_backends_advertise_the_same_devices_for_every_node_and_strategy() {
    for node in NODES {
        let path = repo_file(&format!("config/nodes/{node}.yaml"));
        let stage = Stage::new(&std::fs::read_to_string(&path).unwrap());
        for strategy in ["none", "single", "mixed"] {
            if node == "h100-mig" && strategy == "single" {
                continue; // refused by both backends (devices_e2e covers the error)
            }
            let want = expected(&path, strategy);
            let k = FakeKubelet::start();
            let p = start(&stage, &k, &["--mig-strategy", strategy], &[]);
            assert_sees(&k, &p, &want, &format!("{node}/{strategy}")).await;
            assert!(
                p.log().contains("NVML initialised"),
                "{node}/{strategy}: log:\n{}",
                p.log()
            );
        }
    }
}

#[tokio::test]
async fn an_xid_reaches_the_kubelet_through_the_nvml_event_loop() {
    let text = std::fs::read_to_string(repo_file("config/nodes/dgx-a100.yaml")).unwrap();
    let stage = Stage::new(&text);
    let k = FakeKubelet::start();
    let p = start(&stage, &k, &[], &[]);
    let view = k
        .wait_resource(&p, "nvidia.com/gpu", |r| r.healthy() == 8)
        .await;
    let gpu3 = view.resources["nvidia.com/gpu"].devices[3].id.clone();
    let edited = text.replacen(
        &format!("    uuid: {gpu3}\n"),
        &format!("    uuid: {gpu3}\n    xids: [48]\n"),
        1,
    );
    stage.paths.write_node(&edited);
    let view = k
        .get()
        .wait_for(WAIT, |v| v.resources["nvidia.com/gpu"].healthy() == 7)
        .await
        .unwrap_or_else(|e| panic!("{e}; log:\n{}", p.log()));
    let down: Vec<&str> = view.resources["nvidia.com/gpu"]
        .devices
        .iter()
        .filter(|d| d.health != "Healthy")
        .map(|d| d.id.as_str())
        .collect();
    assert_eq!(down, [gpu3.as_str()]);
}

#[tokio::test]
async fn a_failing_nvml_event_loop_takes_every_device_down() {
    let text = std::fs::read_to_string(repo_file("config/nodes/h100-mig.yaml")).unwrap();
    let stage = Stage::new(&text);
    let k = FakeKubelet::start();
    // nvmlEventSetWait fails with NVML_ERROR_UNKNOWN on every call.
    let p = start(
        &stage,
        &k,
        &["--mig-strategy", "mixed"],
        &[("FAKE_NVML_EVENT_WAIT_ERROR", "999")],
    );
    k.get()
        .wait_for(WAIT, |v| {
            v.resources.len() == 6
                && v.resources
                    .values()
                    .all(|r| !r.devices.is_empty() && r.healthy() == 0)
        })
        .await
        .unwrap_or_else(|e| panic!("{e}; log:\n{}", p.log()));
    assert!(
        p.log().contains("every device is now unhealthy"),
        "log:\n{}",
        p.log()
    );
}

#[tokio::test]
async fn fail_on_init_error_true_exits_one_for_every_driver_failure() {
    let text = std::fs::read_to_string(repo_file("config/nodes/workstation.yaml")).unwrap();
    let stage = Stage::new(&text);
    let empty_root = tempfile::tempdir().unwrap();
    // (what fails, driver root, env)
    type Case<'a> = (&'a str, std::path::PathBuf, &'a [(&'a str, &'a str)]);
    let cases: [Case; 3] = [
        (
            "no library under the driver root",
            empty_root.path().to_path_buf(),
            &[],
        ),
        (
            "driver not loaded",
            stage.paths.driver_root(),
            &[("FAKE_NVML_INIT_ERROR", "9")],
        ),
        (
            "driver/library version mismatch",
            stage.paths.driver_root(),
            &[("FAKE_NVML_INIT_ERROR", "18")],
        ),
    ];
    for (what, root, env) in cases {
        let k = FakeKubelet::start();
        let mut p = start_at(&stage, &root, &k, &[], env);
        let status = p
            .wait_exit(WAIT)
            .await
            .unwrap_or_else(|| panic!("{what}: still running"));
        assert_eq!(status.code(), Some(1), "{what}: log:\n{}", p.log());
        assert!(
            p.log().contains("failed to initialize NVML"),
            "{what}: log:\n{}",
            p.log()
        );
        assert!(k.get().view().registrations.is_empty(), "{what}");
    }
}

#[tokio::test]
async fn fail_on_init_error_false_keeps_running_and_retrying() {
    let text = std::fs::read_to_string(repo_file("config/nodes/workstation.yaml")).unwrap();
    let stage = Stage::new(&text);
    let k = FakeKubelet::start();
    let mut p = start(
        &stage,
        &k,
        &["--fail-on-init-error=false"],
        &[("FAKE_NVML_INIT_ERROR", "18")],
    );
    let deadline = std::time::Instant::now() + WAIT;
    while !p.log().contains("advertising no devices") {
        assert!(std::time::Instant::now() < deadline, "log:\n{}", p.log());
        tokio::time::sleep(std::time::Duration::from_millis(5)).await; // poll the log, bounded by WAIT
    }
    p.signal("TERM");
    let status = p.wait_exit(WAIT).await.expect("exits on SIGTERM");
    assert!(status.success(), "log:\n{}", p.log());
    assert!(k.get().view().registrations.is_empty());
}
