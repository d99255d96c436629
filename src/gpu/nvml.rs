//! The NVML backend (placeholder until the NVML backend lands in this branch).
use std::time::Duration;

use super::{Backend, GpuError, HealthEvent, Inventory};

/// NVML backend.
pub struct Nvml;

impl Backend for Nvml {
    fn name(&self) -> &'static str {
        "nvml"
    }
    fn inventory(&self) -> Result<Inventory, GpuError> {
        Err(GpuError::NvmlInit("NVML backend not built yet".into()))
    }
    fn watch_health(
        &self,
        _gpus: &[String],
        _poll: Duration,
        _sink: &mut dyn FnMut(HealthEvent),
        _stop: &dyn Fn() -> bool,
    ) -> Result<(), GpuError> {
        Err(GpuError::NvmlInit("NVML backend not built yet".into()))
    }
}
