//! An in-process kubelet speaking the real device-plugin wire protocol over
//! Unix sockets: it serves `Registration` on `kubelet.sock`, dials each plugin
//! back on registration (GetDevicePluginOptions, then ListAndWatch) and records
//! what it sees. Used by `demo`, the benchmarks and the tests; it behaves like
//! the kubelet's device manager (reference users-peers-kubelet.md §3.3–§3.9).

use std::collections::BTreeMap;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UnixListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::transport::{Channel, Server};
use tonic::{Request, Response, Status};

use gpu_device_plugin::kubelet::{API_VERSION, KUBELET_SOCKET_NAME, unix_channel};
use gpu_device_plugin::v1beta1::device_plugin_client::DevicePluginClient;
use gpu_device_plugin::v1beta1::registration_server::{Registration, RegistrationServer};
use gpu_device_plugin::v1beta1::{Device, DevicePluginOptions, Empty, RegisterRequest};

/// What the kubelet has seen of one resource.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SeenResource {
    /// Socket file name from the latest registration.
    pub endpoint: String,
    /// Options from GetDevicePluginOptions at registration.
    pub options: Option<DevicePluginOptions>,
    /// The latest ListAndWatch list.
    pub devices: Vec<Device>,
    /// ListAndWatch messages received over all registrations.
    pub updates: u64,
    /// The fewest Healthy devices any of those messages had.
    pub fewest_healthy: Option<usize>,
    /// Registrations of this resource.
    pub registrations: u64,
    /// True while a ListAndWatch stream is open.
    pub streaming: bool,
}

impl SeenResource {
    pub fn healthy(&self) -> usize {
        self.devices
            .iter()
            .filter(|d| d.health == "Healthy")
            .count()
    }
}

/// Everything the kubelet has seen.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KubeletView {
    pub registrations: Vec<RegisterRequest>,
    pub resources: BTreeMap<String, SeenResource>,
}

#[derive(Clone)]
struct Shared {
    dir: PathBuf,
    view: Arc<watch::Sender<KubeletView>>,
    streams: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

/// A running in-process kubelet.
pub struct LocalKubelet {
    socket: PathBuf,
    shared: Shared,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// Timed out waiting for the kubelet to see something.
#[derive(Debug, thiserror::Error)]
#[error("timed out after {0:?} waiting for the kubelet; it saw: {1}")]
pub struct WaitTimeout(pub Duration, pub String);

impl LocalKubelet {
    /// Starts like a kubelet does: deletes every socket in `dir` (as its
    /// device manager does at start-up), then serves `dir/kubelet.sock`.
    pub fn start(dir: &Path) -> std::io::Result<Self> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_socket() {
                std::fs::remove_file(entry.path())?;
            }
        }
        let socket = dir.join(KUBELET_SOCKET_NAME);
        let listener = UnixListener::bind(&socket)?;
        let shared = Shared {
            dir: dir.to_path_buf(),
            view: Arc::new(watch::channel(KubeletView::default()).0),
            streams: Arc::default(),
        };
        let (stop, mut stop_rx) = watch::channel(false);
        let service = RegistrationServer::new(shared.clone());
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stop_rx.wait_for(|s| *s).await;
            };
            let _ = Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(UnixListenerStream::new(listener), shutdown)
                .await;
        });
        Ok(LocalKubelet {
            socket,
            shared,
            stop,
            task,
        })
    }

    /// The registration socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// A copy of what the kubelet has seen so far.
    pub fn view(&self) -> KubeletView {
        self.shared.view.borrow().clone()
    }

    /// Waits until `pred` holds for the view, or `timeout` passes.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        pred: impl FnMut(&KubeletView) -> bool,
    ) -> Result<KubeletView, WaitTimeout> {
        let mut rx = self.shared.view.subscribe();
        match tokio::time::timeout(timeout, rx.wait_for(pred)).await {
            Ok(Ok(view)) => Ok(view.clone()),
            _ => Err(WaitTimeout(timeout, format!("{:?}", self.summary()))),
        }
    }

    /// Per resource: (devices, healthy, registrations, updates).
    pub fn summary(&self) -> BTreeMap<String, (usize, usize, u64, u64)> {
        self.view()
            .resources
            .iter()
            .map(|(k, r)| {
                (
                    k.clone(),
                    (r.devices.len(), r.healthy(), r.registrations, r.updates),
                )
            })
            .collect()
    }

    /// A client of the plugin serving `resource`, as the kubelet dials it.
    pub async fn client(&self, resource: &str) -> Result<DevicePluginClient<Channel>, Status> {
        let endpoint = self
            .view()
            .resources
            .get(resource)
            .map(|r| r.endpoint.clone())
            .ok_or_else(|| Status::not_found(format!("{resource} is not registered")))?;
        let channel = unix_channel(&self.shared.dir.join(endpoint))
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        Ok(DevicePluginClient::new(channel))
    }

    /// Stops serving, drops the plugin streams and removes `kubelet.sock`.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Ok(mut streams) = self.shared.streams.lock() {
            for s in streams.drain(..) {
                s.abort();
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), self.task).await;
        let _ = std::fs::remove_file(&self.socket);
    }
}

#[tonic::async_trait]
impl Registration for Shared {
    async fn register(&self, request: Request<RegisterRequest>) -> Result<Response<Empty>, Status> {
        let req = request.into_inner();
        if req.version != API_VERSION {
            return Err(Status::invalid_argument(format!(
                "requested API version {:?} is not supported by kubelet. Supported version is {:?}",
                req.version, API_VERSION
            )));
        }
        if !req.resource_name.contains('/') {
            return Err(Status::invalid_argument(format!(
                "the ResourceName {:?} is invalid",
                req.resource_name
            )));
        }
        // Like the kubelet: dial the plugin back before answering.
        let channel = unix_channel(&self.dir.join(&req.endpoint))
            .await
            .map_err(|e| Status::unavailable(format!("cannot dial plugin: {e}")))?;
        let mut client = DevicePluginClient::new(channel);
        let options = client
            .get_device_plugin_options(Empty {})
            .await?
            .into_inner();
        let name = req.resource_name.clone();
        self.view.send_modify(|v| {
            v.registrations.push(req.clone());
            let seen = v.resources.entry(name.clone()).or_default();
            seen.endpoint = req.endpoint.clone();
            seen.options = Some(options);
            seen.registrations += 1;
        });
        let view = self.view.clone();
        let stream_task = tokio::spawn(async move {
            let Ok(response) = client.list_and_watch(Empty {}).await else {
                return;
            };
            let mut stream = response.into_inner();
            view.send_modify(|v| v.resources.entry(name.clone()).or_default().streaming = true);
            while let Ok(Some(msg)) = stream.message().await {
                view.send_modify(|v| {
                    let seen = v.resources.entry(name.clone()).or_default();
                    seen.devices = msg.devices;
                    seen.updates += 1;
                    let healthy = seen.healthy();
                    seen.fewest_healthy =
                        Some(seen.fewest_healthy.map_or(healthy, |f| f.min(healthy)));
                });
            }
            view.send_modify(|v| v.resources.entry(name.clone()).or_default().streaming = false);
        });
        if let Ok(mut streams) = self.streams.lock() {
            streams.retain(|s| !s.is_finished());
            streams.push(stream_task);
        }
        Ok(Response::new(Empty {}))
    }
}
