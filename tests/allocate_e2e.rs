//! Allocate, GetPreferredAllocation and PreStartContainer over the wire, and
//! the fail-on-init-error behaviour without a driver.

mod support;

use gpu_device_plugin::v1beta1::{
    AllocateRequest, ContainerAllocateRequest, ContainerAllocateResponse,
    ContainerPreferredAllocationRequest, PreStartContainerRequest, PreferredAllocationRequest,
};
use support::kubelet::FakeKubelet;
use support::process::Plugin;
use support::{WAIT, repo_file};

/// Starts the plugin on `node` with `args`, waits for `resource`, returns the
/// kubelet, the plugin and the advertised IDs of `resource` in order.
async fn start(node: &str, args: &[&str], resource: &str) -> (FakeKubelet, Plugin, Vec<String>) {
    let k = FakeKubelet::start();
    let p = Plugin::simulated(
        &repo_file(&format!("config/nodes/{node}.yaml")),
        &k.socket(),
        args,
    );
    let view = k
        .get()
        .wait_for(WAIT, |v| {
            v.resources
                .get(resource)
                .is_some_and(|r| !r.devices.is_empty())
        })
        .await
        .unwrap_or_else(|e| panic!("{e}; log:\n{}", p.log()));
    let ids = view.resources[resource]
        .devices
        .iter()
        .map(|d| d.id.clone())
        .collect();
    (k, p, ids)
}

async fn allocate(
    k: &FakeKubelet,
    resource: &str,
    ids: &[String],
) -> Result<ContainerAllocateResponse, tonic::Status> {
    let mut client = k.get().client(resource).await?;
    let resp = client
        .allocate(AllocateRequest {
            container_requests: vec![ContainerAllocateRequest {
                devices_ids: ids.to_vec(),
            }],
        })
        .await?
        .into_inner();
    assert_eq!(resp.container_responses.len(), 1);
    Ok(resp.container_responses.into_iter().next().unwrap())
}

#[tokio::test]
async fn envvar_lists_uuids_in_request_order() {
    let (k, _p, ids) = start("dgx-a100", &[], "nvidia.com/gpu").await;
    let req = vec![ids[3].clone(), ids[1].clone()];
    let resp = allocate(&k, "nvidia.com/gpu", &req).await.unwrap();
    assert_eq!(
        resp.envs["NVIDIA_VISIBLE_DEVICES"],
        format!("{},{}", ids[3], ids[1])
    );
    assert!(resp.mounts.is_empty() && resp.devices.is_empty());
}

#[tokio::test]
async fn index_strategy_sends_gpu_and_mig_indices() {
    let (k, _p, ids) = start(
        "h100-mig",
        &["--mig-strategy", "mixed", "--device-id-strategy", "index"],
        "nvidia.com/mig-3g.40gb",
    )
    .await;
    let resp = allocate(&k, "nvidia.com/mig-3g.40gb", &ids).await.unwrap();
    assert_eq!(resp.envs["NVIDIA_VISIBLE_DEVICES"], "0:0");
}

#[tokio::test]
async fn volume_mounts_and_device_specs_together() {
    let (k, _p, ids) = start(
        "h100-mig",
        &[
            "--mig-strategy",
            "mixed",
            "--device-list-strategy",
            "volume-mounts",
            "--pass-device-specs",
            "--dev-root",
            "/host",
        ],
        "nvidia.com/mig-2g.20gb",
    )
    .await;
    let resp = allocate(&k, "nvidia.com/mig-2g.20gb", &ids).await.unwrap();
    assert_eq!(
        resp.envs["NVIDIA_VISIBLE_DEVICES"],
        "/var/run/nvidia-container-devices"
    );
    assert_eq!(resp.mounts.len(), 1);
    assert_eq!(
        resp.mounts[0].container_path,
        format!("/var/run/nvidia-container-devices/{}", ids[0])
    );
    assert_eq!(resp.mounts[0].host_path, "/dev/null");
    // GPU 0's device node, then its GI 3 / CI 0 capability nodes (driver minor table).
    let specs: Vec<(&str, &str)> = resp
        .devices
        .iter()
        .map(|d| (d.container_path.as_str(), d.host_path.as_str()))
        .collect();
    let tail = &specs[specs.len() - 3..];
    assert_eq!(
        tail,
        [
            ("/dev/nvidia0", "/host/dev/nvidia0"),
            (
                "/dev/nvidia-caps/nvidia-cap30",
                "/host/dev/nvidia-caps/nvidia-cap30"
            ),
            (
                "/dev/nvidia-caps/nvidia-cap31",
                "/host/dev/nvidia-caps/nvidia-cap31"
            ),
        ]
    );
    assert!(resp.devices.iter().all(|d| d.permissions == "rw"));
}

#[tokio::test]
async fn unknown_device_is_invalid_argument_with_nvidias_message() {
    let (k, _p, ids) = start("dgx-a100", &[], "nvidia.com/gpu").await;
    let err = allocate(&k, "nvidia.com/gpu", &[ids[0].clone(), "GPU-nope".into()])
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        err.message(),
        "invalid allocation request for \"nvidia.com/gpu\": invalid request: unknown device: GPU-nope"
    );
}

#[tokio::test]
async fn preferred_allocation_honours_must_include_and_size_on_one_numa_node() {
    let (k, _p, ids) = start("dgx-a100", &[], "nvidia.com/gpu").await;
    let mut client = k.get().client("nvidia.com/gpu").await.unwrap();
    // GPU 5 is on NUMA node 1 with GPUs 4, 6, 7.
    let resp = client
        .get_preferred_allocation(PreferredAllocationRequest {
            container_requests: vec![ContainerPreferredAllocationRequest {
                available_device_i_ds: ids.clone(),
                must_include_device_i_ds: vec![ids[5].clone()],
                allocation_size: 3,
            }],
        })
        .await
        .unwrap()
        .into_inner();
    let chosen = &resp.container_responses[0].device_i_ds;
    assert_eq!(chosen.len(), 3);
    assert!(chosen.contains(&ids[5]));
    for id in chosen {
        let pos = ids.iter().position(|i| i == id).unwrap();
        assert!(
            (4..8).contains(&pos),
            "GPU {pos} is not on NUMA node 1: {chosen:?}"
        );
    }
}

#[tokio::test]
async fn pre_start_container_answers_empty() {
    let (k, _p, ids) = start("workstation", &[], "nvidia.com/gpu").await;
    let mut client = k.get().client("nvidia.com/gpu").await.unwrap();
    client
        .pre_start_container(PreStartContainerRequest { devices_ids: ids })
        .await
        .unwrap();
}

#[tokio::test]
async fn without_a_driver_fail_on_init_error_exits_one_with_what_to_check() {
    let k = FakeKubelet::start();
    let socket = k.socket().display().to_string();
    let mut p = Plugin::start(
        &[
            "--kubelet-socket",
            &socket,
            "--driver-root-ctr-path",
            "/nonexistent",
        ],
        &[],
    );
    let status = p.wait_exit(WAIT).await.expect("plugin exits");
    assert_eq!(status.code(), Some(1));
    let log = p.log();
    assert!(
        log.contains("failed to initialize NVML") && log.contains("driver"),
        "log:\n{log}"
    );
}

#[tokio::test]
async fn without_a_driver_and_fail_on_init_error_false_it_keeps_running_with_nothing() {
    let k = FakeKubelet::start();
    let socket = k.socket().display().to_string();
    let mut p = Plugin::start(
        &["--kubelet-socket", &socket],
        &[("FAIL_ON_INIT_ERROR", "false")],
    );
    // Still running after the failed init: it answers SIGTERM with exit 0.
    let deadline = std::time::Instant::now() + WAIT;
    while !p.log().contains("advertising no devices") {
        assert!(std::time::Instant::now() < deadline, "log:\n{}", p.log());
        tokio::time::sleep(std::time::Duration::from_millis(5)).await; // poll the log, bounded by WAIT
    }
    p.signal("TERM");
    let status = p.wait_exit(WAIT).await.expect("plugin exits");
    assert!(status.success());
    assert!(k.get().view().registrations.is_empty());
}

#[tokio::test]
async fn preferred_whole_gpus_are_nvlink_connected_on_one_numa_node() {
    // dgx-a100: 0-1, 2-3, 4-5, 6-7 have 6 NVLinks, other pairs 2; 0-3 are NUMA node 0, 4-7 node 1.
    let (k, _p, ids) = start("dgx-a100", &[], "nvidia.com/gpu").await;
    let mut client = k.get().client("nvidia.com/gpu").await.unwrap();
    type Case = (&'static [usize], usize, &'static [&'static [usize]]);
    let cases: [Case; 4] = [
        (
            &[0, 1, 2, 3, 4, 5, 6, 7],
            2,
            &[&[0, 1], &[2, 3], &[4, 5], &[6, 7]],
        ),
        (&[0, 2, 3, 5, 6, 7], 2, &[&[2, 3], &[6, 7]]),
        (
            &[0, 1, 2, 3, 4, 5, 6, 7],
            4,
            &[&[0, 1, 2, 3], &[4, 5, 6, 7]],
        ),
        (&[1, 2, 3, 4, 5, 6, 7], 4, &[&[4, 5, 6, 7]]),
    ];
    for (available, size, acceptable) in cases {
        let resp = client
            .get_preferred_allocation(PreferredAllocationRequest {
                container_requests: vec![ContainerPreferredAllocationRequest {
                    available_device_i_ds: available.iter().map(|&i| ids[i].clone()).collect(),
                    must_include_device_i_ds: vec![],
                    allocation_size: size as i32,
                }],
            })
            .await
            .unwrap()
            .into_inner();
        let mut got: Vec<usize> = resp.container_responses[0]
            .device_i_ds
            .iter()
            .map(|id| ids.iter().position(|i| i == id).unwrap())
            .collect();
        got.sort();
        assert!(
            acceptable.contains(&got.as_slice()),
            "available {available:?} size {size}: got {got:?}"
        );
    }
}
