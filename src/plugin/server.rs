//! Serving one resource's DevicePlugin service on a Unix socket, and stopping
//! it: streams end, the server returns, the socket file is removed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UnixListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::transport::Server;

use super::{PluginService, Snapshot};
use crate::metrics::RpcMetrics;
use crate::v1beta1::device_plugin_server::DevicePluginServer;

/// How long a stopping server may take to finish in-flight RPCs.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// A server listening on its socket.
pub struct RunningServer {
    socket: PathBuf,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl RunningServer {
    /// Binds `socket` (replacing a stale file) and serves from `state`. The
    /// socket accepts connections as soon as this returns, so registering with
    /// the kubelet right after is safe. RPCs are recorded in `metrics` if given.
    pub fn start(
        socket: &Path,
        state: watch::Receiver<Arc<Snapshot>>,
        metrics: Option<RpcMetrics>,
    ) -> std::io::Result<Self> {
        match std::fs::remove_file(socket) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let listener = UnixListener::bind(socket)?;
        let (stop, stop_rx) = watch::channel(false);
        let service = PluginService::new(state, stop_rx.clone()).with_metrics(metrics);
        let name = socket.display().to_string();
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
                tracing::error!(socket = %name, error = %e, "device plugin server failed");
            }
        });
        Ok(RunningServer {
            socket: socket.to_path_buf(),
            stop,
            task,
        })
    }

    /// Ends the ListAndWatch streams, stops the server and removes the socket.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let abort = self.task.abort_handle();
        if tokio::time::timeout(STOP_GRACE, self.task).await.is_err() {
            tracing::warn!(socket = %self.socket.display(), "server did not stop in time; aborting it");
            abort.abort();
        }
        if let Err(e) = std::fs::remove_file(&self.socket)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(socket = %self.socket.display(), error = %e, "could not remove socket");
        }
    }
}
