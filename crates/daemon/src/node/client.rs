//! The Kubernetes client (a kubeconfig file or the in-cluster config, rustls)
//! and the watch of this node's own Node object (field selector on its name,
//! metadata only), reduced to the one label value per-node config needs.

use std::path::Path;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::core::PartialObjectMeta;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use tokio::sync::watch;

use super::NodeError;

/// A client from `kubeconfig`, or the in-cluster config when `None`.
pub async fn make_client(kubeconfig: Option<&Path>) -> Result<Client, NodeError> {
    let config = match kubeconfig {
        Some(path) => {
            let from = path.display().to_string();
            let error = |e: String| NodeError::Client {
                from: from.clone(),
                error: e,
            };
            let file =
                kube::config::Kubeconfig::read_from(path).map_err(|e| error(e.to_string()))?;
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| error(e.to_string()))?
        }
        None => kube::Config::incluster().map_err(|e| NodeError::Client {
            from: "the in-cluster config (KUBERNETES_SERVICE_HOST and the service account token)"
                .into(),
            error: e.to_string(),
        })?,
    };
    Client::try_from(config).map_err(|e| NodeError::Client {
        from: "its config".into(),
        error: e.to_string(),
    })
}

/// What the watch knows of the label: `None` until the first complete list,
/// then the value (`Some(None)`: the label or the Node is absent).
pub type LabelState = Option<Option<String>>;

/// Watches Node `name` and keeps `tx` at its label `key`. Retries with
/// kube's default backoff while the API server is down; logs the failure
/// once and the recovery once. Runs until `tx` has no receivers.
pub async fn watch_label(
    client: Client,
    name: String,
    key: String,
    tx: watch::Sender<LabelState>,
    metrics: crate::metrics::Metrics,
) {
    // Metadata only (`Api<PartialObjectMeta<_>>` makes metadata requests):
    // the labels are all we need, and a full Node is large.
    let api: Api<PartialObjectMeta<Node>> = Api::all(client);
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut stream = watcher::watcher(api, config).default_backoff().boxed();
    let label_of = |node: &PartialObjectMeta<Node>| {
        node.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(&key))
            .cloned()
    };
    let mut failing = false;
    let mut listed: Option<Option<String>> = None;
    let set = |value: Option<String>| {
        tx.send_if_modified(|cur| {
            let changed = cur.as_ref() != Some(&value);
            *cur = Some(value);
            changed
        });
    };
    while let Some(item) = stream.next().await {
        if tx.is_closed() {
            return;
        }
        let event = match item {
            Ok(event) => event,
            Err(e) => {
                metrics.kube_api(false);
                if !failing {
                    tracing::warn!(node = %name, error = %e, "cannot watch this node's labels; serving the last config and retrying with backoff");
                    failing = true;
                }
                continue;
            }
        };
        metrics.kube_api(true);
        if std::mem::take(&mut failing) {
            tracing::info!(node = %name, "the API server answers again; watching this node's labels");
        }
        match event {
            Event::Init => listed = Some(None),
            Event::InitApply(node) => listed = Some(label_of(&node)),
            Event::InitDone => {
                let value = listed.take().flatten();
                set(value);
            }
            Event::Apply(node) => set(label_of(&node)),
            Event::Delete(_) => set(None),
        }
    }
}
