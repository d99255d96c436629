//! The daemon's DRA sockets and claim specs used directly, with real parts:
//! the health stream and the v1beta1 service over gRPC, a daemon restart
//! with a prepared claim, and podman injecting a prepared claim's CDI
//! devices (`PODMAN`). The claims come from `draharness` (`DRA_HARNESS`)
//! against the kube-apiserver bundle (`KUBE_APISERVER_BUNDLE`).

mod support;

use std::time::Duration;

use serde_json::Value;
use support::dra::DraNode;
use support::podman;

/// Generous bound for the first publication on a loaded machine.
const FIRST: Duration = Duration::from_secs(30);

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
    let Some(podman) = podman::binary() else {
        return;
    };
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
    let cleanup = podman::Cleanup {
        podman: podman.clone(),
        spec: std::path::Path::new("/var/run/cdi").join(spec_file.file_name().unwrap()),
        image: "localhost/gdp-dra-busybox:test".into(),
    };
    std::fs::create_dir_all("/var/run/cdi").unwrap();
    std::fs::copy(&spec_file, &cleanup.spec).unwrap();
    podman::import_busybox(&podman, &cleanup.image);
    let run = podman::run(&podman)
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
    let channel = n.dra_channel(FIRST).await;
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
    let channel = n.dra_channel(FIRST).await;
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
    let channel = n.dra_channel(FIRST).await;
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
