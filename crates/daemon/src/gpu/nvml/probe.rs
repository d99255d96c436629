//! Asking one GPU whether it is fit for new work: it answers, its recovery
//! action (field 230), pages pending retirement, and row remapping pending
//! or failed. A question the driver or GPU cannot answer is `None`.

use nvml_wrapper::Device;
use nvml_wrapper::error::NvmlError;

use super::faults::{self, FIELD_RECOVERY_ACTION, Failure};
use super::raw;
use crate::gpu::{FaultKind, Probe, RecoveryAction};

/// The per-GPU fault an error on the call described by `what` means; a
/// node-wide error is reported as a failure of this GPU too, since a probe
/// can only answer for it.
fn fault(error: &NvmlError, what: &str) -> FaultKind {
    match faults::classify(error, what) {
        Failure::Gpu(kind) => kind,
        Failure::Node(message) => FaultKind::Failed(message),
    }
}

/// `Ok(None)` for an unsupported question, else the answer or the fault.
fn optional<T>(result: Result<T, NvmlError>, what: &str) -> Result<Option<T>, FaultKind> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(e) if faults::unsupported(&e) => Ok(None),
        Err(e) => Err(fault(&e, what)),
    }
}

/// The GPU's recovery action, `None` when the driver cannot say.
pub fn recovery_action(device: &Device) -> Result<Option<RecoveryAction>, NvmlError> {
    faults::recovery_action(raw::field_value(device, FIELD_RECOVERY_ACTION))
}

/// Probes the GPU with UUID `uuid`.
pub fn probe(lib: &nvml_wrapper::Nvml, uuid: &str) -> Result<Probe, FaultKind> {
    let device = lib
        .device_by_uuid(uuid)
        .map_err(|e| fault(&e, "cannot find the GPU (nvmlDeviceGetHandleByUUID)"))?;
    probe_device(&device)
}

/// Probes a GPU by its handle.
pub fn probe_device(device: &Device) -> Result<Probe, FaultKind> {
    let recovery_action = recovery_action(device).map_err(|e| {
        fault(
            &e,
            "cannot read its recovery action (nvmlDeviceGetFieldValues, field 230)",
        )
    })?;
    let retired_pages_pending = optional(
        device.are_pages_pending_retired(),
        "cannot read its pages pending retirement (nvmlDeviceGetRetiredPagesPendingStatus)",
    )?;
    let rows = optional(
        raw::remapped_rows(device),
        "cannot read its row remapping (nvmlDeviceGetRemappedRows)",
    )?;
    Ok(Probe {
        recovery_action,
        retired_pages_pending,
        remapped_rows_pending: rows.map(|r| r.pending),
        remapped_rows_failure: rows.map(|r| r.failure),
    })
}
