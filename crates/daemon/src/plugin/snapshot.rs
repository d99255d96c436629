//! A resource as served at one moment: its devices, their health, the prebuilt
//! ListAndWatch message and everything Allocate/GetPreferredAllocation need, so
//! that the RPC paths only read memory. The resource, its index and its
//! preferred-allocation tables are shared (`Arc`) by every snapshot of one
//! plan: a health change builds only the health vector and the message.

use std::sync::Arc;

use super::{HEALTHY, UNHEALTHY};
use crate::allocate::preferred::Preferrer;
use crate::allocate::response::AllocateOptions;
use crate::resources::{DeviceIndex, Resource};
use crate::v1beta1::{Device as WireDevice, ListAndWatchResponse, NumaNode, TopologyInfo};

/// Immutable view of one resource, swapped whole on every change.
pub struct Snapshot {
    /// The resource, shared with the other snapshots of its plan.
    pub resource: Arc<Resource>,
    /// Device ID → position in `resource.devices`, shared likewise.
    pub index: Arc<DeviceIndex>,
    /// Health per device, parallel to `resource.devices`.
    pub healthy: Vec<bool>,
    /// The message ListAndWatch sends for this snapshot.
    pub list: ListAndWatchResponse,
    pub options: Arc<AllocateOptions>,
    pub preferrer: Arc<Preferrer>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("resource", &self.resource.name)
            .field("devices", &self.healthy.len())
            .field("healthy", &self.healthy_count())
            .finish_non_exhaustive()
    }
}

impl Snapshot {
    /// The snapshot of `preferrer`'s resource with each device's health
    /// given by `healthy` (parallel to the devices; missing ones healthy).
    pub fn new(
        healthy: Vec<bool>,
        options: Arc<AllocateOptions>,
        preferrer: Arc<Preferrer>,
    ) -> Self {
        let resource = preferrer.resource().clone();
        let index = preferrer.index().clone();
        let list = ListAndWatchResponse {
            devices: resource
                .devices
                .iter()
                .enumerate()
                .map(|(i, d)| WireDevice {
                    id: d.id.clone(),
                    health: if healthy.get(i).copied().unwrap_or(true) {
                        HEALTHY.into()
                    } else {
                        UNHEALTHY.into()
                    },
                    // Unknown NUMA: no topology at all, never -1.
                    topology: d.numa_node.map(|n| TopologyInfo {
                        nodes: vec![NumaNode { id: i64::from(n) }],
                    }),
                })
                .collect(),
        };
        Snapshot {
            resource,
            index,
            healthy,
            list,
            options,
            preferrer,
        }
    }

    /// Number of devices currently healthy.
    pub fn healthy_count(&self) -> usize {
        self.healthy.iter().filter(|h| **h).count()
    }
}
