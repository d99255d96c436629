//! The daemon with the CDI strategies, over the wire: the spec is on disk
//! before the devices are advertised, `cdi-cri` answers Allocate with
//! `cdi_devices` naming exactly the request's physical devices and
//! `cdi-annotations` with NVIDIA's annotation, on every example node, and a
//! MIG repartition rewrites the spec before the new devices are advertised.

mod support;

use std::collections::BTreeSet;
use std::path::Path;

use gpu_device_plugin::v1beta1::{
    AllocateRequest, ContainerAllocateRequest, ContainerAllocateResponse,
};
use serde_json::Value;
use support::cdi::{FakeDriverRoot, Layout};
use support::expected::expected;
use support::kubelet::FakeKubelet;
use support::process::Plugin;
use support::{WAIT, repo_file, write_atomic};

const NODES: [&str; 5] = [
    "a100-mig-single",
    "dgx-a100",
    "dgx-a100-degraded",
    "h100-mig",
    "workstation",
];
const GPU: &str = "k8s.device-plugin.nvidia.com/gpu=";

struct Daemon {
    k: FakeKubelet,
    p: Plugin,
    cdi: tempfile::TempDir,
    _root: FakeDriverRoot,
}

impl Daemon {
    fn start(node: &Path, strategy: &str, extra: &[&str]) -> Daemon {
        Daemon::start_on(
            FakeDriverRoot::new(node, Layout::Standard),
            node,
            strategy,
            extra,
        )
    }

    /// The daemon on `node` with the driver root `root`.
    fn start_on(root: FakeDriverRoot, node: &Path, strategy: &str, extra: &[&str]) -> Daemon {
        let cdi = tempfile::tempdir().unwrap();
        let k = FakeKubelet::start();
        let mut args = vec![
            "--device-list-strategy".to_string(),
            strategy.to_string(),
            "--driver-root".into(),
            root.display(),
            "--driver-root-ctr-path".into(),
            root.display(),
            "--cdi-root".into(),
            cdi.path().display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let p = Plugin::simulated(node, &k.socket(), &refs);
        Daemon {
            k,
            p,
            cdi,
            _root: root,
        }
    }

    /// The device names of the spec on disk now.
    fn spec_names(&self) -> BTreeSet<String> {
        let path = self
            .cdi
            .path()
            .join("k8s.device-plugin.nvidia.com-gpu.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; log:\n{}", path.display(), self.p.log()));
        let spec: Value = serde_json::from_str(&text).unwrap();
        spec["devices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| format!("{GPU}{}", d["name"].as_str().unwrap()))
            .collect()
    }

    async fn allocate(&self, resource: &str, ids: &[String]) -> ContainerAllocateResponse {
        let mut client = self.k.get().client(resource).await.unwrap();
        let resp = client
            .allocate(AllocateRequest {
                container_requests: vec![ContainerAllocateRequest {
                    devices_ids: ids.to_vec(),
                }],
            })
            .await
            .unwrap()
            .into_inner();
        resp.container_responses.into_iter().next().unwrap()
    }
}

/// Waits until the kubelet sees every resource `expected` plans for `node`
/// (a lost GPU is left out of its resource), returns resource → device IDs.
async fn advertised(d: &Daemon, node: &str, mig: &str) -> Vec<(String, Vec<String>)> {
    let want: BTreeSet<String> = expected(&node_file(node), mig).into_keys().collect();
    let view =
        d.k.get()
            .wait_for(WAIT, |v| {
                v.resources.keys().cloned().collect::<BTreeSet<_>>() == want
                    && v.resources.values().all(|r| !r.devices.is_empty())
            })
            .await
            .unwrap_or_else(|e| panic!("{node}: {e}; log:\n{}", d.p.log()));
    view.resources
        .iter()
        .map(|(name, r)| {
            (
                name.clone(),
                r.devices.iter().map(|x| x.id.clone()).collect(),
            )
        })
        .collect()
}

fn node_file(node: &str) -> std::path::PathBuf {
    repo_file(&format!("config/nodes/{node}.yaml"))
}

#[tokio::test]
async fn cdi_cri_names_exactly_the_requested_devices_and_they_are_in_the_spec_on_every_node() {
    for node in NODES {
        let mig = if node == "a100-mig-single" {
            "single"
        } else {
            "mixed"
        };
        let d = Daemon::start(&node_file(node), "cdi-cri", &["--mig-strategy", mig]);
        let resources = advertised(&d, node, mig).await;
        let on_disk = d.spec_names();
        for (resource, ids) in &resources {
            let resp = d.allocate(resource, ids).await;
            let names: Vec<String> = resp.cdi_devices.iter().map(|c| c.name.clone()).collect();
            let wanted: Vec<String> = ids.iter().map(|id| format!("{GPU}{id}")).collect();
            assert_eq!(names, wanted, "{node} {resource}");
            assert!(
                names.iter().all(|n| on_disk.contains(n)),
                "{node}: {names:?} not all in {on_disk:?}"
            );
            assert!(
                resp.envs.is_empty() && resp.annotations.is_empty() && resp.devices.is_empty(),
                "{node}"
            );
        }
    }
}

#[tokio::test]
async fn cdi_annotations_add_nvidias_annotation_naming_devices_in_the_spec_on_every_node() {
    for node in NODES {
        let d = Daemon::start(
            &node_file(node),
            "cdi-annotations",
            &["--mig-strategy", "mixed", "--device-id-strategy", "index"],
        );
        let resources = advertised(&d, node, "mixed").await;
        let on_disk = d.spec_names();
        for (resource, ids) in &resources {
            let resp = d.allocate(resource, &[ids[0].clone()]).await;
            assert_eq!(resp.annotations.len(), 1, "{node} {resource}");
            let (key, value) = resp.annotations.iter().next().unwrap();
            assert!(
                key.starts_with("cdi.k8s.io/nvidia-device-plugin_") && key.len() == 68,
                "{key}"
            );
            assert!(
                on_disk.contains(value),
                "{node}: {value} not in {on_disk:?}"
            );
            // Index names: a GPU index, or <gpu>:<slot> for a MIG device.
            let name = value.strip_prefix(GPU).unwrap();
            assert!(
                name.chars().all(|c| c.is_ascii_digit() || c == ':'),
                "{value}"
            );
            assert!(
                resp.cdi_devices.is_empty() && resp.envs.is_empty(),
                "{node}"
            );
        }
    }
}

#[tokio::test]
async fn replicas_resolve_to_their_physical_device_and_envvar_combines() {
    let d = Daemon::start(
        &node_file("workstation"),
        "cdi-cri,envvar",
        &[
            "--config-file",
            repo_file("config/examples/time-slicing.yaml")
                .to_str()
                .unwrap(),
        ],
    );
    let view = d.k.wait_devices(&d.p, "nvidia.com/gpu", 4).await;
    let ids: Vec<String> = view.resources["nvidia.com/gpu"]
        .devices
        .iter()
        .take(2)
        .map(|d| d.id.clone())
        .collect();
    let uuid = ids[0].split("::").next().unwrap().to_string();
    let resp = d.allocate("nvidia.com/gpu", &ids).await;
    let names: Vec<String> = resp.cdi_devices.iter().map(|c| c.name.clone()).collect();
    assert_eq!(names, [format!("{GPU}{uuid}")]);
    assert_eq!(resp.envs["NVIDIA_VISIBLE_DEVICES"], uuid);
    assert!(d.spec_names().contains(&names[0]));
}

#[tokio::test]
async fn a_mig_repartition_rewrites_the_spec_before_the_new_device_is_advertised() {
    let dir = tempfile::tempdir().unwrap();
    let node = dir.path().join("h100-mig.yaml");
    let original = std::fs::read_to_string(node_file("h100-mig")).unwrap();
    std::fs::write(&node, &original).unwrap();
    let d = Daemon::start(
        &node,
        "cdi-cri",
        &["--mig-strategy", "mixed", "--rescan-interval", "never"],
    );
    let old = "MIG-1c7ae9ba-c170-6711-a80c-8de15338cbd5";
    let new = "MIG-00000000-0000-4000-8000-000000000001";
    let resource = "nvidia.com/mig-3g.40gb";
    d.k.wait_resource(&d.p, resource, |r| r.devices.iter().any(|x| x.id == old))
        .await;
    assert!(d.spec_names().contains(&format!("{GPU}{old}")));
    // Repartition: the 3g.40gb instance is destroyed and created again (new UUID).
    write_atomic(&node, &original.replace(old, new));
    let view =
        d.k.get()
            .wait_for(WAIT, |v| {
                v.resources
                    .get(resource)
                    .is_some_and(|r| r.devices.iter().any(|x| x.id == new))
            })
            .await
            .unwrap_or_else(|e| panic!("{e}; log:\n{}", d.p.log()));
    // The moment the new device is seen, the spec on disk names it already.
    let on_disk = d.spec_names();
    assert!(on_disk.contains(&format!("{GPU}{new}")), "{on_disk:?}");
    assert!(!on_disk.contains(&format!("{GPU}{old}")));
    assert!(!view.resources[resource].devices.iter().any(|x| x.id == old));
    let resp = d.allocate(resource, &[new.to_string()]).await;
    assert_eq!(resp.cdi_devices[0].name, format!("{GPU}{new}"));
}

#[tokio::test]
async fn a_spec_that_cannot_be_written_is_not_advertised_and_readyz_says_why() {
    let root = FakeDriverRoot::new(&node_file("workstation"), Layout::Standard);
    let blocker = tempfile::NamedTempFile::new().unwrap();
    let k = FakeKubelet::start();
    let cdi_root = blocker.path().join("cdi").display().to_string();
    let p = Plugin::simulated(
        &node_file("workstation"),
        &k.socket(),
        &[
            "--device-list-strategy",
            "cdi-cri",
            "--driver-root-ctr-path",
            &root.display(),
            "--cdi-root",
            &cdi_root,
            "--metrics-address",
            "127.0.0.1:0",
        ],
    );
    let addr = support::http::metrics_address(&p).await;
    let deadline = std::time::Instant::now() + WAIT;
    let body = loop {
        let (code, body) = support::http::get(addr, "/readyz").await;
        if body.contains("CDI spec cannot be written") {
            assert_eq!(code, 503, "{body}");
            break body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "/readyz never named the CDI spec: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await; // poll, bounded by WAIT
    };
    assert!(body.contains(&cdi_root), "{body}");
    assert!(
        k.get().view().resources.is_empty(),
        "nothing advertised without its spec"
    );
}

#[tokio::test]
async fn an_enabled_gated_spec_with_nodes_is_named_after_the_devices() {
    let node = node_file("workstation");
    let root = FakeDriverRoot::new(&node, Layout::Standard);
    // gds has a node; gdrcopy has none, so its spec is neither written nor named.
    root.add_node("/dev/nvidia-fs0", 241, 0);
    let d = Daemon::start_on(
        root,
        &node,
        "cdi-cri",
        &["--gds-enabled", "--gdrcopy-enabled"],
    );
    let resources = advertised(&d, "workstation", "none").await;
    let (resource, ids) = &resources[0];
    let resp = d.allocate(resource, &ids[..1]).await;
    let names: Vec<String> = resp.cdi_devices.iter().map(|c| c.name.clone()).collect();
    assert_eq!(
        names,
        [
            format!("{GPU}{}", ids[0]),
            "k8s.device-plugin.nvidia.com/gds=all".to_string()
        ]
    );
    assert!(
        d.cdi
            .path()
            .join("k8s.device-plugin.nvidia.com-gds.json")
            .exists()
    );
    assert!(
        !d.cdi
            .path()
            .join("k8s.device-plugin.nvidia.com-gdrcopy.json")
            .exists()
    );
    assert_eq!(resp.envs["NVIDIA_GDS"], "enabled");
    assert_eq!(resp.envs["NVIDIA_GDRCOPY"], "enabled");
}
