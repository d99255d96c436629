//! Size of a resource's ListAndWatch message, computed from device ID lengths
//! and NUMA nodes without building it, and the kubelet's limit it must fit.
//!
//! The limit: the kubelet's device manager dials each plugin
//! (`pkg/kubelet/cm/devicemanager/plugin/v1beta1/client.go`) with no call
//! options, so grpc-go's client default applies: a received message may be at
//! most `defaultClientMaxReceiveMessageSize` = 4 MiB = 4 194 304 bytes of
//! serialized protobuf (the 5-byte gRPC frame header is not counted). A larger
//! ListAndWatchResponse fails the kubelet's stream with `ResourceExhausted`, so
//! the resource never gets devices. The whole resource travels in every
//! message, so the limit bounds the devices of one resource.
//!
//! The size is exact for the message `plugin::Snapshot` builds when every
//! device is Unhealthy, the longer of the two health strings; it is therefore
//! an upper bound whatever the devices' health.

use prost::encoding::encoded_len_varint;

use super::{PlanError, Resource};
use crate::plugin::{HEALTHY, UNHEALTHY};

/// grpc-go's default maximum received message size, which the kubelet's
/// device-plugin client keeps: 4 MiB.
pub const KUBELET_MAX_RECEIVE_BYTES: u64 = 4 * 1024 * 1024;

/// Device count and encoded size of one resource's ListAndWatchResponse.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WireSize {
    pub devices: u64,
    pub bytes: u64,
}

impl WireSize {
    /// Adds one device with an ID of `id_len` bytes.
    pub fn add_device(&mut self, id_len: usize, numa_node: Option<u32>) {
        self.add_many(1, id_len, numa_node);
    }

    /// Adds the `replicas` copies of a device whose ID is `id_len` bytes long:
    /// IDs `<id>::0` to `<id>::<replicas-1>`. Costs O(digits), not O(replicas).
    pub fn add_replicas(&mut self, id_len: usize, replicas: u32, numa_node: Option<u32>) {
        let replicas = u64::from(replicas);
        let mut low = 0u64;
        let mut high = 10u64;
        let mut digits = 1usize;
        while low < replicas {
            let count = replicas.min(high) - low;
            let copy_len = id_len.saturating_add(2 + digits);
            self.add_many(count, copy_len, numa_node);
            low = high;
            high = high.saturating_mul(10);
            digits += 1;
        }
    }

    fn add_many(&mut self, count: u64, id_len: usize, numa_node: Option<u32>) {
        let each = device_entry_len(id_len, numa_node);
        self.devices = self.devices.saturating_add(count);
        self.bytes = self.bytes.saturating_add(each.saturating_mul(count));
    }

    /// Whether the message fits under [`KUBELET_MAX_RECEIVE_BYTES`].
    pub fn fits(&self) -> bool {
        self.bytes <= KUBELET_MAX_RECEIVE_BYTES
    }
}

/// A resource as it will be, before its replicas are made: devices kept as
/// they are, and devices each to be replaced by some number of copies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shape {
    kept: WireSize,
    /// (ID length, NUMA node, replicas) of each device to replicate.
    shared: Vec<(usize, Option<u32>, u32)>,
}

impl Shape {
    /// A device that is advertised as it is.
    pub fn keep(&mut self, id_len: usize, numa_node: Option<u32>) {
        self.kept.add_device(id_len, numa_node);
    }

    /// A device that is advertised as `replicas` copies.
    pub fn replicate(&mut self, id_len: usize, numa_node: Option<u32>, replicas: u32) {
        self.shared.push((id_len, numa_node, replicas));
    }

    /// The size of the resource's message.
    pub fn size(&self) -> WireSize {
        self.size_with(|r| r)
    }

    /// The size with each shared device's replica count mapped by `replicas`.
    fn size_with(&self, replicas: impl Fn(u32) -> u32) -> WireSize {
        let mut size = self.kept;
        for &(id_len, numa, r) in &self.shared {
            size.add_replicas(id_len, replicas(r), numa);
        }
        size
    }

    /// The largest replica count that, given to every shared device, fits.
    pub fn max_replicas(&self) -> u32 {
        // Invariant: `low` fits (or is 0), `high` does not.
        let (mut low, mut high) = (0u64, u64::from(u32::MAX) + 1);
        while high - low > 1 {
            let mid = low + (high - low) / 2;
            let r = u32::try_from(mid).unwrap_or(u32::MAX);
            if self.size_with(|_| r).fits() {
                low = mid;
            } else {
                high = mid;
            }
        }
        u32::try_from(low).unwrap_or(u32::MAX)
    }

    /// Fails when `resource`'s message would exceed [`KUBELET_MAX_RECEIVE_BYTES`].
    pub fn check(&self, resource: &str) -> Result<(), PlanError> {
        let size = self.size();
        if size.fits() {
            return Ok(());
        }
        Err(PlanError::MessageTooLarge {
            resource: resource.to_string(),
            devices: size.devices,
            bytes: size.bytes,
            limit: KUBELET_MAX_RECEIVE_BYTES,
            max_replicas: self.max_replicas(),
        })
    }
}

/// The shape of an already built resource: every device kept as it is.
pub fn shape_of(resource: &Resource) -> Shape {
    let mut shape = Shape::default();
    for d in &resource.devices {
        shape.keep(d.id.len(), d.numa_node);
    }
    shape
}

/// Bytes of one `devices` entry of a ListAndWatchResponse: field tag, length
/// prefix and the `Device` message (ID, the longer health string, topology).
pub fn device_entry_len(id_len: usize, numa_node: Option<u32>) -> u64 {
    let id = as_u64(id_len);
    let id_field = if id == 0 { 0 } else { field_len(id) };
    let health = as_u64(HEALTHY.len().max(UNHEALTHY.len()));
    let topology = numa_node.map_or(0, |n| {
        // NUMANode{ID: int64}: proto3 leaves out the default 0.
        let node = if n == 0 {
            0
        } else {
            1 + as_u64(encoded_len_varint(u64::from(n)))
        };
        // TopologyInfo{nodes: [node]}, then Device.topology around it.
        field_len(field_len(node))
    });
    field_len(id_field.saturating_add(field_len(health) + topology))
}

/// A length-delimited field: one tag byte (field numbers below 16), the
/// varint length and the payload.
fn field_len(payload: u64) -> u64 {
    let prefix = 1 + as_u64(encoded_len_varint(payload));
    prefix.saturating_add(payload)
}

fn as_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
