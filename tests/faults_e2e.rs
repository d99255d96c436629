//! One GPU's fault stays on that GPU, end to end with the binary: on the fake
//! NVML driver a GPU whose event registration (or any per-GPU call) fails is
//! the only one Unhealthy, in every list the kubelet ever saw; on the
//! simulated node `lost: true` takes only that GPU's devices out, and clearing
//! it brings them back.

mod nvml_support;
mod support;

use nvml_support::Stage;
use support::kubelet::FakeKubelet;
use support::process::Plugin;
use support::{WAIT, repo_file, write_atomic};

const GPU: &str = "nvidia.com/gpu";
const GPU1: &str = "GPU-84d0da3d-547f-c101-747c-3308b9ef6a48";

fn start_nvml(stage: &Stage, k: &FakeKubelet, env: &[(&str, &str)]) -> Plugin {
    let socket = k.socket().display().to_string();
    let root = stage.paths.driver_root().display().to_string();
    let sys = stage.paths.sys_root().display().to_string();
    let node = stage.paths.node().display().to_string();
    let mut envs = vec![("FAKE_NVML_NODE", node.as_str())];
    envs.extend_from_slice(env);
    Plugin::start(
        &[
            "--kubelet-socket",
            &socket,
            "--driver-root-ctr-path",
            &root,
            "--sysfs-root",
            &sys,
        ],
        &envs,
    )
}

#[tokio::test]
async fn one_gpu_failing_a_per_gpu_call_leaves_the_others_healthy_the_whole_time() {
    let text = std::fs::read_to_string(repo_file("config/nodes/dgx-a100.yaml")).unwrap();
    for call in [
        "nvmlDeviceGetSupportedEventTypes",
        "nvmlDeviceRegisterEvents",
        "nvmlDeviceGetMemoryInfo_v2",
    ] {
        let stage = Stage::new(&text);
        let k = FakeKubelet::start();
        let p = start_nvml(
            &stage,
            &k,
            &[("FAKE_NVML_LOST_GPU", "1"), ("FAKE_NVML_LOST_CALL", call)],
        );
        // GPU 1 is out (Unhealthy, or not advertised when it never answered
        // at all); the seven others are Healthy.
        let gpu1_out = |r: &devkit::kubelet::SeenResource| {
            r.devices.len() >= 7
                && r.healthy() == 7
                && r.devices
                    .iter()
                    .all(|d| (d.id == GPU1) != (d.health == "Healthy"))
        };
        let view = k
            .get()
            .wait_for(WAIT, |v| v.resources.get(GPU).is_some_and(gpu1_out))
            .await
            .unwrap_or_else(|e| panic!("{call}: {e}; log:\n{}", p.log()));
        assert!(
            view.resources[GPU].fewest_healthy >= Some(7),
            "{call}: the other GPUs stayed Healthy in every list: {:?}",
            view.resources[GPU].fewest_healthy
        );
    }
}

#[tokio::test]
async fn a_lost_gpu_on_the_simulated_node_takes_out_only_its_devices_until_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let node = dir.path().join("node.yaml");
    let text = std::fs::read_to_string(repo_file("config/nodes/dgx-a100.yaml")).unwrap();
    std::fs::write(&node, &text).unwrap();
    let k = FakeKubelet::start();
    let p = Plugin::simulated(&node, &k.socket(), &[]);
    k.wait_devices(&p, GPU, 8).await;
    let gpu2 = "    uuid: GPU-eca881aa-ab52-9816-346a-6510f5a5ca72\n";
    assert!(text.contains(gpu2));
    write_atomic(
        &node,
        &text.replacen(gpu2, &format!("{gpu2}    lost: true\n"), 1),
    );
    let view = k
        .wait_resource(&p, GPU, |r| r.devices.len() == 8 && r.healthy() == 7)
        .await;
    let bad: Vec<_> = view.resources[GPU]
        .devices
        .iter()
        .filter(|d| d.health != "Healthy")
        .map(|d| d.id.clone())
        .collect();
    assert_eq!(bad, ["GPU-eca881aa-ab52-9816-346a-6510f5a5ca72"]);
    write_atomic(&node, &text);
    let view = k.wait_resource(&p, GPU, |r| r.healthy() == 8).await;
    assert_eq!(view.resources[GPU].fewest_healthy, Some(7));
}
