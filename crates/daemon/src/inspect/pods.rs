//! `inspect --pods`: who holds each advertised device, from the kubelet's
//! PodResources API (the same client the usage metrics use). The matching of
//! the kubelet's answer onto the sockets' device lists is pure and tested in
//! `pods_tests.rs`; a replica ID is shown with the containers holding that
//! replica, exactly as the kubelet assigned it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::SocketReport;
use crate::resources::socket_name;
use crate::usage::Assignment;
use crate::usage::podresources;

/// A container holding a device.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct PodView {
    pub namespace: String,
    pub pod: String,
    pub container: String,
}

impl PodView {
    /// `namespace/pod/container`, as the table shows it.
    pub fn path(&self) -> String {
        format!("{}/{}/{}", self.namespace, self.pod, self.container)
    }
}

/// What the PodResources List gave `inspect`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodsReport {
    /// The socket asked.
    pub socket: String,
    /// Set when the List failed; no device then shows holders.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Assignments of `nvidia.com/…` resources that no socket advertises
    /// (a device withdrawn while a pod still holds it).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unmatched: Vec<UnmatchedView>,
}

/// An assignment whose device no socket lists.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct UnmatchedView {
    pub resource: String,
    pub id: String,
    #[serde(flatten)]
    pub holder: PodView,
}

/// Lists the kubelet's assignments on `socket` and writes each device's
/// holders into `sockets`.
pub async fn attach(sockets: &mut [SocketReport], socket: &Path) -> PodsReport {
    let mut report = PodsReport {
        socket: socket.display().to_string(),
        ..Default::default()
    };
    match podresources::list(socket).await {
        Ok(listed) => report.unmatched = attach_holders(sockets, &listed.assignments),
        Err(e) => report.error = Some(e.to_string()),
    }
    report
}

/// Sets `pods` on every device of `sockets` that an assignment names (the
/// resource's socket file and the exact device ID), sorted; returns the
/// assignments that matched no advertised device.
pub fn attach_holders(
    sockets: &mut [SocketReport],
    assignments: &[Assignment],
) -> Vec<UnmatchedView> {
    let mut by_device: BTreeMap<(String, &str), Vec<PodView>> = BTreeMap::new();
    for a in assignments {
        by_device
            .entry((socket_name(&a.resource), a.device_id.as_str()))
            .or_default()
            .push(PodView {
                namespace: a.namespace.clone(),
                pod: a.pod.clone(),
                container: a.container.clone(),
            });
    }
    for s in sockets.iter_mut() {
        for d in &mut s.devices {
            if let Some(mut pods) = by_device.remove(&(s.socket.clone(), d.id.as_str())) {
                pods.sort();
                pods.dedup();
                d.pods = pods;
            }
        }
    }
    let mut unmatched: Vec<UnmatchedView> = assignments
        .iter()
        .filter(|a| by_device.contains_key(&(socket_name(&a.resource), a.device_id.as_str())))
        .map(|a| UnmatchedView {
            resource: a.resource.clone(),
            id: a.device_id.clone(),
            holder: PodView {
                namespace: a.namespace.clone(),
                pod: a.pod.clone(),
                container: a.container.clone(),
            },
        })
        .collect();
    unmatched.sort();
    unmatched.dedup();
    unmatched
}

#[cfg(test)]
#[path = "pods_tests.rs"]
mod tests;
