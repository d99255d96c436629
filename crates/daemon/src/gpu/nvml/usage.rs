//! Reading one device's usage through NVML: utilization rates, memory
//! used/free, temperature, power and SM clock. Each value is read on its
//! own: a value the device does not support (`NOT_SUPPORTED`, e.g.
//! utilization on a MIG device) or whose call fails is absent, and only a
//! device that does not answer at all (handle lookup fails, GPU lost) is an
//! error, which leaves every other device's reading alone.

use nvml_wrapper::Device;
use nvml_wrapper::enum_wrappers::device::{Clock, TemperatureSensor};
use nvml_wrapper::error::{NvmlError, nvml_sym, nvml_try};
use nvml_wrapper_sys::bindings::nvmlMemory_t;

use super::faults::{self, Failure};
use crate::gpu::{FaultKind, Usage};

/// Memory as `nvmlDeviceGetMemoryInfo` (v1) reports it.
struct Memory {
    used: u64,
    free: u64,
}

/// `nvmlDeviceGetMemoryInfo`: `used` there is what DCGM's `FB_USED` reports
/// (v2 counts reserved memory as used on newer drivers).
fn memory_v1(device: &Device) -> Result<Memory, NvmlError> {
    let sym = nvml_sym(device.nvml().lib().nvmlDeviceGetMemoryInfo.as_ref())?;
    // SAFETY: plain C data; all-zero is a valid value.
    let mut memory: nvmlMemory_t = unsafe { std::mem::zeroed() };
    // SAFETY: the handle belongs to a live Device of this library; `memory` is a valid out pointer.
    nvml_try(unsafe { sym(device.handle(), &mut memory) })?;
    Ok(Memory {
        used: memory.used,
        free: memory.free,
    })
}

/// The value of one read: `Ok(None)` when unsupported or failed (the device
/// keeps its other values), `Err` only when the GPU is lost.
fn value<T>(result: Result<T, NvmlError>) -> Result<Option<T>, FaultKind> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(NvmlError::GpuLost) => Err(FaultKind::Lost),
        Err(e) if faults::unsupported(&e) => Ok(None),
        Err(e) => {
            tracing::debug!(error = %e, "usage value unreadable");
            Ok(None)
        }
    }
}

/// Reads the usage of the GPU or MIG device with UUID `uuid`.
pub fn read(lib: &nvml_wrapper::Nvml, uuid: &str) -> Result<Usage, FaultKind> {
    let device = lib.device_by_uuid(uuid).map_err(|e| {
        match faults::classify(&e, "cannot find the device (nvmlDeviceGetHandleByUUID)") {
            Failure::Gpu(kind) => kind,
            Failure::Node(message) => FaultKind::Failed(message),
        }
    })?;
    let rates = value(device.utilization_rates())?;
    let memory = value(memory_v1(&device))?;
    Ok(Usage {
        gpu_util_percent: rates.as_ref().map(|r| r.gpu),
        memory_util_percent: rates.as_ref().map(|r| r.memory),
        memory_used_bytes: memory.as_ref().map(|m| m.used),
        memory_free_bytes: memory.as_ref().map(|m| m.free),
        temperature_c: value(device.temperature(TemperatureSensor::Gpu))?,
        power_mw: value(device.power_usage())?,
        sm_clock_mhz: value(device.clock_info(Clock::SM))?,
    })
}
