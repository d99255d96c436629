//! Health events through NVML: one event set with XidCriticalError and
//! DoubleBitEccError registered on every watched GPU that supports them,
//! waited on [`WATCH_WAKE`] at a time (NVIDIA `internal/rm/health.go`).
//!
//! Failures stay with their GPU: one that cannot be registered is reported
//! unwatched and the others are watched; one found lost while waiting is
//! reported and the set is rebuilt without it (NVML cannot unregister a GPU,
//! and a set holding a lost GPU fails every wait). Only NVML itself failing
//! (no event set, a wait error other than a lost GPU) ends the watch.

use nvml_wrapper::bitmasks::event::EventTypes;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::{Device, EventSet, Nvml};

use super::faults::{self, Failure};
use super::{probe, raw};
use crate::gpu::{EventKind, FaultKind, GpuError, HealthEvent, WATCH_WAKE, WatchReport};

/// The value NVML puts in an event's GPU/compute instance id when the event
/// is not about one MIG device.
const NO_INSTANCE: u32 = 0xFFFF_FFFF;
/// The event types watched.
const WANTED: EventTypes = EventTypes::CRITICAL_XID_ERROR.union(EventTypes::DOUBLE_BIT_ECC_ERROR);

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

/// A GPU registered in the event set.
struct Watched<'nvml> {
    uuid: String,
    device: Device<'nvml>,
}

/// An event set and what registering the GPUs in it gave.
struct Registration<'nvml> {
    set: EventSet<'nvml>,
    watched: Vec<Watched<'nvml>>,
    unwatched: Vec<(String, FaultKind)>,
    unsupported: Vec<String>,
}

/// Creates an event set and registers `gpus` in it, each on its own.
fn register<'nvml>(lib: &'nvml Nvml, gpus: &[String]) -> Result<Registration<'nvml>, GpuError> {
    let set = lib
        .create_event_set()
        .map_err(|e| GpuError::Events(format!("cannot create an NVML event set: {e}")))?;
    let mut registration = Registration {
        set,
        watched: Vec::new(),
        unwatched: Vec::new(),
        unsupported: Vec::new(),
    };
    for uuid in gpus {
        match register_one(lib, &registration.set, uuid) {
            Ok(Some(device)) => registration.watched.push(Watched {
                uuid: uuid.clone(),
                device,
            }),
            Ok(None) => {
                tracing::warn!(gpu = %uuid, "GPU is too old to support health checking");
                registration.unsupported.push(uuid.clone());
            }
            Err((error, what)) => match faults::classify(&error, what) {
                Failure::Node(message) => {
                    return Err(GpuError::Events(format!("GPU {uuid}: {message}")));
                }
                Failure::Gpu(kind) => {
                    tracing::warn!(gpu = %uuid, fault = %kind, "GPU not watched for health events");
                    registration.unwatched.push((uuid.clone(), kind));
                }
            },
        }
    }
    Ok(registration)
}

/// Registers one GPU: its device, or `None` when it supports none of the
/// watched events.
fn register_one<'nvml>(
    lib: &'nvml Nvml,
    set: &EventSet<'nvml>,
    uuid: &str,
) -> Result<Option<Device<'nvml>>, (NvmlError, &'static str)> {
    let device = lib
        .device_by_uuid(uuid)
        .map_err(|e| (e, "cannot find the GPU (nvmlDeviceGetHandleByUUID)"))?;
    let supported = match device.supported_event_types() {
        Ok(types) => types,
        Err(NvmlError::NotSupported) => return Ok(None),
        Err(e) => {
            return Err((
                e,
                "cannot read the event types it supports (nvmlDeviceGetSupportedEventTypes)",
            ));
        }
    };
    let mask = WANTED & supported;
    if mask.is_empty() {
        return Ok(None);
    }
    match raw::register_events(&device, set, mask.bits()) {
        Ok(()) => Ok(Some(device)),
        Err(NvmlError::NotSupported) => Ok(None),
        Err(e) => Err((
            e,
            "cannot register health events (nvmlDeviceRegisterEvents)",
        )),
    }
}

/// The watched GPUs a failed wait with `GPU_IS_LOST` is about: the one the
/// library named, else every one that a probe finds lost.
fn lost_gpus(watched: &[Watched], named: Option<usize>) -> Vec<String> {
    let by_handle = |d| watched.iter().find(|w| raw::handle_id(&w.device) == d);
    if let Some(w) = named.and_then(by_handle) {
        return vec![w.uuid.clone()];
    }
    watched
        .iter()
        .filter(|w| probe::probe_device(&w.device) == Err(FaultKind::Lost))
        .map(|w| w.uuid.clone())
        .collect()
}

/// The UUID of the GPU an event came from: by its handle, else asked.
fn event_uuid(watched: &[Watched], event: &raw::RawEvent) -> Result<String, GpuError> {
    let handle = raw::handle_id(&event.device);
    if let Some(w) = watched.iter().find(|w| raw::handle_id(&w.device) == handle) {
        return Ok(w.uuid.clone());
    }
    event.device.uuid().map_err(|e| {
        GpuError::Events(format!(
            "cannot read the UUID of the GPU an event came from: {e}"
        ))
    })
}

/// Registers the events on `gpus` and hands reports to `sink` until
/// `stop()`, checked after every wait. With no GPU to wait on, calls `idle`
/// (which returns at the latest when `stop()` may have changed) instead.
pub fn watch(
    lib: &Nvml,
    gpus: &[String],
    sink: &mut dyn FnMut(WatchReport),
    stop: &dyn Fn() -> bool,
    idle: &dyn Fn(),
) -> Result<(), GpuError> {
    let mut registration = register(lib, gpus)?;
    sink(WatchReport::Watching {
        unwatched: std::mem::take(&mut registration.unwatched),
        unsupported: std::mem::take(&mut registration.unsupported),
    });
    let timeout_ms = u32::try_from(WATCH_WAKE.as_millis()).unwrap_or(u32::MAX);
    loop {
        if stop() {
            return Ok(());
        }
        if registration.watched.is_empty() {
            idle();
            continue;
        }
        let event = match raw::wait(lib, &registration.set, timeout_ms) {
            Ok(event) => event,
            Err(raw::WaitError {
                error: NvmlError::Timeout,
                ..
            }) => continue,
            Err(raw::WaitError {
                error: NvmlError::GpuLost,
                device,
            }) => {
                let lost = lost_gpus(&registration.watched, device);
                if lost.is_empty() {
                    return Err(GpuError::Events(
                        "waiting for NVML events failed: a GPU is lost, but every watched GPU answers"
                            .into(),
                    ));
                }
                let rest: Vec<String> = registration
                    .watched
                    .iter()
                    .map(|w| w.uuid.clone())
                    .filter(|uuid| !lost.contains(uuid))
                    .collect();
                // The new set is registered before the old one is freed.
                let Registration {
                    set,
                    watched,
                    unwatched,
                    ..
                } = register(lib, &rest)?;
                let old = std::mem::replace(
                    &mut registration,
                    Registration {
                        set,
                        watched,
                        unwatched: Vec::new(),
                        unsupported: Vec::new(),
                    },
                );
                drop(old);
                for uuid in lost {
                    tracing::warn!(gpu = %uuid, "GPU lost while watched for health events; watching the others");
                    sink(WatchReport::Fault {
                        uuid,
                        kind: FaultKind::Lost,
                    });
                }
                for (uuid, kind) in unwatched {
                    sink(WatchReport::Fault { uuid, kind });
                }
                continue;
            }
            Err(raw::WaitError { error, .. }) => {
                return Err(GpuError::Events(format!(
                    "waiting for NVML events failed: {error}"
                )));
            }
        };
        if !EventTypes::from_bits_truncate(event.event_type).intersects(WANTED) {
            tracing::debug!(event_type = event.event_type, "ignoring NVML event");
            continue;
        }
        let uuid = event_uuid(&registration.watched, &event)?;
        if let Some(health) = health_event(
            &uuid,
            event.event_type,
            event.data,
            event.gpu_instance_id,
            event.compute_instance_id,
        ) {
            sink(WatchReport::Event(health));
        }
    }
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
