//! The NVML backend: the real GPUs of a node, read through `libnvidia-ml.so.1`
//! (nvml-wrapper), loaded the way NVIDIA's plugin loads it.
//!
//! One NVML handle lives as long as the backend (and any event thread still
//! finishing its last wait); GPUs are looked up by UUID when needed, never
//! kept as device handles across calls.

mod enumerate;
mod events;
mod faults;
pub mod loading;
mod mailbox;
pub mod naming;
mod probe;
mod raw;
mod usage;

use std::path::PathBuf;
use std::sync::Arc;

pub use events::health_event;

use super::{
    Backend, FaultKind, GpuError, Inventory, Probe, StopSignal, Usage, WATCH_WAKE, WatchReport,
};
use crate::numa::NumaSource;

/// Where the backend finds the driver and the node's topology.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NvmlOptions {
    /// The host's driver root as mounted in this container; `/` when the
    /// driver is installed in the container itself.
    pub container_driver_root: PathBuf,
    /// Where NUMA nodes come from.
    pub numa: NumaSource,
    /// The driver's MIG capability table.
    pub mig_minors_path: PathBuf,
    /// Load the library from exactly this path (skips the driver-root search).
    pub lib_path: Option<PathBuf>,
}

impl Default for NvmlOptions {
    fn default() -> Self {
        NvmlOptions {
            container_driver_root: PathBuf::from("/driver-root"),
            numa: NumaSource::default(),
            mig_minors_path: PathBuf::from("/proc/driver/nvidia-caps/mig-minors"),
            lib_path: None,
        }
    }
}

/// The NVML backend.
pub struct Nvml {
    lib: Arc<nvml_wrapper::Nvml>,
    opts: NvmlOptions,
}

impl std::fmt::Debug for Nvml {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nvml")
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl Nvml {
    /// Loads and initialises NVML. Fails with [`GpuError::NvmlInit`] when the
    /// library cannot be found or loaded, or the driver refuses to start.
    pub fn new(opts: NvmlOptions) -> Result<Nvml, GpuError> {
        let path = loading::library_path(&opts.container_driver_root, opts.lib_path.as_deref());
        let lib = nvml_wrapper::Nvml::builder()
            .lib_path(path.as_os_str())
            .init()
            .map_err(|e| GpuError::NvmlInit(format!("{e} (library {})", path.display())))?;
        let driver = lib
            .sys_driver_version()
            .unwrap_or_else(|e| format!("unknown ({e})"));
        let nvml_version = lib
            .sys_nvml_version()
            .unwrap_or_else(|e| format!("unknown ({e})"));
        tracing::info!(library = %path.display(), driver, nvml = nvml_version, "NVML initialised");
        Ok(Nvml {
            lib: Arc::new(lib),
            opts,
        })
    }

    /// The options the backend was created with.
    pub fn options(&self) -> &NvmlOptions {
        &self.opts
    }
}

impl Backend for Nvml {
    fn name(&self) -> &'static str {
        "nvml"
    }

    fn inventory(&self) -> Result<Inventory, GpuError> {
        enumerate::read_inventory(&self.lib, &self.opts)
    }

    fn probe(&self, gpu_uuid: &str) -> Result<Probe, FaultKind> {
        probe::probe(&self.lib, gpu_uuid)
    }

    fn usage(&self, uuid: &str) -> Result<Usage, FaultKind> {
        usage::read(&self.lib, uuid)
    }

    /// Waits in the calling thread; `stop()` is checked after every wait, so
    /// the watch ends at most [`WATCH_WAKE`] after it is set.
    fn watch_health(
        &self,
        gpus: &[String],
        sink: &mut dyn FnMut(WatchReport),
        stop: &dyn Fn() -> bool,
    ) -> Result<(), GpuError> {
        events::watch(&self.lib, gpus, sink, stop, &|| {
            std::thread::sleep(WATCH_WAKE)
        })
    }

    /// NVML cannot interrupt a wait, so the waits run in a thread of their
    /// own that hands reports to the calling thread; the call returns as soon
    /// as `stop` is stopped, and that thread ends after its current wait (at
    /// most [`WATCH_WAKE`] later), freeing the event set. It never calls `sink`.
    fn watch_health_until(
        &self,
        gpus: &[String],
        sink: &mut dyn FnMut(WatchReport),
        stop: &StopSignal,
    ) -> Result<(), GpuError> {
        mailbox::watch_in_thread(self.lib.clone(), gpus.to_vec(), sink, stop)
    }
}
