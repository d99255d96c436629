//! The kubelet side of DRA as gRPC over Unix sockets: the registration
//! socket the plugin watcher finds (`pluginregistration.Registration`:
//! type `DRAPlugin`, `v1.DRAPlugin` first), and on the DRA socket the DRA
//! services v1 and v1beta1 (prepare/unprepare by [`Preparer`]) and the
//! `DRAResourceHealth` stream, which sends every device's health whenever
//! the view changes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::net::UnixListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::transport::Server;
use tonic::{Request, Response, Status};

use super::side::{Preparer, View};
use super::slices::DraDevice;
use super::{DRIVER, DraError, dra_socket, registration_socket};
use crate::dra_health_v1alpha1 as health;
use crate::dra_v1 as v1;
use crate::dra_v1beta1 as v1beta1;
use crate::pluginregistration as reg;

/// The services advertised, newest first (the kubelet takes the first it knows).
pub const SUPPORTED_VERSIONS: [&str; 2] = ["v1.DRAPlugin", "v1beta1.DRAPlugin"];

struct Registration {
    endpoint: String,
}

#[tonic::async_trait]
impl reg::registration_server::Registration for Registration {
    async fn get_info(
        &self,
        _: Request<reg::InfoRequest>,
    ) -> Result<Response<reg::PluginInfo>, Status> {
        Ok(Response::new(reg::PluginInfo {
            r#type: "DRAPlugin".into(),
            name: DRIVER.into(),
            endpoint: self.endpoint.clone(),
            supported_versions: SUPPORTED_VERSIONS.iter().map(|s| s.to_string()).collect(),
        }))
    }

    async fn notify_registration_status(
        &self,
        request: Request<reg::RegistrationStatus>,
    ) -> Result<Response<reg::RegistrationStatusResponse>, Status> {
        let status = request.into_inner();
        if status.plugin_registered {
            tracing::info!(
                driver = DRIVER,
                "registered with the kubelet as a DRA plugin"
            );
        } else {
            tracing::error!(driver = DRIVER, error = %status.error, "the kubelet refused the DRA plugin");
        }
        Ok(Response::new(reg::RegistrationStatusResponse {}))
    }
}

#[derive(Clone)]
struct Dra {
    preparer: Arc<Preparer>,
}

#[tonic::async_trait]
impl v1::dra_plugin_server::DraPlugin for Dra {
    async fn node_prepare_resources(
        &self,
        request: Request<v1::NodePrepareResourcesRequest>,
    ) -> Result<Response<v1::NodePrepareResourcesResponse>, Status> {
        let claims = request.into_inner().claims;
        Ok(Response::new(self.preparer.prepare(claims).await))
    }

    async fn node_unprepare_resources(
        &self,
        request: Request<v1::NodeUnprepareResourcesRequest>,
    ) -> Result<Response<v1::NodeUnprepareResourcesResponse>, Status> {
        let claims = request.into_inner().claims;
        Ok(Response::new(self.preparer.unprepare(claims).await))
    }
}

fn claim_to_v1(c: v1beta1::Claim) -> v1::Claim {
    v1::Claim {
        namespace: c.namespace,
        uid: c.uid,
        name: c.name,
    }
}

#[tonic::async_trait]
impl v1beta1::dra_plugin_server::DraPlugin for Dra {
    async fn node_prepare_resources(
        &self,
        request: Request<v1beta1::NodePrepareResourcesRequest>,
    ) -> Result<Response<v1beta1::NodePrepareResourcesResponse>, Status> {
        let claims = request.into_inner().claims.into_iter().map(claim_to_v1);
        let answer = self.preparer.prepare(claims.collect()).await;
        let claims = answer
            .claims
            .into_iter()
            .map(|(uid, r)| {
                let devices = r
                    .devices
                    .into_iter()
                    .map(|d| v1beta1::Device {
                        request_names: d.request_names,
                        pool_name: d.pool_name,
                        device_name: d.device_name,
                        cdi_device_ids: d.cdi_device_ids,
                    })
                    .collect();
                let r = v1beta1::NodePrepareResourceResponse {
                    devices,
                    error: r.error,
                };
                (uid, r)
            })
            .collect();
        Ok(Response::new(v1beta1::NodePrepareResourcesResponse {
            claims,
        }))
    }

    async fn node_unprepare_resources(
        &self,
        request: Request<v1beta1::NodeUnprepareResourcesRequest>,
    ) -> Result<Response<v1beta1::NodeUnprepareResourcesResponse>, Status> {
        let claims = request.into_inner().claims.into_iter().map(claim_to_v1);
        let answer = self.preparer.unprepare(claims.collect()).await;
        let claims = answer
            .claims
            .into_iter()
            .map(|(uid, r)| {
                (
                    uid,
                    v1beta1::NodeUnprepareResourceResponse { error: r.error },
                )
            })
            .collect();
        Ok(Response::new(v1beta1::NodeUnprepareResourcesResponse {
            claims,
        }))
    }
}

/// Every device of the pool `node` with its health, as the kubelet wants it.
pub fn health_message(
    node: &str,
    devices: &[DraDevice],
    unhealthy: &BTreeMap<String, String>,
) -> health::NodeWatchResourcesResponse {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let devices = devices
        .iter()
        .map(|d| {
            let reason = unhealthy.get(&d.uuid);
            health::DeviceHealth {
                device: Some(health::DeviceIdentifier {
                    pool_name: node.to_string(),
                    device_name: d.name.clone(),
                }),
                health: if reason.is_some() {
                    health::HealthStatus::Unhealthy as i32
                } else {
                    health::HealthStatus::Healthy as i32
                },
                last_updated_time: now,
                health_check_timeout_seconds: 0,
                message: reason.cloned().unwrap_or_default(),
            }
        })
        .collect();
    health::NodeWatchResourcesResponse { devices }
}

struct Health {
    view: watch::Receiver<Option<Arc<View>>>,
}

type HealthStream = Pin<
    Box<dyn tokio_stream::Stream<Item = Result<health::NodeWatchResourcesResponse, Status>> + Send>,
>;

#[tonic::async_trait]
impl health::dra_resource_health_server::DraResourceHealth for Health {
    type NodeWatchResourcesStream = HealthStream;

    async fn node_watch_resources(
        &self,
        _: Request<health::NodeWatchResourcesRequest>,
    ) -> Result<Response<Self::NodeWatchResourcesStream>, Status> {
        let mut rx = self.view.clone();
        rx.mark_changed();
        let stream = async_stream(move |tx| async move {
            while rx.changed().await.is_ok() {
                let msg = rx
                    .borrow_and_update()
                    .as_ref()
                    .map(|v| health_message(&v.input.node, &v.devices, &v.input.unhealthy));
                if let Some(msg) = msg
                    && tx.send(Ok(msg)).await.is_err()
                {
                    return;
                }
            }
        });
        Ok(Response::new(stream))
    }
}

/// A stream fed by a task through a small channel (ends when the task does
/// or the receiver is dropped).
fn async_stream<F, Fut>(f: F) -> HealthStream
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<health::NodeWatchResourcesResponse, Status>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(f(tx));
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}

/// A bound socket: a stale file from an earlier run is removed first.
fn bind(path: &Path) -> Result<UnixListener, DraError> {
    let dir_err = |source| DraError::Dir {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(dir_err)?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(DraError::Bind {
                path: path.display().to_string(),
                source,
            });
        }
    }
    UnixListener::bind(path).map_err(|source| DraError::Bind {
        path: path.display().to_string(),
        source,
    })
}

/// The two running servers; dropping stops them and removes the sockets.
pub struct Servers {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    sockets: Vec<PathBuf>,
}

impl Servers {
    /// Serves the DRA socket, then the registration socket (so the kubelet
    /// never finds a registration whose endpoint is not served yet).
    pub fn start(
        kubelet_dir: &Path,
        preparer: Arc<Preparer>,
        view: watch::Receiver<Option<Arc<View>>>,
    ) -> Result<Self, DraError> {
        let dra_path = dra_socket(kubelet_dir);
        let reg_path = registration_socket(kubelet_dir);
        let (stop, stop_rx) = watch::channel(false);
        let shutdown = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let dra = Dra { preparer };
        let listener = bind(&dra_path)?;
        let dra_server = Server::builder()
            .add_service(v1::dra_plugin_server::DraPluginServer::new(dra.clone()))
            .add_service(v1beta1::dra_plugin_server::DraPluginServer::new(dra))
            .add_service(
                health::dra_resource_health_server::DraResourceHealthServer::new(Health { view }),
            )
            .serve_with_incoming_shutdown(
                UnixListenerStream::new(listener),
                shutdown(stop_rx.clone()),
            );
        let path = dra_path.display().to_string();
        let t1 = tokio::spawn(async move {
            if let Err(e) = dra_server.await {
                tracing::error!(socket = %path, error = %e, "the DRA server failed");
            }
        });
        let listener = bind(&reg_path)?;
        let registration = Registration {
            endpoint: dra_path.display().to_string(),
        };
        let reg_server = Server::builder()
            .add_service(reg::registration_server::RegistrationServer::new(
                registration,
            ))
            // The plugin watcher sends the socket path as :authority (see
            // kubelet::authority): renamed before h2 sees it.
            .serve_with_incoming_shutdown(
                crate::kubelet::authority::rewriting_incoming(listener),
                shutdown(stop_rx),
            );
        let path = reg_path.display().to_string();
        let t2 = tokio::spawn(async move {
            if let Err(e) = reg_server.await {
                tracing::error!(socket = %path, error = %e, "the DRA registration server failed");
            }
        });
        tracing::info!(registration = %reg_path.display(), endpoint = %dra_path.display(), "serving the DRA plugin");
        Ok(Servers {
            stop,
            tasks: vec![t1, t2],
            sockets: vec![reg_path, dra_path],
        })
    }

    /// Stops serving and removes the sockets (the registration first, so
    /// the plugin watcher deregisters).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for path in &self.sockets {
            let _ = std::fs::remove_file(path);
        }
        for t in self.tasks {
            t.abort();
            let _ = t.await;
        }
    }
}
