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

/// Removes the spec copy and the image when the podman test ends.
struct PodmanCleanup {
    podman: std::path::PathBuf,
    spec: std::path::PathBuf,
    image: String,
}

impl Drop for PodmanCleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.spec);
        let _ = std::process::Command::new(&self.podman)
            .args(["rmi", "-f", &self.image])
            .output();
    }
}

fn import_busybox(podman: &std::path::Path, image: &str) {
    let busybox = std::env::var("BUSYBOX").unwrap_or_else(|_| "/bin/busybox".into());
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("rootfs/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(&busybox, bin.join("busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", bin.join("sh")).unwrap();
    let tar = dir.path().join("rootfs.tar");
    let status = std::process::Command::new("tar")
        .arg("-C")
        .arg(dir.path().join("rootfs"))
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    let out = std::process::Command::new(podman)
        .arg("import")
        .arg(&tar)
        .arg(image)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "podman import: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn node_paths(edits: &Value) -> Vec<String> {
    edits["deviceNodes"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|n| n["path"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn podman_injects_the_cdi_devices_of_a_prepared_claim() {
    let Some(podman) = std::env::var_os("PODMAN").map(std::path::PathBuf::from) else {
        println!("not run: PODMAN is not set (.ci/run sets it to /usr/bin/podman)");
        return;
    };
    assert!(
        podman.is_file(),
        "PODMAN={} does not exist",
        podman.display()
    );
    let Some(n) = DraNode::start("dra podman", "dra-dgx-8", "dgx-a100", &[]) else {
        return;
    };
    // -keep: the claim stays prepared, its spec on disk.
    let out = n.run_ok("check", &["-keep", "-claim", "count=1"], 4);
    let id = out
        .split("cdiDeviceIDs=[\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_else(|| panic!("no CDI ID in: {out}"))
        .to_string();
    let spec_file = std::fs::read_dir(n.cdi_root())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().contains("claim_"))
        .expect("the claim's spec is on disk");
    let spec: Value = serde_json::from_str(&std::fs::read_to_string(&spec_file).unwrap()).unwrap();
    assert_eq!(spec["kind"], "k8s.gpu.nvidia.com/claim");
    let name = id.split_once('=').unwrap().1;
    let dev = spec["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == name)
        .unwrap_or_else(|| panic!("{name} is not in {spec}"));
    let mut want: Vec<String> = node_paths(&dev["containerEdits"]);
    want.extend(node_paths(&spec["containerEdits"]));
    want.sort();
    want.dedup();
    assert!(
        want.iter()
            .any(|p| p.starts_with("/dev/nvidia") && p[11..].parse::<u32>().is_ok()),
        "{want:?}"
    );
    let cleanup = PodmanCleanup {
        podman: podman.clone(),
        spec: std::path::Path::new("/var/run/cdi").join(spec_file.file_name().unwrap()),
        image: "localhost/gdp-dra-busybox:test".into(),
    };
    std::fs::create_dir_all("/var/run/cdi").unwrap();
    std::fs::copy(&spec_file, &cleanup.spec).unwrap();
    import_busybox(&podman, &cleanup.image);
    let run = std::process::Command::new("timeout")
        .arg("300")
        .arg(&podman)
        .args([
            "--runtime",
            "runc",
            "--cgroup-manager",
            "cgroupfs",
            "run",
            "--rm",
            "--network",
            "none",
        ])
        .args([
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
        ])
        .args(["--device", &id])
        .args([
            &cleanup.image,
            "/bin/busybox",
            "find",
            "/dev",
            "-name",
            "nvidia*",
            "-type",
            "c",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "podman run: {}\n{stdout}",
        String::from_utf8_lossy(&run.stderr)
    );
    let mut seen: Vec<String> = stdout.lines().map(str::to_string).collect();
    seen.sort();
    assert_eq!(
        seen, want,
        "the container's NVIDIA device nodes are the claim spec's"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_health_stream_follows_the_health_model() {
    use gpu_device_plugin::dra_health_v1alpha1 as h;
    let Some(n) = DraNode::start("dra health stream", "dra-dgx-9", "dgx-a100", &[]) else {
        return;
    };
    n.wait_devices(FIRST, |d| d.len() == 8);
    let socket = n.kubelet_dir.path().join("plugins/gpu.nvidia.com/dra.sock");
    let channel = gpu_device_plugin::kubelet::unix_channel(&socket)
        .await
        .unwrap();
    let mut client = h::dra_resource_health_client::DraResourceHealthClient::new(channel);
    let mut stream = client
        .node_watch_resources(h::NodeWatchResourcesRequest {})
        .await
        .unwrap()
        .into_inner();
    let health_of = |m: &h::NodeWatchResourcesResponse, name: &str| {
        m.devices
            .iter()
            .find(|d| d.device.as_ref().is_some_and(|i| i.device_name == name))
            .map(|d| d.health)
    };
    let first = tokio::time::timeout(FIRST, stream.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.devices.len(), 8);
    assert!(
        first
            .devices
            .iter()
            .all(|d| d.health == h::HealthStatus::Healthy as i32)
    );
    assert_eq!(
        first.devices[0].device.as_ref().unwrap().pool_name,
        "dra-dgx-9"
    );
    let uuid = "GPU-84d0da3d-547f-c101-747c-3308b9ef6a48"; // GPU 1
    n.edit_node(|t| {
        t.replacen(
            &format!("    uuid: {uuid}\n"),
            &format!("    uuid: {uuid}\n    xids: [79]\n"),
            1,
        )
    });
    let next = tokio::time::timeout(FIRST, stream.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        health_of(&next, "gpu-1"),
        Some(h::HealthStatus::Unhealthy as i32)
    );
    assert_eq!(
        health_of(&next, "gpu-0"),
        Some(h::HealthStatus::Healthy as i32)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_v1beta1_service_answers_per_claim_and_unprepare_is_idempotent() {
    use gpu_device_plugin::dra_v1beta1 as b;
    let Some(n) = DraNode::start("dra v1beta1", "dra-dgx-10", "dgx-a100", &[]) else {
        return;
    };
    n.wait_devices(FIRST, |d| d.len() == 8);
    let socket = n.kubelet_dir.path().join("plugins/gpu.nvidia.com/dra.sock");
    let channel = gpu_device_plugin::kubelet::unix_channel(&socket)
        .await
        .unwrap();
    let mut client = b::dra_plugin_client::DraPluginClient::new(channel);
    let claim = b::Claim {
        namespace: "nowhere".into(),
        uid: "uid-1".into(),
        name: "missing".into(),
    };
    let answer = client
        .node_prepare_resources(b::NodePrepareResourcesRequest {
            claims: vec![claim.clone()],
        })
        .await
        .unwrap()
        .into_inner();
    let error = &answer.claims["uid-1"].error;
    assert!(
        error.contains("nowhere/missing is not in the API"),
        "{error}"
    );
    for _ in 0..2 {
        let answer = client
            .node_unprepare_resources(b::NodeUnprepareResourcesRequest {
                claims: vec![claim.clone()],
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(answer.claims["uid-1"].error, "");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_device_of_a_prepared_claim_is_tainted_by_an_xid() {
    let Some(n) = DraNode::start("dra claimed xid", "dra-dgx-11", "dgx-a100", &[]) else {
        return;
    };
    let out = n.run_ok("check", &["-keep", "-claim", "count=1"], 4);
    let device = out
        .split("allocated [gpu: gpu.nvidia.com/dra-dgx-11/")
        .nth(1)
        .and_then(|s| s.split(']').next())
        .unwrap_or_else(|| panic!("no allocation in: {out}"))
        .to_string();
    let devices = n.devices();
    let uuid = device_uuid(&devices, &device);
    n.edit_node(|t| {
        t.replacen(
            &format!("    uuid: {uuid}\n"),
            &format!("    uuid: {uuid}\n    xids: [79]\n"),
            1,
        )
    });
    let devices = n.wait_devices(CHANGE, |d| {
        device_of(d, &device).is_some_and(|g| g.get("taints").is_some())
    });
    let tainted: Vec<String> = devices
        .iter()
        .filter(|d| d.get("taints").is_some())
        .filter_map(|d| d["name"].as_str().map(str::to_string))
        .collect();
    assert_eq!(tainted, [device]);
}

fn device_of<'a>(devices: &'a [Value], name: &str) -> Option<&'a Value> {
    devices.iter().find(|d| d["name"] == name)
}

fn device_uuid(devices: &[Value], name: &str) -> String {
    device_of(devices, name)
        .and_then(|d| d["attributes"]["uuid"]["string"].as_str())
        .unwrap_or_else(|| panic!("{name} not in {devices:?}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_claim_prepared_before_a_daemon_restart_is_prepared_again_and_unprepared_after() {
    use gpu_device_plugin::dra_v1 as v1;
    let Some(mut n) = DraNode::start("dra plugin restart", "dra-dgx-12", "dgx-a100", &[]) else {
        return;
    };
    let out = n.run_ok("check", &["-keep", "-claim", "count=1"], 4);
    let id = out
        .split("cdiDeviceIDs=[\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_else(|| panic!("no CDI ID in: {out}"))
        .to_string();
    let name = out
        .split("-- claim ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("no claim name in: {out}"))
        .to_string();
    let spec = |n: &DraNode| {
        std::fs::read_dir(n.cdi_root())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().contains("claim_"))
    };
    let file = spec(&n).expect("the claim's spec is on disk");
    let uid = file
        .file_name()
        .unwrap()
        .to_string_lossy()
        .trim_start_matches("k8s.gpu.nvidia.com-claim_")
        .trim_end_matches(".json")
        .to_string();
    n.restart_plugin().await;
    n.wait_devices(FIRST, |d| d.len() == 8);
    let socket = n.kubelet_dir.path().join("plugins/gpu.nvidia.com/dra.sock");
    let deadline = std::time::Instant::now() + FIRST;
    let channel = loop {
        match gpu_device_plugin::kubelet::unix_channel(&socket).await {
            Ok(c) => break c,
            Err(e) => assert!(std::time::Instant::now() < deadline, "{e}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await; // poll the socket, bounded
    };
    let mut client = v1::dra_plugin_client::DraPluginClient::new(channel);
    let claim = v1::Claim {
        namespace: n.name.clone(),
        uid: uid.clone(),
        name,
    };
    let again = client
        .node_prepare_resources(v1::NodePrepareResourcesRequest {
            claims: vec![claim.clone()],
        })
        .await
        .unwrap()
        .into_inner();
    let answer = &again.claims[&uid];
    assert_eq!(answer.error, "");
    assert_eq!(answer.devices[0].cdi_device_ids, [id]);
    let done = client
        .node_unprepare_resources(v1::NodeUnprepareResourcesRequest {
            claims: vec![claim],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(done.claims[&uid].error, "");
    assert!(spec(&n).is_none(), "the claim's spec is removed");
}
