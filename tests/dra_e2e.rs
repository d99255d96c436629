//! The daemon as a DRA kubelet plugin, against real parts: the
//! kube-apiserver bundle (`KUBE_APISERVER_BUNDLE`) and the kubelet's own DRA
//! manager, plugin watcher and the scheduler's structured allocator
//! (`draharness`, `DRA_HARNESS`). Each test runs the daemon with `--dra` on a
//! simulated node of its own name and checks what the harness reports, or
//! how the published ResourceSlices change.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::dra::{DraNode, names};

/// The issue's bound for a slice to follow an inventory change.
const CHANGE: Duration = Duration::from_secs(1);
/// Generous bound for the first publication on a loaded machine.
const FIRST: Duration = Duration::from_secs(30);

const PRODUCT: &str =
    r#"selector=device.attributes["gpu.nvidia.com"].productName == "NVIDIA A100-SXM4-80GB""#;

#[tokio::test(flavor = "multi_thread")]
async fn one_gpu_is_allocated_prepared_and_unprepared_on_the_dgx_node() {
    let Some(n) = DraNode::start("dra one gpu", "dra-dgx-1", "dgx-a100", &[]) else {
        return;
    };
    let out = n.run_ok("check", &["-claim", "count=1"], 5);
    assert!(
        out.contains("kubelet chose gRPC service v1.DRAPlugin"),
        "{out}"
    );
    assert!(
        out.contains("published 1 ResourceSlice(s) with 8 device(s)"),
        "{out}"
    );
    assert!(
        out.contains("cdiDeviceIDs=[\"k8s.gpu.nvidia.com/claim="),
        "{out}"
    );
    // Unprepare removed the claim's spec.
    let left: Vec<_> = std::fs::read_dir(n.cdi_root())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("claim_"))
        .collect();
    assert!(left.is_empty(), "claim specs left: {left:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_gpus_and_a_product_name_selector_are_allocated_and_prepared() {
    let Some(n) = DraNode::start("dra two gpus", "dra-dgx-2", "dgx-a100", &[]) else {
        return;
    };
    let product = format!("count=1,{PRODUCT}");
    let out = n.run_ok("check", &["-claim", "count=2", "-claim", &product], 7);
    assert!(
        out.contains(
            "allocated [gpu: gpu.nvidia.com/dra-dgx-2/gpu-0, gpu: gpu.nvidia.com/dra-dgx-2/gpu-1]"
        ),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mig_profile_selector_gets_a_mig_device_on_the_h100_node() {
    let Some(n) = DraNode::start("dra mig", "dra-h100-1", "h100-mig", &[]) else {
        return;
    };
    let claim = r#"count=1,selector=device.attributes["gpu.nvidia.com"].profile == "1g.10gb""#;
    let out = n.run_ok("check", &["-claim", claim], 5);
    assert!(
        out.contains("/dra-h100-1/gpu-0-mig-9-0]"),
        "the first 1g.10gb device: {out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_prepared_claim_survives_three_kubelet_restarts_and_is_unprepared() {
    let Some(n) = DraNode::start("dra restart", "dra-dgx-3", "dgx-a100", &[]) else {
        return;
    };
    let out = n.run_ok("restart", &["-n", "3", "-claim", "count=1"], 8);
    assert!(out.contains("restart 3: re-registered"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_opaque_config_fails_the_claim_with_a_clear_error() {
    let Some(n) = DraNode::start("dra opaque", "dra-dgx-4", "dgx-a100", &[]) else {
        return;
    };
    let file = tempfile::NamedTempFile::new().unwrap();
    let claim = r#"apiVersion: resource.k8s.io/v1
kind: ResourceClaim
metadata:
  name: bad-config
spec:
  devices:
    requests:
    - name: gpu
      exactly:
        deviceClassName: gpu.nvidia.com
    config:
    - opaque:
        driver: gpu.nvidia.com
        parameters:
          apiVersion: resource.nvidia.com/v1beta1
          kind: TimeTravelConfig
"#;
    std::fs::write(file.path(), claim).unwrap();
    let class = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        class.path(),
        "apiVersion: resource.k8s.io/v1\nkind: DeviceClass\nmetadata:\n  name: gpu.nvidia.com\nspec:\n  selectors:\n  - cel:\n      expression: device.driver == \"gpu.nvidia.com\"\n---\n",
    )
    .unwrap();
    let both = format!(
        "{}{}",
        std::fs::read_to_string(class.path()).unwrap(),
        claim
    );
    std::fs::write(file.path(), both).unwrap();
    let run = n.run(
        "check",
        &["-claims-file", &file.path().display().to_string()],
    );
    assert_eq!(run.code, Some(1), "{}", run.output);
    assert!(
        run.output.contains("unknown kind \\\"TimeTravelConfig\\\"")
            || run.output.contains("unknown kind \"TimeTravelConfig\""),
        "the claim's error names the kind:\n{}",
        run.output
    );
}

fn device<'a>(devices: &'a [Value], name: &str) -> Option<&'a Value> {
    devices.iter().find(|d| d["name"] == name)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_xid_taints_the_device_in_its_slice() {
    let Some(n) = DraNode::start("dra xid", "dra-dgx-5", "dgx-a100", &[]) else {
        return;
    };
    n.wait_devices(FIRST, |d| d.len() == 8);
    let uuid = "GPU-eca881aa-ab52-9816-346a-6510f5a5ca72"; // GPU 2
    n.edit_node(|t| {
        t.replacen(
            &format!("    uuid: {uuid}\n"),
            &format!("    uuid: {uuid}\n    xids: [79]\n"),
            1,
        )
    });
    let devices = n.wait_devices(CHANGE, |d| {
        device(d, "gpu-2").is_some_and(|g| g.get("taints").is_some())
    });
    let taints = &device(&devices, "gpu-2").unwrap()["taints"][0];
    assert_eq!(taints["key"], "gpu.nvidia.com/unhealthy");
    assert_eq!(taints["effect"], "NoSchedule");
    assert!(device(&devices, "gpu-1").unwrap().get("taints").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_gpu_leaves_the_slice_and_the_pool_generation_goes_up() {
    let Some(n) = DraNode::start("dra lost", "dra-dgx-6", "dgx-a100", &[]) else {
        return;
    };
    n.wait_devices(FIRST, |d| d.len() == 8);
    let before = n.slices()[0]["spec"]["pool"]["generation"]
        .as_i64()
        .unwrap();
    let uuid = "GPU-1c572759-727b-5041-4f10-e3b30f6db127"; // GPU 3
    n.edit_node(|t| {
        t.replacen(
            &format!("    uuid: {uuid}\n"),
            &format!("    uuid: {uuid}\n    lost: true\n"),
            1,
        )
    });
    let devices = n.wait_devices(CHANGE, |d| d.len() == 7);
    assert!(!names(&devices).contains(&"gpu-3".to_string()));
    let after = n.slices()[0]["spec"]["pool"]["generation"]
        .as_i64()
        .unwrap();
    assert!(after > before, "generation {before} → {after}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mig_repartition_changes_the_slice() {
    let Some(n) = DraNode::start("dra repartition", "dra-h100-2", "h100-mig", &[]) else {
        return;
    };
    n.wait_devices(FIRST, |d| device(d, "gpu-2-mig-0-0").is_some());
    // GPU 2: its one 7g.80gb instance becomes a 3g.40gb one.
    n.edit_node(|t| {
        t.replace(
            "{uuid: MIG-00c07142-abb1-984b-0d72-2820d1c8732a, profile: 7g.80gb, gpuInstanceId: 0, computeInstanceId: 0, memoryMiB: 80896}",
            "{uuid: MIG-0f0f0f0f-1111-2222-3333-444444444444, profile: 3g.40gb, gpuInstanceId: 1, computeInstanceId: 0, memoryMiB: 40192}",
        )
    });
    let devices = n.wait_devices(CHANGE, |d| {
        device(d, "gpu-2-mig-0-0").is_none() && device(d, "gpu-2-mig-1-0").is_some()
    });
    let new = device(&devices, "gpu-2-mig-1-0").unwrap();
    assert_eq!(new["attributes"]["profile"]["string"], "3g.40gb");
    assert_eq!(
        new["attributes"]["uuid"]["string"],
        "MIG-0f0f0f0f-1111-2222-3333-444444444444"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn gpus_given_to_dra_are_not_advertised_by_the_device_plugin() {
    let Some(n) = DraNode::start(
        "dra owner",
        "dra-dgx-7",
        "dgx-a100",
        &["--dra-devices", "0,1", "--metrics-address", "127.0.0.1:0"],
    ) else {
        return;
    };
    let devices = n.wait_devices(FIRST, |d| d.len() == 2);
    assert_eq!(names(&devices), ["gpu-0", "gpu-1"]);
    let view = n.kubelet.wait_devices(&n.plugin, "nvidia.com/gpu", 6).await;
    let ids: Vec<&str> = view.resources["nvidia.com/gpu"]
        .devices
        .iter()
        .map(|d| d.id.as_str())
        .collect();
    for d in &devices {
        let uuid = d["attributes"]["uuid"]["string"].as_str().unwrap();
        assert!(!ids.contains(&uuid), "{uuid} is served by both: {ids:?}");
    }
    // /metrics says who serves each GPU.
    let addr = support::http::metrics_address(&n.plugin).await;
    let text = support::http::wait_scrape(addr, "gpu_owner", |t| t.contains("gpu_owner{")).await;
    let owner = |uuid: &str, who: &str| {
        support::http::metric(
            &text,
            &format!("gpu_device_plugin_gpu_owner{{uuid=\"{uuid}\",owner=\"{who}\"}}"),
        )
    };
    let gpu0 = devices[0]["attributes"]["uuid"]["string"].as_str().unwrap();
    assert_eq!(owner(gpu0, "dra"), Some(1.0), "{text}");
    assert_eq!(owner(ids[0], "device-plugin"), Some(1.0), "{text}");
    let owned = text
        .lines()
        .filter(|l| l.starts_with("gpu_device_plugin_gpu_owner{"))
        .count();
    assert_eq!(owned, 8, "{text}");
    // `inspect` with the plugin's metrics address says the same.
    let kubelet_socket = n.kubelet.socket();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(support::process::BIN)
            .arg("inspect")
            .arg("--kubelet-socket")
            .arg(kubelet_socket)
            .args(["--metrics-address", &addr.to_string()])
            .output()
            .expect("inspect runs")
    })
    .await
    .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    let dra_line = table
        .lines()
        .find_map(|l| l.strip_prefix("  GPUs served by dra: "))
        .unwrap_or_else(|| panic!("no DRA line: {table}"));
    let mut listed: Vec<&str> = dra_line.split(", ").collect();
    listed.sort();
    let mut want: Vec<&str> = devices
        .iter()
        .map(|d| d["attributes"]["uuid"]["string"].as_str().unwrap())
        .collect();
    want.sort();
    assert_eq!(listed, want, "{table}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_device_of_a_prepared_claim_is_tainted_by_an_xid() {
    let Some(n) = DraNode::start("dra claimed xid", "dra-dgx-11", "dgx-a100", &[]) else {
        return;
    };
    let out = n.run_ok("check", &["-keep", "-claim", "count=1"], 4);
    let claimed = out
        .split("allocated [gpu: gpu.nvidia.com/dra-dgx-11/")
        .nth(1)
        .and_then(|s| s.split(']').next())
        .unwrap_or_else(|| panic!("no allocation in: {out}"))
        .to_string();
    let devices = n.devices();
    let uuid = device_uuid(&devices, &claimed);
    n.edit_node(|t| {
        t.replacen(
            &format!("    uuid: {uuid}\n"),
            &format!("    uuid: {uuid}\n    xids: [79]\n"),
            1,
        )
    });
    let devices = n.wait_devices(CHANGE, |d| {
        device(d, &claimed).is_some_and(|g| g.get("taints").is_some())
    });
    let tainted: Vec<String> = devices
        .iter()
        .filter(|d| d.get("taints").is_some())
        .filter_map(|d| d["name"].as_str().map(str::to_string))
        .collect();
    assert_eq!(tainted, [claimed]);
}

fn device_uuid(devices: &[Value], name: &str) -> String {
    device(devices, name)
        .and_then(|d| d["attributes"]["uuid"]["string"].as_str())
        .unwrap_or_else(|| panic!("{name} not in {devices:?}"))
        .to_string()
}
