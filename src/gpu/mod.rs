//! What the hardware is: the inventory of GPUs and MIG devices, and the
//! backend trait that reads it (NVML on a real node, a YAML file in tests and demos).

pub mod mig_caps;
pub mod nvml;
pub mod simulated;

use std::time::Duration;

/// Everything the plugin knows about a node's GPUs, read once at start and
/// again only when the hardware changes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Inventory {
    pub driver_version: Option<String>,
    /// GPUs in NVML index order.
    pub gpus: Vec<Gpu>,
}

/// One physical GPU.
#[derive(Debug, Clone, PartialEq)]
pub struct Gpu {
    pub index: u32,
    pub uuid: String,
    pub name: String,
    pub memory_mib: u64,
    /// PCI bus id in sysfs form, lower case: `0000:07:00.0`.
    pub pci_bus_id: String,
    /// Minor number of `/dev/nvidia<minor>`.
    pub minor: u32,
    /// NUMA node, `None` when unknown (the device then carries no topology).
    pub numa_node: Option<u32>,
    /// `"<major>.<minor>"`, when known.
    pub compute_capability: Option<String>,
    pub nvlinks: Vec<NvLink>,
    pub mig_enabled: bool,
    /// MIG devices in NVML slot order (empty unless `mig_enabled`).
    pub mig_devices: Vec<MigDevice>,
}

/// NVLink connection from one GPU to a peer GPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NvLink {
    /// NVML index of the peer GPU.
    pub peer: u32,
    /// Number of active links to that peer.
    pub links: u32,
}

/// One MIG device (a GPU instance + compute instance) on a MIG-enabled GPU.
#[derive(Debug, Clone, PartialEq)]
pub struct MigDevice {
    pub uuid: String,
    /// Profile name as NVIDIA formats it, e.g. `1g.10gb`, `1g.10gb+me`, `1c.2g.20gb`.
    pub profile: String,
    pub gpu_instance_id: u32,
    pub compute_instance_id: u32,
    pub memory_mib: u64,
    /// Container paths of the MIG capability device nodes
    /// (`/dev/nvidia-caps/nvidia-cap<N>` for the GPU instance, then the compute instance).
    pub cap_paths: Vec<String>,
}

/// A health event raised by the hardware.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthEvent {
    /// UUID of the physical GPU the event is about.
    pub gpu_uuid: String,
    pub kind: EventKind,
    /// GPU instance of the MIG device the event is about, when the event says.
    pub gpu_instance_id: Option<u32>,
    /// Compute instance of the MIG device the event is about, when the event says.
    pub compute_instance_id: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A critical XID error with its number.
    Xid(u64),
    /// A double-bit (uncorrectable) ECC error.
    DoubleBitEcc,
}

/// Errors of the hardware backends.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    #[error(
        "failed to initialize NVML: {0}. Check that the NVIDIA driver is installed on the node, that the \
         container runtime injects it (NVIDIA_VISIBLE_DEVICES=all with the nvidia runtime, or a \
         runtimeClassName), or point --driver-root / --driver-root-ctr-path at the driver"
    )]
    NvmlInit(String),
    #[error("NVML call failed: {0}")]
    Nvml(String),
    #[error("cannot read simulated node file {path}: {source}")]
    NodeFileRead {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid simulated node file {path}: {message}")]
    NodeFileInvalid { path: String, message: String },
    #[error("health event source stopped: {0}")]
    Events(String),
}

/// A source of GPU inventory and health events.
pub trait Backend: Send + Sync {
    /// Short name for logs: `nvml` or `simulated`.
    fn name(&self) -> &'static str;

    /// Reads the current inventory.
    fn inventory(&self) -> Result<Inventory, GpuError>;

    /// Waits for health events on the given GPUs (by UUID) and hands each one to
    /// `sink`. Blocks its thread; returns `Ok(())` once `stop()` is true (checked
    /// at least every `poll`), or an error when the event source fails.
    fn watch_health(
        &self,
        gpus: &[String],
        poll: Duration,
        sink: &mut dyn FnMut(HealthEvent),
        stop: &dyn Fn() -> bool,
    ) -> Result<(), GpuError>;
}
