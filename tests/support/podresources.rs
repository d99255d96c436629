//! A fake kubelet PodResources server speaking the real v1 proto over a
//! Unix socket: the test sets which container holds which device IDs, and
//! counts the List calls it answered.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use gpu_device_plugin::podresources_v1::pod_resources_lister_server::{
    PodResourcesLister, PodResourcesListerServer,
};
use gpu_device_plugin::podresources_v1::{
    AllocatableResourcesRequest, AllocatableResourcesResponse, ContainerDevices,
    ContainerResources, GetPodResourcesRequest, GetPodResourcesResponse, ListPodResourcesRequest,
    ListPodResourcesResponse, PodResources,
};
use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::{Request, Response, Status};

/// One container's devices: (pod, namespace, container, resource, device IDs).
pub type Held = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Vec<String>,
);

#[derive(Clone, Default)]
struct Service {
    pods: Arc<Mutex<Vec<PodResources>>>,
    lists: Arc<AtomicUsize>,
}

#[tonic::async_trait]
impl PodResourcesLister for Service {
    async fn list(
        &self,
        _: Request<ListPodResourcesRequest>,
    ) -> Result<Response<ListPodResourcesResponse>, Status> {
        self.lists.fetch_add(1, Ordering::SeqCst);
        let pod_resources = self.pods.lock().unwrap().clone();
        Ok(Response::new(ListPodResourcesResponse { pod_resources }))
    }

    async fn get_allocatable_resources(
        &self,
        _: Request<AllocatableResourcesRequest>,
    ) -> Result<Response<AllocatableResourcesResponse>, Status> {
        Ok(Response::new(AllocatableResourcesResponse::default()))
    }

    async fn get(
        &self,
        _: Request<GetPodResourcesRequest>,
    ) -> Result<Response<GetPodResourcesResponse>, Status> {
        Err(Status::unimplemented(
            "PodResources API Get method disabled",
        ))
    }
}

/// The server; stops when dropped.
pub struct FakePodResources {
    service: Service,
    socket: PathBuf,
    _dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl FakePodResources {
    /// Serves `kubelet.sock` in a new temp directory (call inside a tokio runtime).
    pub fn start(held: Vec<Held>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("kubelet.sock");
        let listener = UnixListener::bind(&socket).expect("bind pod-resources socket");
        let service = Service::default();
        let server = PodResourcesListerServer::new(service.clone());
        let task = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(server)
                .serve_with_incoming(UnixListenerStream::new(listener))
                .await;
        });
        let fake = FakePodResources {
            service,
            socket,
            _dir: dir,
            task,
        };
        fake.set(held);
        fake
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Replaces what List answers.
    pub fn set(&self, held: Vec<Held>) {
        let mut pods: Vec<PodResources> = Vec::new();
        for (pod, namespace, container, resource, ids) in held {
            let entry = ContainerResources {
                name: container.into(),
                devices: vec![ContainerDevices {
                    resource_name: resource.into(),
                    device_ids: ids,
                    topology: None,
                }],
                ..Default::default()
            };
            match pods
                .iter_mut()
                .find(|p| p.name == pod && p.namespace == namespace)
            {
                Some(p) => p.containers.push(entry),
                None => pods.push(PodResources {
                    name: pod.into(),
                    namespace: namespace.into(),
                    containers: vec![entry],
                }),
            }
        }
        *self.service.pods.lock().unwrap() = pods;
    }

    /// List calls answered so far.
    pub fn lists(&self) -> usize {
        self.service.lists.load(Ordering::SeqCst)
    }
}

impl Drop for FakePodResources {
    fn drop(&mut self) {
        self.task.abort();
    }
}
