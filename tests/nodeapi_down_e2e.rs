//! The API server going away: the plugin keeps serving the config it has,
//! retries the watch with backoff and logs the failure once.

mod support;

use support::apiserver::ApiServer;
use support::http::{get, metrics_address, wait_metric, wait_scrape};
use support::kubelet::FakeKubelet;
use support::nodeapi::{self, GPU, LABEL, configs};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plugin_keeps_serving_when_the_api_server_stops() {
    let Some(api) = ApiServer::start("API server stopped") else {
        return;
    };
    api.create_node("down-node");
    api.label_node("down-node", LABEL, Some("time-sliced"));
    let dir = configs();
    let k = FakeKubelet::start();
    let p = nodeapi::plugin(&api.kubeconfig, "down-node", dir.path(), &k, &[], &[]);
    k.wait_devices(&p, GPU, 32).await;
    let addr = metrics_address(&p).await;
    wait_metric(addr, "gpu_device_plugin_kube_api_up{watch=\"node\"}", 1.0).await;
    api.stop();
    // Several failed attempts: the watch is retried.
    wait_metric(addr, "gpu_device_plugin_kube_api_errors_total", 2.0).await;
    wait_scrape(addr, "kube_api_up 0", |t| {
        t.contains("gpu_device_plugin_kube_api_up{watch=\"node\"} 0")
    })
    .await;
    let view = k.get().view();
    assert_eq!(
        view.resources[GPU].devices.len(),
        32,
        "last config still served"
    );
    assert_eq!(view.resources[GPU].registrations, 1);
    assert!(view.resources[GPU].streaming);
    assert_eq!(
        get(addr, "/readyz").await.0,
        200,
        "an unreachable API server is not a readiness problem"
    );
    let warnings = p.log().matches("cannot watch this node's labels").count();
    assert_eq!(warnings, 1, "logged once:\n{}", p.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_signal_ends_the_plugin_while_the_api_server_is_down() {
    let Some(api) = ApiServer::start("stop while the API server is down") else {
        return;
    };
    api.create_node("down-stop-node");
    let dir = configs();
    let k = FakeKubelet::start();
    let mut p = nodeapi::plugin(
        &api.kubeconfig,
        "down-stop-node",
        dir.path(),
        &k,
        &["--feature-labels", "nodefeature"],
        &[],
    );
    k.wait_devices(&p, GPU, 8).await;
    let addr = metrics_address(&p).await;
    api.stop();
    wait_metric(addr, "gpu_device_plugin_kube_api_errors_total", 1.0).await;
    p.signal("TERM");
    let status = p.wait_exit(support::WAIT).await;
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}
