//! Event sets of the fake driver. A registered GPU raises one XID event per
//! number appended to its `xids` list in the node file (and per number
//! appended to a `migXids` list of one of its MIG devices, carrying that
//! device's GPU/compute instance ids), counted from registration time.
//! A registered GPU that is lost (`lost: true`, or `FAKE_NVML_LOST_CALL=nvmlEventSetWait_v2`)
//! raises nothing, and once no event is pending every wait on its set fails
//! with `GPU_IS_LOST` naming it (NVML cannot unregister a GPU).
//!
//! A wait blocks until the node file changes or its timeout passes: an
//! inotify watch on the file's directory wakes it, nothing polls.

use std::collections::{HashMap, VecDeque};
use std::os::raw::{c_uint, c_ulonglong};
use std::path::PathBuf;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode, EventKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use nvml_wrapper_sys::bindings::*;

use crate::ffi::*;
use crate::node::Node;

const XID: c_ulonglong = nvmlEventTypeXidCriticalError as c_ulonglong;
const SUPPORTED: c_ulonglong = (nvmlEventTypeXidCriticalError
    | nvmlEventTypeDoubleBitEccError
    | nvmlEventTypeSingleBitEccError) as c_ulonglong;
const NO_INSTANCE: c_uint = 0xFFFF_FFFF;
/// How often a waiting call looks at the node file when it cannot be watched.
const FALLBACK_POLL: Duration = Duration::from_millis(50);

/// Changes seen in the node file's directory; waits block until it moves.
static CHANGES: Mutex<u64> = Mutex::new(0);
static CHANGED: Condvar = Condvar::new();
/// The inotify watch behind `CHANGES`, made by the first wait.
static WATCHER: Mutex<Option<RecommendedWatcher>> = Mutex::new(None);

fn changes() -> MutexGuard<'static, u64> {
    CHANGES.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Watches the node file's directory, once; false if it cannot.
fn watch_node_file() -> bool {
    let mut watcher = WATCHER.lock().unwrap_or_else(PoisonError::into_inner);
    if watcher.is_some() {
        return true;
    }
    let Some(path) = std::env::var_os("FAKE_NVML_NODE").map(PathBuf::from) else {
        return false;
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let made = notify::recommended_watcher(|event: notify::Result<notify::Event>| {
        // Reads (ours included) change nothing; a close after writing does.
        let change = event.is_ok_and(|e| match e.kind {
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
            EventKind::Access(_) => false,
            _ => true,
        });
        if change {
            *changes() += 1;
            CHANGED.notify_all();
        }
    })
    .and_then(|mut w| w.watch(&dir, RecursiveMode::NonRecursive).map(|()| w));
    match made {
        Ok(w) => {
            *watcher = Some(w);
            true
        }
        Err(e) => {
            eprintln!("fake-nvml: cannot watch {}: {e}; polling", dir.display());
            false
        }
    }
}

/// Blocks until the node file's directory changes after `seen`, or `deadline`.
fn wait_for_change(seen: u64, deadline: Instant) {
    let mut count = changes();
    while *count == seen {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        count = CHANGED
            .wait_timeout(count, left)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
}

#[derive(Default)]
struct Set {
    /// GPU index → registered event mask.
    registered: Vec<(u32, c_ulonglong)>,
    /// UUID (GPU or MIG) → XIDs already turned into events.
    seen: HashMap<String, usize>,
    pending: VecDeque<nvmlEventData_t>,
}

impl Set {
    /// Queues the events implied by XID lists that grew since last time;
    /// returns a registered GPU that is lost, if any.
    fn scan(&mut self, node: &Node) -> Option<u32> {
        let mut lost = None;
        for &(index, mask) in &self.registered {
            let Some(gpu) = node.gpu(index) else { continue };
            if failure(gpu, "nvmlEventSetWait_v2").is_some() {
                lost = lost.or(Some(index));
                continue;
            }
            if mask & XID == 0 {
                continue;
            }
            let device = Handle::Gpu(index).device();
            let seen = self.seen.entry(gpu.uuid.clone()).or_insert(gpu.xids.len());
            for &xid in gpu.xids.iter().skip(*seen) {
                self.pending
                    .push_back(event(device, xid, NO_INSTANCE, NO_INSTANCE));
            }
            *seen = (*seen).max(gpu.xids.len());
            for mig in &gpu.mig_devices {
                let list = gpu
                    .mig_xids
                    .get(&mig.uuid)
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                let seen = self.seen.entry(mig.uuid.clone()).or_insert(list.len());
                for &xid in list.iter().skip(*seen) {
                    self.pending.push_back(event(
                        device,
                        xid,
                        mig.gpu_instance_id,
                        mig.compute_instance_id,
                    ));
                }
                *seen = (*seen).max(list.len());
            }
        }
        lost
    }
}

fn event(device: nvmlDevice_t, xid: u64, gi: c_uint, ci: c_uint) -> nvmlEventData_t {
    nvmlEventData_t {
        device,
        eventType: XID,
        eventData: xid,
        gpuInstanceId: gi,
        computeInstanceId: ci,
    }
}

fn set_of<'a>(set: nvmlEventSet_t) -> Option<&'a Mutex<Set>> {
    // SAFETY: event-set handles are the boxes made by `nvmlEventSetCreate`,
    // valid until `nvmlEventSetFree`, as the NVML API requires of callers.
    unsafe { set.cast::<Mutex<Set>>().as_ref() }
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlDeviceGetSupportedEventTypes(
    device: nvmlDevice_t,
    types: *mut c_ulonglong,
) -> Ret {
    match resolve(device, "nvmlDeviceGetSupportedEventTypes") {
        Ok(_) => put(types, SUPPORTED),
        Err(code) => code,
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlEventSetCreate(set: *mut nvmlEventSet_t) -> Ret {
    if let Err(code) = current_node() {
        return code;
    }
    let boxed = Box::into_raw(Box::new(Mutex::new(Set::default())));
    put(set, boxed.cast())
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlDeviceRegisterEvents(
    device: nvmlDevice_t,
    types: c_ulonglong,
    set: nvmlEventSet_t,
) -> Ret {
    let (node, handle) = match resolve(device, "nvmlDeviceRegisterEvents") {
        Ok(found) => found,
        Err(code) => return code,
    };
    let Handle::Gpu(index) = handle else {
        return NOT_SUPPORTED;
    };
    if env_lists("FAKE_NVML_EVENTS_NOT_SUPPORTED", index) || types & !SUPPORTED != 0 {
        return NOT_SUPPORTED;
    }
    let Some(Ok(mut state)) = set_of(set).map(Mutex::lock) else {
        return INVALID_ARGUMENT;
    };
    state.registered.push((index, types));
    // Count from what the file says now.
    if let Some(gpu) = node.gpu(index) {
        state.seen.entry(gpu.uuid.clone()).or_insert(gpu.xids.len());
        for mig in &gpu.mig_devices {
            let raised = gpu.mig_xids.get(&mig.uuid).map_or(0, Vec::len);
            state.seen.entry(mig.uuid.clone()).or_insert(raised);
        }
    }
    SUCCESS
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlEventSetWait_v2(
    set: nvmlEventSet_t,
    data: *mut nvmlEventData_t,
    timeout_ms: c_uint,
) -> Ret {
    if let Some(code) = env_code("FAKE_NVML_EVENT_WAIT_ERROR") {
        return code;
    }
    let Some(set) = set_of(set) else {
        return INVALID_ARGUMENT;
    };
    let deadline = Instant::now() + Duration::from_millis(u64::from(timeout_ms));
    let watching = watch_node_file();
    loop {
        let seen = *changes();
        {
            let Ok(mut state) = set.lock() else {
                return UNKNOWN;
            };
            let mut lost = None;
            if state.pending.is_empty() {
                match current_node() {
                    Ok(node) => lost = state.scan(&node),
                    Err(UNINITIALIZED) => return UNINITIALIZED,
                    // A half-written file raises nothing; the next look will.
                    Err(_) => {}
                }
            }
            if let Some(event) = state.pending.pop_front() {
                return put(data, event);
            }
            if let Some(index) = lost {
                // Name the device, as the event data of a failed wait may.
                let mut failed = event(Handle::Gpu(index).device(), 0, NO_INSTANCE, NO_INSTANCE);
                failed.eventType = 0;
                put(data, failed);
                return GPU_IS_LOST;
            }
        }
        if Instant::now() >= deadline {
            return TIMEOUT;
        }
        if watching {
            wait_for_change(seen, deadline);
        } else {
            std::thread::sleep(
                FALLBACK_POLL.min(deadline.saturating_duration_since(Instant::now())),
            );
        }
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlEventSetFree(set: nvmlEventSet_t) -> Ret {
    if set.is_null() {
        return INVALID_ARGUMENT;
    }
    // SAFETY: `set` is a box from `nvmlEventSetCreate`, freed once, as the API requires.
    drop(unsafe { Box::from_raw(set.cast::<Mutex<Set>>()) });
    SUCCESS
}
