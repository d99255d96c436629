//! The plugin binary's metrics endpoint: readiness follows registration and
//! NVML state, and the RPC counters move with the kubelet's calls.

mod support;

use gpu_device_plugin::v1beta1::{
    AllocateRequest, ContainerAllocateRequest, ContainerPreferredAllocationRequest,
    PreferredAllocationRequest,
};
use support::http::{get, metrics_address, wait_status};
use support::kubelet::FakeKubelet;
use support::process::Plugin;
use support::{WAIT, repo_file};

const METRICS: [&str; 2] = ["--metrics-address", "127.0.0.1:0"];

fn has(text: &str, line: &str) -> bool {
    text.lines().any(|l| l == line)
}

#[tokio::test]
async fn readyz_is_503_until_registered_then_200() {
    let mut k = FakeKubelet::absent();
    let p = Plugin::simulated(
        &repo_file("config/nodes/dgx-a100.yaml"),
        &k.socket(),
        &METRICS,
    );
    let addr = metrics_address(&p).await;
    assert_eq!(get(addr, "/healthz").await.0, 200);
    // Wait until the resource is served (planned), with no kubelet around.
    let sock = k.path().join("nvidia-gpu.sock");
    let deadline = std::time::Instant::now() + WAIT;
    while !sock.exists() {
        assert!(std::time::Instant::now() < deadline, "log:\n{}", p.log());
        tokio::time::sleep(std::time::Duration::from_millis(5)).await; // poll, bounded by WAIT
    }
    let (code, body) = get(addr, "/readyz").await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("nvidia.com/gpu is not registered"), "{body}");

    k.start_now();
    wait_status(addr, "/readyz", 200).await;
    assert_eq!(get(addr, "/healthz").await.0, 200);
}

#[tokio::test]
async fn rpc_counters_move_after_allocate() {
    let k = FakeKubelet::start();
    let p = Plugin::simulated(
        &repo_file("config/nodes/dgx-a100.yaml"),
        &k.socket(),
        &METRICS,
    );
    let addr = metrics_address(&p).await;
    let view = k
        .wait_resource(&p, "nvidia.com/gpu", |r| r.updates > 0)
        .await;
    let ids: Vec<String> = view.resources["nvidia.com/gpu"]
        .devices
        .iter()
        .map(|d| d.id.clone())
        .collect();
    let before = wait_status(addr, "/readyz", 200).await;
    assert_eq!(before, "ok\n");
    let (_, text) = get(addr, "/metrics").await;
    let allocs =
        r#"gpu_device_plugin_rpc_requests_total{resource="nvidia.com/gpu",method="Allocate"}"#;
    assert!(has(&text, &format!("{allocs} 0")), "{text}");

    let mut client = k.get().client("nvidia.com/gpu").await.unwrap();
    client
        .get_preferred_allocation(PreferredAllocationRequest {
            container_requests: vec![ContainerPreferredAllocationRequest {
                available_device_i_ds: ids.clone(),
                must_include_device_i_ds: vec![],
                allocation_size: 2,
            }],
        })
        .await
        .unwrap();
    client
        .allocate(AllocateRequest {
            container_requests: vec![ContainerAllocateRequest {
                devices_ids: vec![ids[0].clone()],
            }],
        })
        .await
        .unwrap();
    let refused = client
        .allocate(AllocateRequest {
            container_requests: vec![ContainerAllocateRequest {
                devices_ids: vec!["GPU-nope".into()],
            }],
        })
        .await;
    assert!(refused.is_err());

    let (code, text) = get(addr, "/metrics").await;
    assert_eq!(code, 200);
    for line in [
        format!("{allocs} 2"),
        r#"gpu_device_plugin_rpc_errors_total{resource="nvidia.com/gpu",method="Allocate"} 1"#.into(),
        r#"gpu_device_plugin_rpc_requests_total{resource="nvidia.com/gpu",method="GetPreferredAllocation"} 1"#.into(),
        r#"gpu_device_plugin_rpc_duration_seconds_count{resource="nvidia.com/gpu",method="Allocate"} 2"#.into(),
        r#"gpu_device_plugin_devices{resource="nvidia.com/gpu",health="healthy"} 8"#.into(),
        r#"gpu_device_plugin_list_and_watch_streams{resource="nvidia.com/gpu"} 1"#.into(),
        r#"gpu_device_plugin_registrations_total{resource="nvidia.com/gpu"} 1"#.into(),
        r#"gpu_device_plugin_build_info{version="0.1.0"} 1"#.into(),
    ] {
        assert!(has(&text, &line), "missing {line:?} in:\n{text}");
    }
}

#[tokio::test]
async fn readyz_is_503_and_healthz_200_when_nvml_fails() {
    let k = FakeKubelet::start();
    let socket = k.socket().display().to_string();
    let mut args = vec!["--kubelet-socket", &socket];
    args.extend(METRICS);
    let p = Plugin::start(&args, &[("FAIL_ON_INIT_ERROR", "false")]);
    let addr = metrics_address(&p).await;
    let deadline = std::time::Instant::now() + WAIT;
    while !p.log().contains("advertising no devices") {
        assert!(std::time::Instant::now() < deadline, "log:\n{}", p.log());
        tokio::time::sleep(std::time::Duration::from_millis(5)).await; // poll the log, bounded by WAIT
    }
    let (code, body) = get(addr, "/readyz").await;
    assert_eq!(code, 503);
    assert!(body.contains("NVML"), "{body}");
    assert_eq!(get(addr, "/healthz").await.0, 200);
}
