//! The chart's RBAC (tests/data/chart-rbac.yaml, kept in sync with the chart
//! by .ci/chart-check) on a real API server: a TokenRequest token of its
//! ServiceAccount runs both node features, and cannot patch Nodes.

mod support;

use std::time::{Duration, Instant};

use support::WAIT;
use support::apiserver::ApiServer;
use support::kubelet::FakeKubelet;
use support::nodeapi::{self, GPU, LABEL, configs, token_kubeconfig};

const RBAC: &str = include_str!("data/chart-rbac.yaml");
const NS: &str = "gpu-system";
const SA: &str = "gpu-device-plugin";

/// The shared server with the chart's RBAC applied, and a token kubeconfig.
fn setup(test: &str) -> Option<(&'static ApiServer, std::path::PathBuf)> {
    static TOKEN: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let api = ApiServer::shared(test)?;
    let kubeconfig = TOKEN.get_or_init(|| {
        api.install_node_feature_crd(NS);
        api.kubectl(&["apply", "-f", "-"], Some(RBAC));
        let token = api.kubectl(&["create", "token", SA, "-n", NS], None);
        token_kubeconfig(api, &api.dir, token.trim())
    });
    Some((api, kubeconfig.clone()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_account_token_runs_both_node_features() {
    let Some((api, kubeconfig)) = setup("chart RBAC is enough") else {
        return;
    };
    api.create_node("rbac-node");
    api.label_node("rbac-node", LABEL, Some("time-sliced"));
    let dir = configs();
    let k = FakeKubelet::start();
    let p = nodeapi::plugin(
        &kubeconfig,
        "rbac-node",
        dir.path(),
        &k,
        &["--feature-labels", "nodefeature"],
        &[("NAMESPACE", NS)],
    );
    k.wait_devices(&p, GPU, 32).await;
    // The label watch answers to this token: a change arrives.
    api.label_node("rbac-node", LABEL, Some("default"));
    k.wait_devices(&p, GPU, 8).await;
    let deadline = Instant::now() + WAIT;
    loop {
        let out = api.kubectl_output(
            &[
                "get",
                "nodefeatures.nfd.k8s-sigs.io",
                "-n",
                NS,
                "nvidia-features-for-rbac-node",
                "-o",
                "name",
            ],
            None,
        );
        if out.status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no NodeFeature written; log:\n{}",
            p.log()
        );
        std::thread::sleep(Duration::from_millis(50)); // poll, bounded by WAIT (multi-thread runtime)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_account_token_cannot_patch_nodes() {
    let Some((api, kubeconfig)) = setup("chart RBAC cannot patch nodes") else {
        return;
    };
    api.create_node("rbac-patch-node");
    let patch = r#"{"metadata":{"labels":{"nvidia.com/gpu.product":"forged"}}}"#;
    let out = api.kubectl_as(
        &kubeconfig,
        &[
            "patch",
            "node",
            "rbac-patch-node",
            "--type",
            "merge",
            "-p",
            patch,
        ],
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the token patched a Node");
    assert!(stderr.contains("forbidden"), "{stderr}");
    let can = api.kubectl_output(
        &[
            "auth",
            "can-i",
            "update",
            "nodes",
            &format!("--as=system:serviceaccount:{NS}:{SA}"),
        ],
        None,
    );
    assert_eq!(String::from_utf8_lossy(&can.stdout).trim(), "no");
}
