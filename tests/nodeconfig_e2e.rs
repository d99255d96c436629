//! Per-node config by label against a real API server: the label picks a
//! file of the config directory, at start before anything is registered and
//! in place afterwards; an unknown name keeps the current config with
//! `/readyz` 503; removing the label returns to the default.

mod support;

use std::path::Path;

use support::apiserver::ApiServer;
use support::http::{get, metrics_address, wait_scrape, wait_status};
use support::kubelet::FakeKubelet;
use support::nodeapi::{self, GPU, LABEL, configs, time_sliced};
use support::process::Plugin;
use support::write_atomic;

/// The plugin on `node` with the admin kubeconfig.
fn plugin(api: &ApiServer, node: &str, configs: &Path, k: &FakeKubelet) -> Plugin {
    nodeapi::plugin(&api.kubeconfig, node, configs, k, &[], &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_label_at_start_is_applied_before_the_first_registration() {
    let Some(api) = ApiServer::shared("label at start") else {
        return;
    };
    api.create_node("start-node");
    api.label_node("start-node", LABEL, Some("time-sliced"));
    let dir = configs();
    let k = FakeKubelet::start();
    let p = plugin(api, "start-node", dir.path(), &k);
    let view = k.wait_devices(&p, GPU, 32).await;
    let seen = &view.resources[GPU];
    assert_eq!(seen.registrations, 1);
    assert_eq!(
        seen.fewest_healthy,
        Some(32),
        "the default (8) was never advertised"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labelling_the_node_switches_the_advertised_devices_in_place() {
    let Some(api) = ApiServer::shared("label switch") else {
        return;
    };
    api.create_node("switch-node");
    let dir = configs();
    let k = FakeKubelet::start();
    let p = plugin(api, "switch-node", dir.path(), &k);
    k.wait_devices(&p, GPU, 8).await;
    let labelled = std::time::Instant::now();
    api.label_node("switch-node", LABEL, Some("time-sliced"));
    let view = k.wait_devices(&p, GPU, 32).await;
    println!("label -> ListAndWatch: {:?}", labelled.elapsed());
    assert_eq!(view.resources[GPU].registrations, 1, "no re-registration");
    let addr = metrics_address(&p).await;
    wait_scrape(addr, "config_selected time-sliced", |t| {
        t.contains("gpu_device_plugin_config_selected{config=\"time-sliced\"} 1")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_label_keeps_the_current_config_and_fails_readyz() {
    let Some(api) = ApiServer::shared("unknown label") else {
        return;
    };
    api.create_node("unknown-node");
    api.label_node("unknown-node", LABEL, Some("time-sliced"));
    let dir = configs();
    let k = FakeKubelet::start();
    let p = plugin(api, "unknown-node", dir.path(), &k);
    k.wait_devices(&p, GPU, 32).await;
    let addr = metrics_address(&p).await;
    wait_status(addr, "/readyz", 200).await;
    api.label_node("unknown-node", LABEL, Some("no-such-config"));
    let body = wait_status(addr, "/readyz", 503).await;
    assert!(body.contains("no-such-config"), "{body}");
    let view = k.get().view();
    assert_eq!(view.resources[GPU].devices.len(), 32, "current config kept");
    assert_eq!(view.resources[GPU].registrations, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_the_label_returns_to_the_default() {
    let Some(api) = ApiServer::shared("label removed") else {
        return;
    };
    api.create_node("removed-node");
    api.label_node("removed-node", LABEL, Some("time-sliced"));
    let dir = configs();
    let k = FakeKubelet::start();
    let p = plugin(api, "removed-node", dir.path(), &k);
    k.wait_devices(&p, GPU, 32).await;
    api.label_node("removed-node", LABEL, None);
    let view = k.wait_devices(&p, GPU, 8).await;
    assert_eq!(view.resources[GPU].registrations, 1);
    let addr = metrics_address(&p).await;
    assert_eq!(get(addr, "/readyz").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_the_selected_config_applies_in_place() {
    let Some(api) = ApiServer::shared("selected file edited") else {
        return;
    };
    api.create_node("edit-node");
    api.label_node("edit-node", LABEL, Some("time-sliced"));
    let dir = configs();
    let k = FakeKubelet::start();
    let p = plugin(api, "edit-node", dir.path(), &k);
    k.wait_devices(&p, GPU, 32).await;
    write_atomic(&dir.path().join("time-sliced"), &time_sliced(8));
    let view = k.wait_devices(&p, GPU, 64).await;
    assert_eq!(view.resources[GPU].registrations, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_node_feature_the_api_server_is_never_contacted() {
    // A "server" that only counts connections.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let server = format!("https://{}", listener.local_addr().unwrap());
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\n"
        ),
    )
    .unwrap();
    let k = FakeKubelet::start();
    let node = support::repo_file("config/nodes/dgx-a100.yaml");
    let p = Plugin::start(
        &[
            "--simulate",
            node.to_str().unwrap(),
            "--kubelet-socket",
            k.socket().to_str().unwrap(),
            "--metrics-address",
            "127.0.0.1:0",
        ],
        &[
            ("KUBECONFIG", kubeconfig.to_str().unwrap()),
            ("NODE_NAME", "n"),
        ],
    );
    k.wait_devices(&p, GPU, 8).await;
    let addr = metrics_address(&p).await;
    wait_status(addr, "/readyz", 200).await;
    let (_, text) = get(addr, "/metrics").await;
    assert!(!text.contains("kube_api_up{"), "no API watch runs");
    assert!(
        matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the plugin connected to the API server"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_shows_the_selected_config() {
    let Some(api) = ApiServer::shared("inspect") else {
        return;
    };
    api.create_node("inspect-node");
    api.label_node("inspect-node", LABEL, Some("time-sliced"));
    let dir = configs();
    let k = FakeKubelet::start();
    let p = plugin(api, "inspect-node", dir.path(), &k);
    k.wait_devices(&p, GPU, 32).await;
    let addr = metrics_address(&p).await;
    wait_status(addr, "/readyz", 200).await;
    let out = std::process::Command::new(support::process::BIN)
        .env_clear()
        .args(["inspect", "--kubelet-socket", k.socket().to_str().unwrap()])
        .args(["--metrics-address", &addr.to_string()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(&format!("plugin at {addr}: config time-sliced, ready\n")),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_selected_config_is_rejected_and_the_last_good_serves() {
    let Some(api) = ApiServer::shared("invalid selected config") else {
        return;
    };
    api.create_node("invalid-node");
    api.label_node("invalid-node", LABEL, Some("time-sliced"));
    let dir = configs();
    std::fs::write(
        dir.path().join("broken"),
        "version: v1\nflags:\n  migStrategy: sideways\n",
    )
    .unwrap();
    let k = FakeKubelet::start();
    let p = plugin(api, "invalid-node", dir.path(), &k);
    k.wait_devices(&p, GPU, 32).await;
    let addr = metrics_address(&p).await;
    api.label_node("invalid-node", LABEL, Some("broken"));
    support::http::wait_metric(
        addr,
        "gpu_device_plugin_config_reloads_total{result=\"rejected\"}",
        1.0,
    )
    .await;
    let view = k.get().view();
    assert_eq!(
        view.resources[GPU].devices.len(),
        32,
        "last good config kept"
    );
    assert_eq!(view.resources[GPU].registrations, 1);
}
