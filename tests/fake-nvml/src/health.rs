//! Fitness queries of the fake driver, from the node file's per-GPU keys:
//! the recovery action (field 230 of `nvmlDeviceGetFieldValues`; any other
//! field is `NOT_SUPPORTED` in its own return code), pages pending
//! retirement, and row remapping (`NOT_SUPPORTED` on a MIG GPU with MIG
//! devices, as the real driver does).

use std::os::raw::{c_int, c_uint};

use nvml_wrapper_sys::bindings::*;

use crate::ffi::*;
use crate::node::Gpu;

/// `NVML_FI_DEV_GET_GPU_RECOVERY_ACTION`.
const FIELD_RECOVERY_ACTION: c_uint = 230;

/// Fills in one requested field of `gpu`.
fn answer(gpu: &Gpu, field: &mut nvmlFieldValue_t) {
    field.timestamp = 0;
    field.latencyUsec = 0;
    let action = gpu.recovery_action.map_or(Some(0), |a| a.value());
    match (field.fieldId, action) {
        (FIELD_RECOVERY_ACTION, Some(value)) => {
            field.valueType = nvmlValueType_enum_NVML_VALUE_TYPE_UNSIGNED_INT;
            field.value = nvmlValue_t { uiVal: value };
            field.nvmlReturn = SUCCESS;
        }
        _ => field.nvmlReturn = NOT_SUPPORTED,
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlDeviceGetFieldValues(
    device: nvmlDevice_t,
    count: c_int,
    values: *mut nvmlFieldValue_t,
) -> Ret {
    with_device(device, "nvmlDeviceGetFieldValues", |node, h| {
        let gpu = gpu_of(node, h)?;
        let count = usize::try_from(count).map_err(|_| INVALID_ARGUMENT)?;
        if values.is_null() || count == 0 {
            return Err(INVALID_ARGUMENT);
        }
        for i in 0..count {
            // SAFETY: the caller passes `count` valid, writable elements, as the NVML API requires.
            answer(gpu, unsafe { &mut *values.add(i) });
        }
        Ok(SUCCESS)
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlDeviceGetRetiredPagesPendingStatus(
    device: nvmlDevice_t,
    pending: *mut nvmlEnableState_t,
) -> Ret {
    with_device(
        device,
        "nvmlDeviceGetRetiredPagesPendingStatus",
        |node, h| {
            let state = if gpu_of(node, h)?.retired_pages_pending {
                nvmlEnableState_enum_NVML_FEATURE_ENABLED
            } else {
                nvmlEnableState_enum_NVML_FEATURE_DISABLED
            };
            Ok(put(pending, state))
        },
    )
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlDeviceGetRemappedRows(
    device: nvmlDevice_t,
    corrected: *mut c_uint,
    uncorrected: *mut c_uint,
    pending: *mut c_uint,
    failure: *mut c_uint,
) -> Ret {
    with_device(device, "nvmlDeviceGetRemappedRows", |node, h| {
        let gpu = gpu_of(node, h)?;
        if gpu.mig_active() {
            return Err(NOT_SUPPORTED);
        }
        if [corrected, uncorrected, pending, failure]
            .iter()
            .any(|p| p.is_null())
        {
            return Err(INVALID_ARGUMENT);
        }
        put(corrected, 0);
        put(
            uncorrected,
            c_uint::from(gpu.remapped_rows_pending || gpu.remapped_rows_failure),
        );
        put(pending, c_uint::from(gpu.remapped_rows_pending));
        Ok(put(failure, c_uint::from(gpu.remapped_rows_failure)))
    })
}
