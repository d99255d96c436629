//! `gpu-device-plugin inspect`: dials every device-plugin socket next to the
//! kubelet socket (ours or any vendor's), as the kubelet would, and reports
//! per socket its options and first ListAndWatch list; optionally asks the
//! plugin that serves some device IDs for its Allocate response, and with
//! `--pods` which container holds each device (the kubelet's PodResources
//! API). Read-only apart from that Allocate, which plugins treat as stateless.

mod pods;
mod render;

pub use pods::{PodView, PodsReport, UnmatchedView, attach_holders};

pub use render::{render_json, render_table};

use std::collections::BTreeMap;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use tonic::transport::Channel;

use crate::kubelet::{KUBELET_SOCKET_NAME, unix_channel};
use crate::v1beta1::device_plugin_client::DevicePluginClient;
use crate::v1beta1::{AllocateRequest, ContainerAllocateRequest, ContainerAllocateResponse, Empty};

/// Time allowed per socket for each step (connect, options, first list, Allocate).
pub const STEP_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error(
        "cannot list the device-plugin directory {dir}: {source} (point --kubelet-socket at the kubelet's socket)"
    )]
    Dir {
        dir: String,
        #[source]
        source: std::io::Error,
    },
}

/// What one plugin socket answered.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SocketReport {
    /// Socket file name.
    pub socket: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<OptionsView>,
    pub devices: Vec<DeviceView>,
    /// Set when the socket could not be dialled or an RPC failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allocate: Option<AllocateView>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OptionsView {
    pub pre_start_required: bool,
    pub get_preferred_allocation_available: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeviceView {
    pub id: String,
    pub health: String,
    /// NUMA nodes; empty when the device carries no topology.
    pub numa: Vec<i64>,
    /// With `--pods`: the containers holding this device ID.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pods: Vec<PodView>,
}

/// An Allocate request and its response (or error).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AllocateView {
    pub ids: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub envs: BTreeMap<String, String>,
    pub mounts: Vec<MountView>,
    pub device_specs: Vec<DeviceSpecView>,
    pub annotations: BTreeMap<String, String>,
    pub cdi_devices: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MountView {
    pub container_path: String,
    pub host_path: String,
    pub read_only: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceSpecView {
    pub container_path: String,
    pub host_path: String,
    pub permissions: String,
}

/// Everything `inspect` found.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Inspection {
    pub directory: String,
    pub sockets: Vec<SocketReport>,
    /// Requested Allocate IDs that no socket advertises.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unknown_ids: Vec<String>,
    /// With `--pods`: what the kubelet's PodResources API answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pods: Option<PodsReport>,
}

impl Inspection {
    /// True when some socket failed, an Allocate failed, an ID was unknown
    /// or the PodResources List asked for failed.
    pub fn has_problems(&self) -> bool {
        !self.unknown_ids.is_empty()
            || self.pods.as_ref().is_some_and(|p| p.error.is_some())
            || self.sockets.iter().any(|s| {
                s.error.is_some() || s.allocate.as_ref().is_some_and(|a| a.error.is_some())
            })
    }
}

/// The directory holding the plugin sockets of `kubelet_socket`.
pub fn socket_dir(kubelet_socket: &Path) -> PathBuf {
    kubelet_socket
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Socket files in `dir` other than the kubelet's, sorted by name.
pub fn plugin_sockets(dir: &Path) -> Result<Vec<String>, InspectError> {
    let dir_error = |source| InspectError::Dir {
        dir: dir.display().to_string(),
        source,
    };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(dir_error)? {
        let entry = entry.map_err(dir_error)?;
        let is_socket = entry.file_type().is_ok_and(|t| t.is_socket());
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_socket && name != KUBELET_SOCKET_NAME {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Which socket should allocate which of `ids`: the first socket (by name)
/// advertising each ID. Returns the plan per socket index and the unknown IDs.
pub fn route_ids(
    sockets: &[SocketReport],
    ids: &[String],
) -> (BTreeMap<usize, Vec<String>>, Vec<String>) {
    let mut routed: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    let mut unknown = Vec::new();
    for id in ids {
        let owner = sockets
            .iter()
            .position(|s| s.devices.iter().any(|d| &d.id == id));
        match owner {
            Some(i) => routed.entry(i).or_default().push(id.clone()),
            None => unknown.push(id.clone()),
        }
    }
    (routed, unknown)
}

/// Dials every plugin socket next to `kubelet_socket`; with `allocate` IDs,
/// also asks the sockets that advertise them for an Allocate response; with
/// `pod_resources`, lists which container holds each device there.
pub async fn inspect(
    kubelet_socket: &Path,
    allocate: &[String],
    pod_resources: Option<&Path>,
) -> Result<Inspection, InspectError> {
    let dir = socket_dir(kubelet_socket);
    let mut sockets = Vec::new();
    let mut clients = Vec::new();
    for name in plugin_sockets(&dir)? {
        let (report, client) = probe(&dir.join(&name), name).await;
        sockets.push(report);
        clients.push(client);
    }
    let (routed, unknown_ids) = route_ids(&sockets, allocate);
    for (i, ids) in routed {
        let client = clients.get_mut(i).and_then(Option::as_mut);
        if let (Some(client), Some(report)) = (client, sockets.get_mut(i)) {
            report.allocate = Some(allocate_on(client, ids).await);
        }
    }
    let pods = match pod_resources {
        Some(socket) => Some(pods::attach(&mut sockets, socket).await),
        None => None,
    };
    Ok(Inspection {
        directory: dir.display().to_string(),
        sockets,
        unknown_ids,
        pods,
    })
}

async fn step<T, E: std::fmt::Display>(
    what: &str,
    fut: impl Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(STEP_TIMEOUT, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => Err(format!("{what}: no answer within {STEP_TIMEOUT:?}")),
    }
}

async fn probe(path: &Path, socket: String) -> (SocketReport, Option<DevicePluginClient<Channel>>) {
    let mut report = SocketReport {
        socket,
        ..Default::default()
    };
    let result = async {
        let channel = step("connect", unix_channel(path)).await?;
        let mut client = DevicePluginClient::new(channel);
        let options = step(
            "GetDevicePluginOptions",
            client.get_device_plugin_options(Empty {}),
        )
        .await?
        .into_inner();
        report.options = Some(OptionsView {
            pre_start_required: options.pre_start_required,
            get_preferred_allocation_available: options.get_preferred_allocation_available,
        });
        let mut stream = step("ListAndWatch", client.list_and_watch(Empty {}))
            .await?
            .into_inner();
        let first = step("ListAndWatch first message", stream.message())
            .await?
            .ok_or_else(|| "ListAndWatch ended before sending a list".to_string())?;
        report.devices = first
            .devices
            .into_iter()
            .map(|d| DeviceView {
                id: d.id,
                health: d.health,
                numa: d
                    .topology
                    .map(|t| t.nodes.iter().map(|n| n.id).collect())
                    .unwrap_or_default(),
                pods: Vec::new(),
            })
            .collect();
        Ok::<_, String>(client)
    }
    .await;
    match result {
        Ok(client) => (report, Some(client)),
        Err(e) => {
            report.error = Some(e);
            (report, None)
        }
    }
}

async fn allocate_on(client: &mut DevicePluginClient<Channel>, ids: Vec<String>) -> AllocateView {
    let request = AllocateRequest {
        container_requests: vec![ContainerAllocateRequest {
            devices_ids: ids.clone(),
        }],
    };
    let response = step("Allocate", client.allocate(request))
        .await
        .and_then(|r| {
            r.into_inner()
                .container_responses
                .into_iter()
                .next()
                .ok_or_else(|| "Allocate returned no container response".to_string())
        });
    match response {
        Ok(r) => allocate_view(ids, r),
        Err(e) => AllocateView {
            ids,
            error: Some(e),
            ..Default::default()
        },
    }
}

fn allocate_view(ids: Vec<String>, r: ContainerAllocateResponse) -> AllocateView {
    AllocateView {
        ids,
        error: None,
        envs: r.envs.into_iter().collect(),
        mounts: r
            .mounts
            .into_iter()
            .map(|m| MountView {
                container_path: m.container_path,
                host_path: m.host_path,
                read_only: m.read_only,
            })
            .collect(),
        device_specs: r
            .devices
            .into_iter()
            .map(|d| DeviceSpecView {
                container_path: d.container_path,
                host_path: d.host_path,
                permissions: d.permissions,
            })
            .collect(),
        annotations: r.annotations.into_iter().collect(),
        cdi_devices: r.cdi_devices.into_iter().map(|c| c.name).collect(),
    }
}

#[cfg(test)]
#[path = "inspect_tests.rs"]
mod tests;
