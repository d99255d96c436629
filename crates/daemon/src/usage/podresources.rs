//! The kubelet's PodResources v1 client: one `List` over the Unix socket,
//! bounded (message size, pods, containers, device IDs), turned into the
//! device IDs each container holds. The kubelet's rate limit (10 burst,
//! 100/s) is far above what the daemon asks (one list per interval, and
//! one per Allocate nudge, coalesced).

use std::path::Path;
use std::time::Duration;

use super::attribution::Assignment;
use crate::podresources_v1::ListPodResourcesRequest;
use crate::podresources_v1::pod_resources_lister_client::PodResourcesListerClient;

/// Default socket of the kubelet's PodResources API.
pub const DEFAULT_POD_RESOURCES_SOCKET: &str = "/var/lib/kubelet/pod-resources/kubelet.sock";
/// The largest List answer read (a node with 110 pods answers a few KiB).
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;
/// Assignments kept from one answer; the rest is dropped (and logged).
pub const MAX_ASSIGNMENTS: usize = 65_536;
/// How long one List may take, connecting included.
pub const LIST_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a List failed.
#[derive(Debug, thiserror::Error)]
pub enum PodResourcesError {
    #[error(
        "kubelet PodResources socket {0} does not exist: mount the host's /var/lib/kubelet/pod-resources, or fix --pod-resources-socket (usage metrics stay without pod labels)"
    )]
    Missing(String),
    #[error("cannot connect to the kubelet PodResources socket {path}: {message}")]
    Connect { path: String, message: String },
    #[error("kubelet PodResources List on {path} failed: {message}")]
    List { path: String, message: String },
    #[error("kubelet PodResources List on {0} took longer than {LIST_TIMEOUT:?}")]
    Timeout(String),
}

/// The answer of one List, bounded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listed {
    pub assignments: Vec<Assignment>,
    /// Assignments dropped beyond [`MAX_ASSIGNMENTS`].
    pub dropped: usize,
}

/// Lists which container holds which device IDs of resources named `nvidia.com/…`.
pub async fn list(socket: &Path) -> Result<Listed, PodResourcesError> {
    let path = socket.display().to_string();
    if !socket.exists() {
        return Err(PodResourcesError::Missing(path));
    }
    let call = async {
        let channel =
            crate::kubelet::unix_channel(socket)
                .await
                .map_err(|e| PodResourcesError::Connect {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
        let mut client =
            PodResourcesListerClient::new(channel).max_decoding_message_size(MAX_MESSAGE_BYTES);
        client
            .list(ListPodResourcesRequest {})
            .await
            .map_err(|e| PodResourcesError::List {
                path: path.clone(),
                message: e.message().to_string(),
            })
    };
    let answer = tokio::time::timeout(LIST_TIMEOUT, call)
        .await
        .map_err(|_| PodResourcesError::Timeout(path.clone()))??;
    Ok(assignments(answer.into_inner()))
}

/// The device IDs of our resources in a List answer.
pub fn assignments(answer: crate::podresources_v1::ListPodResourcesResponse) -> Listed {
    let mut out = Listed::default();
    for pod in answer.pod_resources {
        for container in pod.containers {
            for devices in container.devices {
                if !devices
                    .resource_name
                    .starts_with(crate::resources::RESOURCE_PREFIX)
                {
                    continue;
                }
                for id in devices.device_ids {
                    if out.assignments.len() >= MAX_ASSIGNMENTS {
                        out.dropped += 1;
                        continue;
                    }
                    out.assignments.push(Assignment {
                        resource: devices.resource_name.clone(),
                        device_id: id,
                        pod: pod.name.clone(),
                        namespace: pod.namespace.clone(),
                        container: container.name.clone(),
                    });
                }
            }
        }
    }
    out
}
