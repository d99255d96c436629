//! Serving one resource's DevicePlugin service on a Unix socket, and stopping
//! it: streams end, the server returns, the socket file is removed (only if it
//! is still ours). A socket file that another process serves is never taken over.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UnixListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::transport::Server;

use super::{PluginService, Snapshot};
use crate::kubelet::{SocketId, socket_id};
use crate::metrics::RpcMetrics;
use crate::v1beta1::device_plugin_server::DevicePluginServer;

/// How long a stopping server may take to finish in-flight RPCs.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// Why a resource's socket cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "another process serves {0} (another device plugin for the same resource, e.g. NVIDIA's during a migration?); not taking it over: stop that plugin or remove its socket"
    )]
    InUse(String),
    #[error("cannot replace the stale socket file {path}: {source}")]
    RemoveStale {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on {path}: {source}")]
    Bind {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// A server listening on its socket.
pub struct RunningServer {
    socket: PathBuf,
    id: Option<SocketId>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// Whether a process accepts connections on the socket at `path`.
fn is_served(path: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(path).is_ok()
}

impl RunningServer {
    /// Binds `socket` (replacing a stale file nobody serves) and serves from
    /// `state`. The socket accepts connections as soon as this returns, so
    /// registering with the kubelet right after is safe. RPCs are recorded
    /// in `metrics` if given.
    pub fn start(
        socket: &Path,
        state: watch::Receiver<Arc<Snapshot>>,
        metrics: Option<RpcMetrics>,
    ) -> Result<Self, ServeError> {
        let path = socket.display().to_string();
        if socket.symlink_metadata().is_ok() {
            if is_served(socket) {
                return Err(ServeError::InUse(path));
            }
            match std::fs::remove_file(socket) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(ServeError::RemoveStale { path, source }),
            }
        }
        let listener = UnixListener::bind(socket).map_err(|source| ServeError::Bind {
            path: path.clone(),
            source,
        })?;
        let id = socket_id(socket);
        let (stop, stop_rx) = watch::channel(false);
        let service = PluginService::new(state, stop_rx.clone()).with_metrics(metrics);
        let task = tokio::spawn(async move {
            let mut stop_rx = stop_rx;
            let shutdown = async move {
                let _ = stop_rx.wait_for(|s| *s).await;
            };
            let result = Server::builder()
                .add_service(DevicePluginServer::new(service))
                .serve_with_incoming_shutdown(UnixListenerStream::new(listener), shutdown)
                .await;
            if let Err(e) = result {
                tracing::error!(socket = %path, error = %e, "device plugin server failed");
            }
        });
        Ok(RunningServer {
            socket: socket.to_path_buf(),
            id,
            stop,
            task,
        })
    }

    /// The identity of the socket file this server bound.
    pub fn id(&self) -> Option<SocketId> {
        self.id
    }

    /// Ends the ListAndWatch streams and stops accepting calls, and removes
    /// the socket file if it is still the one this server bound. Returns at
    /// once; the returned handle finishes when the server has stopped.
    pub fn stop(self) -> JoinHandle<()> {
        let _ = self.stop.send(true);
        if self.id.is_some()
            && socket_id(&self.socket) == self.id
            && let Err(e) = std::fs::remove_file(&self.socket)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(socket = %self.socket.display(), error = %e, "could not remove socket");
        }
        let abort = self.task.abort_handle();
        let task = self.task;
        let socket = self.socket;
        tokio::spawn(async move {
            if tokio::time::timeout(STOP_GRACE, task).await.is_err() {
                tracing::warn!(socket = %socket.display(), "server did not stop in time; aborting it");
                abort.abort();
            }
        })
    }
}
