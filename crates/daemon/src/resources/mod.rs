//! The resource plan: which extended resources this node advertises and which
//! devices each one carries. A pure function of the inventory and the config;
//! MIG strategies, resource patterns and ID rules all live here.

mod mps;
mod pattern;
mod plan;
mod replicas;
pub mod wire;

pub use pattern::{NamedPattern, glob_match};
pub use plan::{PlanOptions, plan};
pub use replicas::{DeviceRef, DeviceSelector, ReplicaError, ReplicaRule, SharingOptions};

use std::collections::{BTreeMap, HashMap};

/// Largest device ID the kubelet accepts (API comment on `Device.ID`).
pub const MAX_DEVICE_ID_LEN: usize = 63;
/// Prefix of every resource this plugin advertises.
pub const RESOURCE_PREFIX: &str = "nvidia.com/";

/// How MIG-enabled GPUs are advertised (`--mig-strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MigStrategy {
    /// Whole GPUs only; MIG devices are ignored.
    #[default]
    None,
    /// Every MIG device as `nvidia.com/gpu`; all must be of one type.
    Single,
    /// Every MIG device as `nvidia.com/mig-<profile>`.
    Mixed,
}

impl MigStrategy {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(Self::None),
            "single" => Some(Self::Single),
            "mixed" => Some(Self::Mixed),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Single => "single",
            Self::Mixed => "mixed",
        }
    }
}

/// Where a MIG device sits on its GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MigPlacement {
    pub gpu_instance_id: u32,
    pub compute_instance_id: u32,
}

/// One device as advertised to the kubelet, with what Allocate needs to know.
#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    /// The ID the kubelet sees: a GPU or MIG UUID, or `<uuid>::<n>` for a replica.
    pub id: String,
    /// UUID of the physical GPU or MIG device behind it.
    pub uuid: String,
    /// NVML index: `"<gpu>"` or `"<gpu>:<mig slot>"` (the `index` ID strategy).
    pub index: String,
    /// UUID of the physical GPU (the parent for a MIG device).
    pub gpu_uuid: String,
    /// NVML index of the physical GPU.
    pub gpu_index: u32,
    /// Set for MIG devices.
    pub mig: Option<MigPlacement>,
    /// Replica number for time-sliced or MPS devices.
    pub replica: Option<u32>,
    /// NUMA node of the physical GPU, `None` when unknown.
    pub numa_node: Option<u32>,
    /// Device nodes inside a container (`/dev/nvidia<minor>`, MIG capability nodes).
    pub paths: Vec<String>,
}

/// How the devices of a resource are shared, when they are replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharingKind {
    TimeSlicing,
    Mps,
}

/// Sharing settings that apply to one resource's replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sharing {
    pub kind: SharingKind,
    /// Reject requests for more than one replica.
    pub fail_requests_greater_than_one: bool,
}

/// One extended resource: a name, its socket and its devices.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// Fully qualified name, e.g. `nvidia.com/gpu`.
    pub name: String,
    pub devices: Vec<Device>,
    /// Set when the devices are replicas of shared GPUs.
    pub sharing: Option<Sharing>,
}

impl Resource {
    /// Socket file name: `nvidia-<name after the slash>.sock`.
    pub fn socket_name(&self) -> String {
        socket_name(&self.name)
    }
}

/// Socket file name for a resource name: `nvidia-<name after the slash>.sock`.
pub fn socket_name(resource: &str) -> String {
    let short = resource.split_once('/').map_or(resource, |(_, s)| s);
    format!("nvidia-{short}.sock")
}

/// Device ID → position in its resource's device list: built once per plan,
/// shared by every snapshot of the resource and its preferred-allocation
/// tables. foldhash: the keys are our own IDs and the kubelet's echo of them,
/// so SipHash's flood resistance buys nothing, and hashing 800 replica IDs
/// with it costs more than the policy itself.
pub type DeviceIndex = HashMap<String, usize, foldhash::fast::RandomState>;

/// The index of `resource`'s device IDs (the plan guarantees they are
/// unique; the first is kept should one ever not be).
pub fn device_index(resource: &Resource) -> DeviceIndex {
    let mut index = DeviceIndex::default();
    index.reserve(resource.devices.len());
    for (i, d) in resource.devices.iter().enumerate() {
        index.entry(d.id.clone()).or_insert(i);
    }
    index
}

/// The resources of a node, by name. Resources with no devices are left out.
pub type Plan = BTreeMap<String, Resource>;

/// Errors that make a plan impossible; texts follow NVIDIA's plugin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("invalid MIG configuration: device {0} has no MIG devices configured")]
    NoMigDevices(u32),
    #[error("invalid MIG configuration: more than one MIG device type present on node")]
    MixedMigTypes,
    #[error(
        "invalid MIG configuration: all devices on the node must be configured with the same migEnabled value"
    )]
    MixedMigEnabled,
    #[error(
        "MIG profile '{0}' does not match any resource patterns (add a `resources.mig` pattern for it, or use --mig-strategy none)"
    )]
    UnmatchedMigProfile(String),
    #[error("GPU name '{0}' does not match any resource patterns")]
    UnmatchedGpu(String),
    #[error(
        "device ID '{id}' of {resource} is {len} characters long; the kubelet accepts at most 63"
    )]
    IdTooLong {
        resource: String,
        id: String,
        len: usize,
    },
    #[error("device ID '{id}' appears twice in {resource}")]
    DuplicateId { resource: String, id: String },
    #[error(transparent)]
    Sharing(#[from] ReplicaError),
    #[error(
        "{resource}: MPS accepts at most {max} clients per device of compute capability {cc}, but device {device} has {replicas} replicas; lower `replicas`"
    )]
    MpsClients {
        resource: String,
        device: String,
        replicas: u32,
        max: u32,
        cc: String,
    },
    #[error(
        "{resource} would advertise {devices} devices, {bytes} bytes in one ListAndWatch message, over the kubelet's limit of {limit} bytes (grpc-go's default maximum received message, 4 MiB); lower `replicas` for {resource} to at most {max_replicas} per shared device"
    )]
    MessageTooLarge {
        resource: String,
        devices: u64,
        bytes: u64,
        limit: u64,
        /// The largest `replicas` that, for every shared device, fits.
        max_replicas: u32,
    },
}
