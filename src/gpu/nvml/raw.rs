//! The few NVML calls nvml-wrapper 0.13 does not wrap, or wraps in a way the
//! backend cannot use: MIG instance ids, a GPU instance's profile, event
//! registration that keeps the event set on `ERROR_NOT_SUPPORTED`, and event
//! waits that return the event's GPU/compute instance ids.
//!
//! Every function calls one symbol of the library nvml-wrapper loaded, with a
//! handle taken from a live `Device` or `EventSet` of the same `Nvml`.

use std::ptr;

use nvml_wrapper::error::{NvmlError, nvml_sym, nvml_try};
use nvml_wrapper::{Device, EventSet, Nvml};
use nvml_wrapper_sys::bindings::{nvmlEventData_t, nvmlGpuInstance_t, nvmlGpuInstanceInfo_t};

/// `nvmlDeviceGetGpuInstanceId` of a MIG device.
pub fn gpu_instance_id(mig: &Device) -> Result<u32, NvmlError> {
    let sym = nvml_sym(mig.nvml().lib().nvmlDeviceGetGpuInstanceId.as_ref())?;
    let mut id = 0;
    // SAFETY: the handle belongs to a live Device of this library; `id` is a valid out pointer.
    nvml_try(unsafe { sym(mig.handle(), &mut id) })?;
    Ok(id)
}

/// `nvmlDeviceGetComputeInstanceId` of a MIG device.
pub fn compute_instance_id(mig: &Device) -> Result<u32, NvmlError> {
    let sym = nvml_sym(mig.nvml().lib().nvmlDeviceGetComputeInstanceId.as_ref())?;
    let mut id = 0;
    // SAFETY: as above.
    nvml_try(unsafe { sym(mig.handle(), &mut id) })?;
    Ok(id)
}

/// The profile id (`nvmlGpuInstanceInfo_t.profileId`) of GPU instance `gi` on
/// `parent`, through `nvmlDeviceGetGpuInstanceById` and `nvmlGpuInstanceGetInfo`.
pub fn gpu_instance_profile_id(parent: &Device, gi: u32) -> Result<u32, NvmlError> {
    let lib = parent.nvml().lib();
    let by_id = nvml_sym(lib.nvmlDeviceGetGpuInstanceById.as_ref())?;
    let get_info = nvml_sym(lib.nvmlGpuInstanceGetInfo.as_ref())?;
    let mut instance: nvmlGpuInstance_t = ptr::null_mut();
    // SAFETY: live parent handle; `instance` is a valid out pointer.
    nvml_try(unsafe { by_id(parent.handle(), gi, &mut instance) })?;
    // SAFETY: `instance` was just returned by the library; the info struct is plain data.
    let mut info: nvmlGpuInstanceInfo_t = unsafe { std::mem::zeroed() };
    nvml_try(unsafe { get_info(instance, &mut info) })?;
    Ok(info.profileId)
}

/// `nvmlDeviceRegisterEvents`, keeping `set` usable whatever the outcome
/// (nvml-wrapper's `register_events` frees the set on any error).
pub fn register_events(device: &Device, set: &EventSet, mask: u64) -> Result<(), NvmlError> {
    let sym = nvml_sym(device.nvml().lib().nvmlDeviceRegisterEvents.as_ref())?;
    // SAFETY: live device and event-set handles of the same library.
    nvml_try(unsafe { sym(device.handle(), mask, set.handle()) })
}

/// One event as the driver reports it.
pub struct RawEvent<'nvml> {
    pub device: Device<'nvml>,
    pub event_type: u64,
    pub data: u64,
    pub gpu_instance_id: u32,
    pub compute_instance_id: u32,
}

/// `nvmlEventSetWait_v2`: the next event, or `Err(Timeout)` after `timeout_ms`.
pub fn wait<'nvml>(
    nvml: &'nvml Nvml,
    set: &EventSet<'nvml>,
    timeout_ms: u32,
) -> Result<RawEvent<'nvml>, NvmlError> {
    let sym = nvml_sym(nvml.lib().nvmlEventSetWait_v2.as_ref())?;
    // SAFETY: the event data is plain data filled in by the library.
    let mut data: nvmlEventData_t = unsafe { std::mem::zeroed() };
    // SAFETY: live event-set handle; `data` is a valid out pointer.
    nvml_try(unsafe { sym(set.handle(), &mut data, timeout_ms) })?;
    Ok(RawEvent {
        // SAFETY: the library hands out device handles that stay valid while it is initialised.
        device: unsafe { Device::new(data.device, nvml) },
        event_type: data.eventType,
        data: data.eventData,
        gpu_instance_id: data.gpuInstanceId,
        compute_instance_id: data.computeInstanceId,
    })
}
