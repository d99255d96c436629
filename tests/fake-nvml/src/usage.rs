//! Usage queries of the fake driver, answered from the `usage:` map of the
//! GPU or MIG device entry (the simulated backend reads the same map): a key
//! that is absent answers `NVML_ERROR_NOT_SUPPORTED`, as a device that cannot
//! report that value does.

use std::os::raw::c_uint;

use nvml_wrapper_sys::bindings::*;

use crate::ffi::*;
use crate::node::{Node, Usage};

const MIB: u64 = 1024 * 1024;

/// The usage map and memory size of the device behind `h`.
fn usage_of(node: &Node, h: Handle) -> Result<(Usage, u64), Ret> {
    match h {
        Handle::Mig(..) => {
            let (_, mig) = mig_of(node, h)?;
            Ok((mig.usage.unwrap_or_default(), mig.memory_mib))
        }
        _ => {
            let gpu = gpu_of(node, h)?;
            Ok((gpu.usage.unwrap_or_default(), gpu.memory_mib))
        }
    }
}

/// Memory used by the device behind `h` in bytes (0 without `memoryUsedMiB`),
/// for `nvmlDeviceGetMemoryInfo_v2`, which the inventory needs to answer.
pub fn used_bytes(node: &Node, h: Handle) -> u64 {
    usage_of(node, h).map_or(0, |(u, _)| u.memory_used_mib.unwrap_or(0) * MIB)
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlDeviceGetUtilizationRates(
    device: nvmlDevice_t,
    utilization: *mut nvmlUtilization_t,
) -> Ret {
    with_device(device, "nvmlDeviceGetUtilizationRates", |node, h| {
        let (usage, _) = usage_of(node, h)?;
        // NVML reports both rates in one call: supported only with both.
        match (usage.gpu_util, usage.memory_util) {
            (Some(gpu), Some(memory)) => Ok(put(utilization, nvmlUtilization_t { gpu, memory })),
            _ => Err(NOT_SUPPORTED),
        }
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlDeviceGetMemoryInfo(device: nvmlDevice_t, memory: *mut nvmlMemory_t) -> Ret {
    with_device(device, "nvmlDeviceGetMemoryInfo", |node, h| {
        let (usage, mib) = usage_of(node, h)?;
        let used = usage.memory_used_mib.ok_or(NOT_SUPPORTED)? * MIB;
        let total = mib * MIB;
        Ok(put(
            memory,
            nvmlMemory_t {
                total,
                free: total.saturating_sub(used),
                used,
            },
        ))
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlDeviceGetTemperature(
    device: nvmlDevice_t,
    sensor: nvmlTemperatureSensors_t,
    temp: *mut c_uint,
) -> Ret {
    with_device(device, "nvmlDeviceGetTemperature", |node, h| {
        if sensor != nvmlTemperatureSensors_enum_NVML_TEMPERATURE_GPU {
            return Err(INVALID_ARGUMENT);
        }
        let (usage, _) = usage_of(node, h)?;
        Ok(put(temp, usage.temperature_c.ok_or(NOT_SUPPORTED)?))
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlDeviceGetPowerUsage(device: nvmlDevice_t, power: *mut c_uint) -> Ret {
    with_device(device, "nvmlDeviceGetPowerUsage", |node, h| {
        let (usage, _) = usage_of(node, h)?;
        let watts = usage.power_w.ok_or(NOT_SUPPORTED)?;
        if !watts.is_finite() || !(0.0..=1_000_000.0).contains(&watts) {
            return Err(UNKNOWN);
        }
        Ok(put(power, (watts * 1000.0).round() as c_uint))
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlDeviceGetClockInfo(
    device: nvmlDevice_t,
    clock: nvmlClockType_t,
    mhz: *mut c_uint,
) -> Ret {
    with_device(device, "nvmlDeviceGetClockInfo", |node, h| {
        if clock != nvmlClockType_enum_NVML_CLOCK_SM {
            return Err(NOT_SUPPORTED);
        }
        let (usage, _) = usage_of(node, h)?;
        Ok(put(mhz, usage.sm_clock_mhz.ok_or(NOT_SUPPORTED)?))
    })
}
