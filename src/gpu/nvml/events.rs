//! Health events through NVML: one event set with XidCriticalError and
//! DoubleBitEccError registered on every watched GPU that supports them,
//! waited on with the poll interval as timeout (NVIDIA `internal/rm/health.go`).

use std::time::Duration;

use nvml_wrapper::bitmasks::event::EventTypes;
use nvml_wrapper::error::NvmlError;

use super::raw;
use crate::gpu::{EventKind, GpuError, HealthEvent};

/// The value NVML puts in an event's GPU/compute instance id when the event
/// is not about one MIG device.
const NO_INSTANCE: u32 = 0xFFFF_FFFF;

/// Maps one NVML event to a health event; `None` for event types the plugin
/// does not act on.
pub fn health_event(
    gpu_uuid: &str,
    event_type: u64,
    data: u64,
    gi: u32,
    ci: u32,
) -> Option<HealthEvent> {
    let types = EventTypes::from_bits_truncate(event_type);
    let kind = if types.contains(EventTypes::CRITICAL_XID_ERROR) {
        EventKind::Xid(data)
    } else if types.contains(EventTypes::DOUBLE_BIT_ECC_ERROR) {
        EventKind::DoubleBitEcc
    } else {
        return None;
    };
    let instance = |id: u32| (id != NO_INSTANCE).then_some(id);
    Some(HealthEvent {
        gpu_uuid: gpu_uuid.to_string(),
        kind,
        gpu_instance_id: instance(gi),
        compute_instance_id: instance(ci),
    })
}

/// Registers the events on `gpus` and hands events to `sink` until `stop()`.
pub fn watch(
    lib: &nvml_wrapper::Nvml,
    gpus: &[String],
    poll: Duration,
    sink: &mut dyn FnMut(HealthEvent),
    stop: &dyn Fn() -> bool,
) -> Result<(), GpuError> {
    let set = lib
        .create_event_set()
        .map_err(|e| GpuError::Events(format!("cannot create an NVML event set: {e}")))?;
    let wanted = EventTypes::CRITICAL_XID_ERROR | EventTypes::DOUBLE_BIT_ECC_ERROR;
    let mut registered = 0usize;
    for uuid in gpus {
        let device = lib.device_by_uuid(uuid.as_str()).map_err(|e| {
            GpuError::Events(format!("cannot find GPU {uuid} to watch its health: {e}"))
        })?;
        let supported = match device.supported_event_types() {
            Ok(types) => types,
            Err(NvmlError::NotSupported) => {
                tracing::warn!(gpu = %uuid, "GPU is too old to support health checking");
                continue;
            }
            Err(e) => {
                return Err(GpuError::Events(format!(
                    "cannot read the event types GPU {uuid} supports: {e}"
                )));
            }
        };
        let mask = wanted & supported;
        if mask.is_empty() {
            tracing::warn!(gpu = %uuid, "GPU supports neither XID nor ECC events; no health checking");
            continue;
        }
        match raw::register_events(&device, &set, mask.bits()) {
            Ok(()) => registered += 1,
            Err(NvmlError::NotSupported) => {
                tracing::warn!(gpu = %uuid, "GPU is too old to support health checking");
            }
            Err(e) => {
                return Err(GpuError::Events(format!(
                    "cannot register health events on GPU {uuid}: {e}"
                )));
            }
        }
    }
    let timeout_ms = u32::try_from(poll.as_millis()).unwrap_or(u32::MAX).max(1);
    while !stop() {
        if registered == 0 {
            std::thread::sleep(poll);
            continue;
        }
        let event = match raw::wait(lib, &set, timeout_ms) {
            Ok(event) => event,
            Err(NvmlError::Timeout) => continue,
            Err(e) => {
                return Err(GpuError::Events(format!(
                    "waiting for NVML events failed: {e}"
                )));
            }
        };
        if !EventTypes::from_bits_truncate(event.event_type).intersects(wanted) {
            tracing::debug!(event_type = event.event_type, "ignoring NVML event");
            continue;
        }
        let uuid = event.device.uuid().map_err(|e| {
            GpuError::Events(format!(
                "cannot read the UUID of the GPU an event came from: {e}"
            ))
        })?;
        if let Some(health) = health_event(
            &uuid,
            event.event_type,
            event.data,
            event.gpu_instance_id,
            event.compute_instance_id,
        ) {
            sink(health);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nvml_events_map_to_health_events() {
        const XID: u64 = 8;
        const DBE: u64 = 2;
        const SBE: u64 = 1;
        const CLOCK: u64 = 16;
        let ev = |kind, gi, ci| {
            Some(HealthEvent {
                gpu_uuid: "GPU-a".into(),
                kind,
                gpu_instance_id: gi,
                compute_instance_id: ci,
            })
        };
        let cases = [
            (
                XID,
                79,
                NO_INSTANCE,
                NO_INSTANCE,
                ev(EventKind::Xid(79), None, None),
            ),
            (XID, 94, 7, 0, ev(EventKind::Xid(94), Some(7), Some(0))),
            (
                XID,
                48,
                3,
                NO_INSTANCE,
                ev(EventKind::Xid(48), Some(3), None),
            ),
            (
                XID,
                999,
                NO_INSTANCE,
                NO_INSTANCE,
                ev(EventKind::Xid(999), None, None),
            ),
            (
                DBE,
                0,
                NO_INSTANCE,
                NO_INSTANCE,
                ev(EventKind::DoubleBitEcc, None, None),
            ),
            (SBE, 0, NO_INSTANCE, NO_INSTANCE, None),
            (CLOCK, 0, NO_INSTANCE, NO_INSTANCE, None),
        ];
        for (event_type, data, gi, ci, want) in cases {
            assert_eq!(
                health_event("GPU-a", event_type, data, gi, ci),
                want,
                "type {event_type} data {data}"
            );
        }
    }
}
