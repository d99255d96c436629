//! GPU feature labels: the NFD NodeFeature object on a real API server
//! (GFD's labels for example nodes and MIG strategies, updated on a MIG
//! repartition, owned by the pod), and the features.d file sink.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::apiserver::ApiServer;
use support::kubelet::FakeKubelet;
use support::process::Plugin;
use support::{WAIT, repo_file, write_atomic};

const NS: &str = "gpu-labels";

/// The shared server with the CRD and the namespace installed (once).
fn server(test: &str) -> Option<&'static ApiServer> {
    static SETUP: std::sync::Once = std::sync::Once::new();
    let api = ApiServer::shared(test)?;
    SETUP.call_once(|| {
        api.install_node_feature_crd(NS);
    });
    Some(api)
}

fn plugin(api: &ApiServer, node: &str, node_file: &Path, mig: &str, k: &FakeKubelet) -> Plugin {
    let args = [
        "--simulate",
        node_file.to_str().unwrap(),
        "--kubelet-socket",
        k.socket().to_str().unwrap(),
        "--mig-strategy",
        mig,
        "--feature-labels",
        "nodefeature",
    ]
    .map(str::to_string);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let kubeconfig = api.kubeconfig.display().to_string();
    let pod = format!("plugin-{node}");
    Plugin::start(
        &refs,
        &[
            ("KUBECONFIG", &kubeconfig),
            ("NODE_NAME", node),
            ("NAMESPACE", NS),
            ("POD_NAME", &pod),
            ("POD_UID", "0b8c3f5e-6d3a-4c9e-9a51-3f1f0c0d2a11"),
        ],
    )
}

/// Polls the NodeFeature of `node` until `pred` holds on its labels.
fn wait_labels(api: &ApiServer, p: &Plugin, node: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let name = format!("nvidia-features-for-{node}");
    let deadline = Instant::now() + WAIT;
    loop {
        let out = api.kubectl_output(
            &[
                "get",
                "nodefeatures.nfd.k8s-sigs.io",
                "-n",
                NS,
                &name,
                "-o",
                "json",
            ],
            None,
        );
        if out.status.success() {
            let obj: Value = serde_json::from_slice(&out.stdout).expect("json");
            if pred(&obj["spec"]["labels"]) {
                return obj;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{name} never matched; log:\n{}",
            p.log()
        );
        std::thread::sleep(Duration::from_millis(50)); // poll, bounded by WAIT (multi-thread runtime)
    }
}

fn label<'a>(labels: &'a Value, key: &str) -> Option<&'a str> {
    labels[format!("nvidia.com/{key}")].as_str()
}

/// (node name, example node file, MIG strategy, labels the object must carry).
type Case = (
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nodefeature_object_carries_gfds_labels_per_node_and_mig_strategy() {
    let Some(api) = server("NodeFeature labels") else {
        return;
    };
    let cases: [Case; 3] = [
        (
            "nf-dgx",
            "dgx-a100",
            "none",
            &[
                ("gpu.product", "NVIDIA-A100-SXM4-80GB"),
                ("gpu.count", "8"),
                ("gpu.memory", "81920"),
                ("gpu.replicas", "1"),
                ("gpu.sharing-strategy", "none"),
                ("mig.capable", "false"),
                ("cuda.driver-version.full", "550.54.15"),
            ],
        ),
        (
            "nf-single",
            "a100-mig-single",
            "single",
            &[
                ("gpu.product", "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb"),
                ("gpu.count", "28"),
                ("mig.capable", "true"),
                ("mig.strategy", "single"),
            ],
        ),
        (
            "nf-mixed",
            "h100-mig",
            "mixed",
            &[
                ("gpu.count", "8"),
                ("mig.strategy", "mixed"),
                ("mig-1g.10gb.count", "8"),
                ("mig-3g.40gb.product", "NVIDIA-H100-80GB-HBM3-MIG-3g.40gb"),
            ],
        ),
    ];
    let mut running = Vec::new();
    for (node, file, mig, _) in &cases {
        let k = FakeKubelet::start();
        let p = plugin(
            api,
            node,
            &repo_file(&format!("config/nodes/{file}.yaml")),
            mig,
            &k,
        );
        running.push((k, p));
    }
    for ((node, file, mig, want), (_, p)) in cases.iter().zip(&running) {
        let obj = wait_labels(api, p, node, |l| {
            want.iter().all(|(k, v)| label(l, k) == Some(*v))
        });
        let labels = &obj["spec"]["labels"];
        assert!(label(labels, "gfd.timestamp").is_some(), "{file} {mig}");
        assert_eq!(
            obj["metadata"]["labels"]["nfd.node.kubernetes.io/node-name"],
            *node
        );
        assert_eq!(obj["metadata"]["ownerReferences"][0]["kind"], "Pod");
        assert_eq!(
            obj["metadata"]["ownerReferences"][0]["name"],
            format!("plugin-{node}")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mig_repartition_updates_the_nodefeature_object() {
    let Some(api) = server("NodeFeature after a MIG repartition") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let node_file = dir.path().join("node.yaml");
    let original = std::fs::read_to_string(repo_file("config/nodes/h100-mig.yaml")).unwrap();
    std::fs::write(&node_file, &original).unwrap();
    let k = FakeKubelet::start();
    let p = plugin(api, "nf-repartition", &node_file, "mixed", &k);
    wait_labels(api, &p, "nf-repartition", |l| {
        label(l, "mig-3g.40gb.count") == Some("1")
    });
    // The 3g.40gb instance becomes a 4g.40gb one.
    write_atomic(
        &node_file,
        &original.replace("profile: 3g.40gb", "profile: 4g.40gb"),
    );
    let obj = wait_labels(api, &p, "nf-repartition", |l| {
        label(l, "mig-4g.40gb.count") == Some("1")
    });
    assert_eq!(
        label(&obj["spec"]["labels"], "mig-3g.40gb.count"),
        None,
        "old profile's keys gone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feature_file_is_written_and_removed_on_exit() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gfd");
    let k = FakeKubelet::start();
    let mut p = Plugin::simulated(
        &repo_file("config/nodes/dgx-a100.yaml"),
        &k.socket(),
        &[
            "--feature-labels",
            "file",
            "--feature-file",
            file.to_str().unwrap(),
        ],
    );
    let deadline = Instant::now() + WAIT;
    let text = loop {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        if text.contains("nvidia.com/gpu.count=8\n") {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "no features file; log:\n{}",
            p.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await; // poll, bounded by WAIT
    };
    assert!(
        text.contains("nvidia.com/gpu.product=NVIDIA-A100-SXM4-80GB\n"),
        "{text}"
    );
    p.signal("TERM");
    assert!(p.wait_exit(WAIT).await.is_some_and(|s| s.success()));
    assert!(!file.exists(), "removed on exit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sharing_change_updates_the_nodefeature_object() {
    let Some(api) = server("NodeFeature after a sharing change") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, "version: v1\n").unwrap();
    let k = FakeKubelet::start();
    let kubeconfig = api.kubeconfig.display().to_string();
    let p = Plugin::start(
        &[
            "--simulate",
            repo_file("config/nodes/dgx-a100.yaml").to_str().unwrap(),
            "--kubelet-socket",
            k.socket().to_str().unwrap(),
            "--config-file",
            config.to_str().unwrap(),
            "--feature-labels",
            "nodefeature",
        ],
        &[
            ("KUBECONFIG", &kubeconfig),
            ("NODE_NAME", "nf-sharing"),
            ("NAMESPACE", NS),
        ],
    );
    wait_labels(api, &p, "nf-sharing", |l| {
        label(l, "gpu.replicas") == Some("1")
    });
    write_atomic(
        &config,
        "version: v1\nsharing:\n  timeSlicing:\n    resources:\n    - name: nvidia.com/gpu\n      replicas: 4\n",
    );
    let obj = wait_labels(api, &p, "nf-sharing", |l| {
        label(l, "gpu.replicas") == Some("4")
    });
    let labels = &obj["spec"]["labels"];
    assert_eq!(label(labels, "gpu.sharing-strategy"), Some("time-slicing"));
    assert_eq!(
        label(labels, "gpu.product"),
        Some("NVIDIA-A100-SXM4-80GB-SHARED")
    );
}
