//! What the hardware is: the inventory of GPUs and MIG devices, and the
//! backend trait that reads it (NVML on a real node, a YAML file in tests and demos).

pub mod mig_caps;
pub mod nvml;
pub mod simulated;
pub mod usage;
pub mod watch;

use std::time::Duration;

pub use usage::Usage;
pub use watch::StopSignal;

/// GPUs with these product names are display devices on DGX stations, never
/// advertised (NVIDIA's plugin skips them in go-nvlib `device.New`).
const DISPLAY_NAMES: [&str; 2] = ["DGX Display", "NVIDIA DGX Display"];

/// True for a DGX station's display device, by product name.
pub fn is_display_device(name: &str) -> bool {
    DISPLAY_NAMES.contains(&name)
}

/// Everything the plugin knows about a node's GPUs, read once at start and
/// again only when the hardware changes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Inventory {
    pub driver_version: Option<String>,
    /// The CUDA driver-API version NVML reports (`nvmlSystemGetCudaDriverVersion_v2`,
    /// e.g. 12040 = CUDA 12.4); `None` when it cannot be read.
    pub cuda_driver_version: Option<u32>,
    /// GPUs that answered, in NVML index order.
    pub gpus: Vec<Gpu>,
    /// Per-GPU problems found while reading: a GPU that NVML counts but that
    /// does not answer is here only; a GPU that answered but needs a reset
    /// (recovery action other than none) is in `gpus` and here too.
    pub faults: Vec<GpuFault>,
}

/// A problem with one GPU. It affects that GPU, its MIG devices and its
/// replicas, nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuFault {
    /// NVML index of the GPU.
    pub index: u32,
    /// Its UUID, when it could still be read (never for a lost GPU: NVML
    /// cannot read it then; map the index through an earlier inventory).
    pub uuid: Option<String>,
    pub kind: FaultKind,
}

/// What is wrong with a GPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// NVML answers `GPU_IS_LOST`: fallen off the bus or otherwise inaccessible.
    Lost,
    /// The driver says the GPU must be recovered before new work can use it
    /// (recovery action field 230 other than none, or `RESET_REQUIRED`).
    NeedsRecovery(RecoveryAction),
    /// Any other per-GPU NVML error; the text names the call.
    Failed(String),
}

impl std::fmt::Display for FaultKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Lost => f.write_str("GPU is lost (fallen off the bus or otherwise inaccessible)"),
            Self::NeedsRecovery(action) => {
                write!(
                    f,
                    "GPU needs recovery before new work (NVML recovery action {})",
                    action.name()
                )
            }
            Self::Failed(message) => f.write_str(message),
        }
    }
}

/// NVML's `nvmlDeviceGpuRecoveryAction_t` (field `NVML_FI_DEV_GET_GPU_RECOVERY_ACTION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryAction {
    /// 0: the GPU can be used by a new process right away.
    None,
    /// 1: terminate the GPU's processes and reset it (`nvidia-smi -r`).
    GpuReset,
    /// 2: reboot the node.
    NodeReboot,
    /// 3: quiesce peer-to-peer traffic, then query again.
    DrainP2P,
    /// 4: drain peer-to-peer traffic, then reset.
    DrainAndReset,
    /// Any value this build does not know (5 recover IMEX domain, 6 bus reset, 7 system reboot, ...).
    Other(u32),
}

impl RecoveryAction {
    /// Maps NVML's numeric value.
    pub fn from_nvml(value: u32) -> Self {
        match value {
            0 => Self::None,
            1 => Self::GpuReset,
            2 => Self::NodeReboot,
            3 => Self::DrainP2P,
            4 => Self::DrainAndReset,
            other => Self::Other(other),
        }
    }

    /// The name used in logs and in the simulated node file.
    pub fn name(self) -> String {
        match self {
            Self::None => "none".into(),
            Self::GpuReset => "gpuReset".into(),
            Self::NodeReboot => "nodeReboot".into(),
            Self::DrainP2P => "drainP2P".into(),
            Self::DrainAndReset => "drainAndReset".into(),
            Self::Other(v) => format!("action {v}"),
        }
    }
}

/// A GPU's fitness for new work, as NVML reports it right now. `None` in a
/// field means the driver or the GPU cannot answer that question
/// (`NOT_SUPPORTED`, or a driver older than the query).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Probe {
    /// Field 230 (R565+ drivers).
    pub recovery_action: Option<RecoveryAction>,
    /// `nvmlDeviceGetRetiredPagesPendingStatus`.
    pub retired_pages_pending: Option<bool>,
    /// `nvmlDeviceGetRemappedRows`: a remap waits for a reset.
    pub remapped_rows_pending: Option<bool>,
    /// `nvmlDeviceGetRemappedRows`: a remap failed at some time.
    pub remapped_rows_failure: Option<bool>,
}

/// What a running health watch reports besides events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchReport {
    /// Registration is done. `unwatched` GPUs (by UUID) could not be
    /// registered for events, with why; `unsupported` GPUs are too old for
    /// health events (NVML `NOT_SUPPORTED`) and stay healthy, unwatched.
    /// Neither is retried by this watch; a new watch registers them again.
    Watching {
        unwatched: Vec<(String, FaultKind)>,
        unsupported: Vec<String>,
    },
    /// A health event.
    Event(HealthEvent),
    /// A watched GPU stopped answering (found when a wait failed); the watch
    /// goes on without it and does not take it back, even if it answers again.
    Fault { uuid: String, kind: FaultKind },
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

/// The longest a health watch blocks in one wait (NVIDIA's plugin waits 5 s):
/// a stopped watch ends within this, and an idle node wakes this seldom.
pub const WATCH_WAKE: Duration = Duration::from_secs(5);

/// A source of GPU inventory and health events.
pub trait Backend: Send + Sync {
    /// Short name for logs: `nvml` or `simulated`.
    fn name(&self) -> &'static str;

    /// Reads the current inventory. An error here is node-wide (NVML gone,
    /// the GPU count unreadable); a problem with one GPU is a fault in the
    /// inventory instead.
    fn inventory(&self) -> Result<Inventory, GpuError>;

    /// Asks one GPU (by UUID) whether it is fit for new work. `Err` when the
    /// GPU does not answer (lost, or another per-GPU error).
    fn probe(&self, gpu_uuid: &str) -> Result<Probe, FaultKind>;

    /// Reads the usage of one GPU or MIG device (by its own UUID). Values the
    /// device cannot report are `None`; `Err` only when the device does not
    /// answer at all. Blocking: call it off the async loop.
    fn usage(&self, uuid: &str) -> Result<Usage, FaultKind>;

    /// Reads the usage of several devices: one answer per UUID, in order.
    /// The default asks [`Backend::usage`] for each; a backend that reads
    /// them all from one source (the simulated node file) overrides it.
    fn usage_many(&self, uuids: &[String]) -> Vec<Result<Usage, FaultKind>> {
        uuids.iter().map(|uuid| self.usage(uuid)).collect()
    }

    /// Watches the given GPUs (by UUID) for health events and hands reports
    /// to `sink`: first one `Watching`, then events and per-GPU faults. Blocks
    /// its thread, waking at least every [`WATCH_WAKE`] to check `stop()`;
    /// returns `Ok(())` once `stop()` is true, or an error when the event
    /// source fails for the whole node.
    fn watch_health(
        &self,
        gpus: &[String],
        sink: &mut dyn FnMut(WatchReport),
        stop: &dyn Fn() -> bool,
    ) -> Result<(), GpuError>;

    /// As [`Backend::watch_health`], but ends as soon as `stop` is stopped
    /// instead of at the next wake: the calling thread blocks on `stop` and
    /// on the backend's reports together, and wakes for nothing else. The
    /// default polls `stop` every [`WATCH_WAKE`]; both backends override it.
    fn watch_health_until(
        &self,
        gpus: &[String],
        sink: &mut dyn FnMut(WatchReport),
        stop: &StopSignal,
    ) -> Result<(), GpuError> {
        self.watch_health(gpus, sink, &|| stop.is_stopped())
    }
}
