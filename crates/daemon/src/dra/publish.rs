//! Publishing the pool's ResourceSlices: the API version the server serves
//! (`resource.k8s.io/v1`, else v1beta2, else v1beta1), and a task that
//! makes the slices in the API match the view: create, replace, delete;
//! the pool generation goes up whenever the devices change. A watch on the
//! node's slices wakes it, so slices the kubelet wipes at its start are
//! published again at once. Failures are retried with backoff, logged once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::core::{ApiResource, DynamicObject};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher;
use kube::{Api, Client};
use serde_json::Value;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use super::DRIVER;
use super::side::View;
use super::slices::{pool_devices, slice_specs, to_v1beta1};

const GROUP: &str = "resource.k8s.io";
const VERSIONS: [&str; 3] = ["v1", "v1beta2", "v1beta1"];
const RETRY: (Duration, Duration) = (Duration::from_millis(200), Duration::from_secs(30));
const RESYNC: Duration = Duration::from_secs(60);
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The `resource.k8s.io` version in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiVersion(&'static str);

impl ApiVersion {
    /// The newest version of [`VERSIONS`] the server serves slices in; v1
    /// when the server cannot be asked (the calls then fail and are retried).
    pub async fn discover(client: &Client) -> Self {
        for v in VERSIONS {
            let asked = tokio::time::timeout(
                CALL_TIMEOUT,
                client.list_api_group_resources(&format!("{GROUP}/{v}")),
            )
            .await;
            if let Ok(Ok(list)) = asked
                && list.resources.iter().any(|r| r.name == "resourceslices")
            {
                return ApiVersion(v);
            }
        }
        tracing::warn!("cannot tell which resource.k8s.io version the API server serves; using v1");
        ApiVersion("v1")
    }

    pub fn api_version(&self) -> String {
        format!("{GROUP}/{}", self.0)
    }

    fn resource(&self, kind: &str, plural: &str) -> ApiResource {
        ApiResource {
            group: GROUP.into(),
            version: self.0.into(),
            api_version: self.api_version(),
            kind: kind.into(),
            plural: plural.into(),
        }
    }

    /// ResourceClaims of a namespace.
    pub fn claims(&self, client: Client, namespace: &str) -> Api<DynamicObject> {
        Api::namespaced_with(
            client,
            namespace,
            &self.resource("ResourceClaim", "resourceclaims"),
        )
    }

    fn slices(&self, client: Client) -> (Api<DynamicObject>, ApiResource) {
        let r = self.resource("ResourceSlice", "resourceslices");
        (Api::all_with(client, &r), r)
    }

    /// A v1 slice spec in this version's shape.
    fn shape(&self, spec: &Value) -> Value {
        match self.0 {
            "v1beta1" => to_v1beta1(spec),
            _ => spec.clone(),
        }
    }
}

/// Whether the server kept the taints we sent (it drops them when device
/// taints are off).
fn taints_kept(sent: &Value, stored: &Value) -> bool {
    let taints = |spec: &Value| -> usize {
        spec.get("devices")
            .and_then(Value::as_array)
            .map_or(0, |ds| {
                ds.iter()
                    .filter(|d| d.get("taints").or(d.pointer("/basic/taints")).is_some())
                    .count()
            })
    };
    taints(stored) >= taints(sent)
}

struct Sync {
    api: Api<DynamicObject>,
    resource: ApiResource,
    version: ApiVersion,
    node: String,
    generation: Option<i64>,
    last_devices: Option<Vec<Value>>,
    /// Per slice name: the resourceVersion of our last write and its spec.
    written: BTreeMap<String, (String, Value)>,
    taints: bool,
}

impl Sync {
    async fn ours(&self) -> Result<BTreeMap<String, DynamicObject>, kube::Error> {
        let lp = ListParams::default().fields(&format!("spec.nodeName={}", self.node));
        let list = self.api.list(&lp).await?;
        Ok(list
            .items
            .into_iter()
            .filter(|o| o.data.pointer("/spec/driver").and_then(Value::as_str) == Some(DRIVER))
            .filter_map(|o| Some((o.metadata.name.clone()?, o)))
            .collect())
    }

    /// One pass; `Ok(true)` when it must run again at once (taints dropped).
    async fn run(&mut self, view: &View) -> Result<bool, kube::Error> {
        let existing = self.ours().await?;
        let devices = pool_devices(&view.input, self.taints);
        let generation = match (self.generation, &self.last_devices) {
            (None, _) => {
                let newest = existing
                    .values()
                    .filter_map(|o| {
                        o.data
                            .pointer("/spec/pool/generation")
                            .and_then(Value::as_i64)
                    })
                    .max()
                    .unwrap_or(0);
                newest + 1
            }
            (Some(g), Some(last)) if *last != devices => g + 1,
            (Some(g), _) => g,
        };
        let specs = slice_specs(&self.node, generation, &devices);
        for (name, spec) in &specs {
            let want = self.version.shape(spec);
            let current = existing.get(name);
            let rv = current.and_then(|o| o.metadata.resource_version.clone());
            let unchanged = match (&rv, self.written.get(name)) {
                (Some(rv), Some((wrote_rv, wrote))) => rv == wrote_rv && *wrote == want,
                _ => false,
            };
            if unchanged {
                continue;
            }
            let mut obj =
                DynamicObject::new(name, &self.resource).data(serde_json::json!({ "spec": want }));
            let stored = match rv {
                None => self.api.create(&PostParams::default(), &obj).await?,
                Some(rv) => {
                    obj.metadata.resource_version = Some(rv);
                    self.api.replace(name, &PostParams::default(), &obj).await?
                }
            };
            let stored_spec = stored.data.get("spec").cloned().unwrap_or_default();
            if self.taints && !taints_kept(&want, &stored_spec) {
                self.taints = false;
                tracing::info!(
                    "the API server does not keep device taints: unhealthy devices are left out of the ResourceSlice instead"
                );
                self.last_devices = Some(devices);
                self.generation = Some(generation);
                return Ok(true);
            }
            let stored_rv = stored.metadata.resource_version.unwrap_or_default();
            self.written.insert(name.clone(), (stored_rv, want));
        }
        for name in existing
            .keys()
            .filter(|n| !specs.iter().any(|(s, _)| s == *n))
        {
            self.api.delete(name, &DeleteParams::default()).await?;
            self.written.remove(name);
        }
        if self.last_devices.as_ref() != Some(&devices) {
            tracing::info!(
                generation,
                devices = devices.len(),
                slices = specs.len(),
                "ResourceSlices published"
            );
        }
        self.last_devices = Some(devices);
        self.generation = Some(generation);
        Ok(false)
    }
}

/// The running publisher and slice watch.
pub struct Publisher {
    tasks: Vec<JoinHandle<()>>,
}

impl Publisher {
    pub fn start(
        client: Client,
        version: ApiVersion,
        node: String,
        view: watch::Receiver<Option<Arc<View>>>,
    ) -> Self {
        let (api, resource) = version.slices(client);
        let wake = Arc::new(Notify::new());
        let watch_task = tokio::spawn(watch_slices(api.clone(), node.clone(), wake.clone()));
        let sync = Sync {
            api,
            resource,
            version,
            node,
            generation: None,
            last_devices: None,
            written: BTreeMap::new(),
            taints: true,
        };
        let publish_task = tokio::spawn(publish(sync, view, wake));
        Publisher {
            tasks: vec![watch_task, publish_task],
        }
    }

    pub async fn shutdown(self) {
        for t in self.tasks {
            t.abort();
            let _ = t.await;
        }
    }
}

async fn publish(mut sync: Sync, mut view: watch::Receiver<Option<Arc<View>>>, wake: Arc<Notify>) {
    let mut delay = RETRY.0;
    let mut retry_at: Option<tokio::time::Instant> = None;
    let mut failing = false;
    loop {
        let at = retry_at.unwrap_or_else(|| tokio::time::Instant::now() + RESYNC);
        tokio::select! {
            changed = view.changed() => if changed.is_err() { return },
            _ = wake.notified() => {}
            _ = tokio::time::sleep_until(at) => {}
        }
        let Some(current) = view.borrow_and_update().clone() else {
            continue;
        };
        let mut again = true;
        let mut result = Ok(());
        while again {
            match tokio::time::timeout(CALL_TIMEOUT * 3, sync.run(&current)).await {
                Ok(Ok(more)) => again = more,
                Ok(Err(e)) => {
                    result = Err(e.to_string());
                    again = false;
                }
                Err(_) => {
                    result = Err(format!("no answer in {:?}", CALL_TIMEOUT * 3));
                    again = false;
                }
            }
        }
        match result {
            Ok(()) => {
                if std::mem::take(&mut failing) {
                    tracing::info!("ResourceSlices published again");
                }
                retry_at = None;
                delay = RETRY.0;
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "cannot publish the ResourceSlices; retrying with backoff");
                    failing = true;
                }
                // Our record of what is stored may be stale now.
                sync.written.clear();
                retry_at = Some(tokio::time::Instant::now() + delay);
                delay = (delay * 2).min(RETRY.1);
            }
        }
    }
}

/// Wakes the publisher on every change of the node's slices (our own
/// writes too: those passes find nothing to do).
async fn watch_slices(api: Api<DynamicObject>, node: String, wake: Arc<Notify>) {
    let config = watcher::Config::default().fields(&format!("spec.nodeName={node}"));
    let mut stream = watcher::watcher(api, config).default_backoff().boxed();
    let mut failing = false;
    while let Some(item) = stream.next().await {
        match item {
            Ok(watcher::Event::Delete(_))
            | Ok(watcher::Event::Apply(_))
            | Ok(watcher::Event::InitDone) => {
                if std::mem::take(&mut failing) {
                    tracing::info!("watching this node's ResourceSlices again");
                }
                wake.notify_one();
            }
            Ok(_) => {}
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "cannot watch this node's ResourceSlices; retrying with backoff");
                    failing = true;
                }
            }
        }
    }
}
