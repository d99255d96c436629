//! The few NVML calls nvml-wrapper 0.13 does not wrap, or wraps in a way the
//! backend cannot use: MIG instance ids, a GPU instance's profile, event
//! registration that keeps the event set on `ERROR_NOT_SUPPORTED`, event
//! waits that return the event's GPU/compute instance ids (and the device a
//! failed wait names), one field value with its own return code, and row
//! remapping.
//!
//! Every function calls one symbol of the library nvml-wrapper loaded, with a
//! handle taken from a live `Device` or `EventSet` of the same `Nvml`.

use std::ptr;

use nvml_wrapper::error::{NvmlError, nvml_sym, nvml_try};
use nvml_wrapper::{Device, EventSet, Nvml};
use nvml_wrapper_sys::bindings::{
    nvmlEventData_t, nvmlFieldValue_t, nvmlGpuInstance_t, nvmlGpuInstanceInfo_t, nvmlValue_t,
};

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

/// The raw handle of `device` as a number, for telling devices apart only.
pub fn handle_id(device: &Device) -> usize {
    // SAFETY: the handle is only compared, never passed to the library or dereferenced.
    unsafe { device.handle() as usize }
}

/// One event as the driver reports it.
pub struct RawEvent<'nvml> {
    pub device: Device<'nvml>,
    pub event_type: u64,
    pub data: u64,
    pub gpu_instance_id: u32,
    pub compute_instance_id: u32,
}

/// A failed wait: the error, and the device the library named, if it did
/// (a wait fails with `GPU_IS_LOST` while a lost GPU is in the set).
pub struct WaitError {
    pub error: NvmlError,
    /// The raw handle, only for comparing with the handles of registered GPUs.
    pub device: Option<usize>,
}

/// `nvmlEventSetWait_v2`: the next event, or `Err(Timeout)` after `timeout_ms`.
pub fn wait<'nvml>(
    nvml: &'nvml Nvml,
    set: &EventSet<'nvml>,
    timeout_ms: u32,
) -> Result<RawEvent<'nvml>, WaitError> {
    let sym = nvml_sym(nvml.lib().nvmlEventSetWait_v2.as_ref()).map_err(|error| WaitError {
        error,
        device: None,
    })?;
    // SAFETY: the event data is plain data filled in by the library; all-zero is valid.
    let mut data: nvmlEventData_t = unsafe { std::mem::zeroed() };
    // SAFETY: live event-set handle; `data` is a valid out pointer.
    if let Err(error) = nvml_try(unsafe { sym(set.handle(), &mut data, timeout_ms) }) {
        let device = (!data.device.is_null()).then_some(data.device as usize);
        return Err(WaitError { error, device });
    }
    Ok(RawEvent {
        // SAFETY: the library hands out device handles that stay valid while it is initialised.
        device: unsafe { Device::new(data.device, nvml) },
        event_type: data.eventType,
        data: data.eventData,
        gpu_instance_id: data.gpuInstanceId,
        compute_instance_id: data.computeInstanceId,
    })
}

/// One value of `nvmlDeviceGetFieldValues` as its type says (`valueType`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldValue {
    Unsigned(u64),
    Signed(i64),
    Double(f64),
    /// A `valueType` this build does not know.
    Unknown(u32),
}

impl FieldValue {
    /// Reads the union member `value_type` names (`nvmlValueType_t`).
    pub fn read(value_type: u32, value: nvmlValue_t) -> FieldValue {
        // SAFETY: every member is plain data and the library filled in the one
        // `value_type` names; the struct was zeroed first, so no byte is undefined.
        unsafe {
            match value_type {
                0 => FieldValue::Double(value.dVal),
                1 => FieldValue::Unsigned(u64::from(value.uiVal)),
                #[allow(
                    clippy::useless_conversion,
                    reason = "c_ulong is u32 on 32-bit targets"
                )]
                2 => FieldValue::Unsigned(u64::from(value.ulVal)),
                3 => FieldValue::Unsigned(value.ullVal),
                4 => FieldValue::Signed(value.sllVal),
                5 => FieldValue::Signed(i64::from(value.siVal)),
                6 => FieldValue::Unsigned(u64::from(value.usVal)),
                other => FieldValue::Unknown(other),
            }
        }
    }
}

/// One field of `nvmlDeviceGetFieldValues`: the outer error is the call's,
/// the inner one the field's own `nvmlReturn` (how a driver that does not
/// know the field says so).
pub fn field_value(
    device: &Device,
    field_id: u32,
) -> Result<Result<FieldValue, NvmlError>, NvmlError> {
    let sym = nvml_sym(device.nvml().lib().nvmlDeviceGetFieldValues.as_ref())?;
    // SAFETY: plain data; all-zero is valid.
    let mut value: nvmlFieldValue_t = unsafe { std::mem::zeroed() };
    value.fieldId = field_id;
    // SAFETY: live device handle; one valid, writable element.
    nvml_try(unsafe { sym(device.handle(), 1, &mut value) })?;
    Ok(nvml_try(value.nvmlReturn).map(|()| FieldValue::read(value.valueType, value.value)))
}

/// What `nvmlDeviceGetRemappedRows` says of a pending or failed remap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemappedRows {
    pub pending: bool,
    pub failure: bool,
}

/// `nvmlDeviceGetRemappedRows` (Ampere and newer; `NOT_SUPPORTED` on a MIG
/// GPU with MIG devices).
pub fn remapped_rows(device: &Device) -> Result<RemappedRows, NvmlError> {
    let sym = nvml_sym(device.nvml().lib().nvmlDeviceGetRemappedRows.as_ref())?;
    let (mut corrected, mut uncorrected, mut pending, mut failure) = (0, 0, 0, 0);
    // SAFETY: live device handle; four valid out pointers.
    nvml_try(unsafe {
        sym(
            device.handle(),
            &mut corrected,
            &mut uncorrected,
            &mut pending,
            &mut failure,
        )
    })?;
    Ok(RemappedRows {
        pending: pending != 0,
        failure: failure != 0,
    })
}
