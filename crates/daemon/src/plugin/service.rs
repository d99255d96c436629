//! The tonic `DevicePlugin` implementation: reads the current snapshot and
//! calls the pure allocation functions. No I/O on any RPC path.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::Snapshot;
use crate::allocate::response::allocate;
use crate::metrics::{Method, RpcMetrics};
use crate::v1beta1::device_plugin_server::DevicePlugin;
use crate::v1beta1::{
    AllocateRequest, AllocateResponse, ContainerPreferredAllocationResponse, DevicePluginOptions,
    Empty, ListAndWatchResponse, PreStartContainerRequest, PreStartContainerResponse,
    PreferredAllocationRequest, PreferredAllocationResponse,
};

/// Options this plugin registers with and reports.
pub fn plugin_options() -> DevicePluginOptions {
    DevicePluginOptions {
        pre_start_required: false,
        get_preferred_allocation_available: true,
    }
}

/// The service of one resource.
#[derive(Clone)]
pub struct PluginService {
    state: watch::Receiver<Arc<Snapshot>>,
    stop: watch::Receiver<bool>,
    metrics: Option<RpcMetrics>,
}

impl PluginService {
    pub fn new(state: watch::Receiver<Arc<Snapshot>>, stop: watch::Receiver<bool>) -> Self {
        PluginService {
            state,
            stop,
            metrics: None,
        }
    }

    /// Records this resource's RPCs in `metrics`.
    pub fn with_metrics(mut self, metrics: Option<RpcMetrics>) -> Self {
        self.metrics = metrics;
        self
    }

    fn observe(&self, method: Method, started: Instant, ok: bool) {
        if let Some(m) = &self.metrics {
            m.observe(method, started.elapsed(), ok);
        }
    }

    fn current(&self) -> Arc<Snapshot> {
        self.state.borrow().clone()
    }
}

type ListStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<ListAndWatchResponse, Status>> + Send>>;

#[tonic::async_trait]
impl DevicePlugin for PluginService {
    type ListAndWatchStream = ListStream;

    async fn get_device_plugin_options(
        &self,
        _request: Request<Empty>,
    ) -> Result<Response<DevicePluginOptions>, Status> {
        Ok(Response::new(plugin_options()))
    }

    async fn list_and_watch(
        &self,
        _request: Request<Empty>,
    ) -> Result<Response<Self::ListAndWatchStream>, Status> {
        let mut state = self.state.clone();
        let mut stop = self.stop.clone();
        let (tx, rx) = mpsc::channel(2);
        let open = self.metrics.as_ref().map(RpcMetrics::stream_opened);
        tokio::spawn(async move {
            let _open = open;
            loop {
                let list = state.borrow_and_update().list.clone();
                if tx.send(Ok(list)).await.is_err() {
                    break;
                }
                tokio::select! {
                    changed = state.changed() => if changed.is_err() { break },
                    _ = crate::daemon::stopped(&mut stop) => break,
                    _ = tx.closed() => break,
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn get_preferred_allocation(
        &self,
        request: Request<PreferredAllocationRequest>,
    ) -> Result<Response<PreferredAllocationResponse>, Status> {
        let started = Instant::now();
        let snapshot = self.current();
        let container_responses = request
            .into_inner()
            .container_requests
            .into_iter()
            .map(|r| ContainerPreferredAllocationResponse {
                device_i_ds: snapshot.preferrer.choose(
                    &r.available_device_i_ds,
                    &r.must_include_device_i_ds,
                    usize::try_from(r.allocation_size).unwrap_or(0),
                ),
            })
            .collect();
        self.observe(Method::GetPreferredAllocation, started, true);
        Ok(Response::new(PreferredAllocationResponse {
            container_responses,
        }))
    }

    async fn allocate(
        &self,
        request: Request<AllocateRequest>,
    ) -> Result<Response<AllocateResponse>, Status> {
        let started = Instant::now();
        let result = self.allocate_all(request.into_inner());
        self.observe(Method::Allocate, started, result.is_ok());
        result.map(Response::new)
    }

    async fn pre_start_container(
        &self,
        _request: Request<PreStartContainerRequest>,
    ) -> Result<Response<PreStartContainerResponse>, Status> {
        Ok(Response::new(PreStartContainerResponse {}))
    }
}

impl PluginService {
    fn allocate_all(&self, request: AllocateRequest) -> Result<AllocateResponse, Status> {
        let snapshot = self.current();
        let mut container_responses = Vec::new();
        for r in request.container_requests {
            let response = allocate(
                &snapshot.resource,
                &snapshot.index,
                &r.devices_ids,
                &snapshot.options,
            )
            .map_err(|e| {
                tracing::warn!(resource = %snapshot.resource.name, error = %e, "allocate refused");
                Status::invalid_argument(e.to_string())
            })?;
            container_responses.push(response);
        }
        Ok(AllocateResponse {
            container_responses,
        })
    }
}
