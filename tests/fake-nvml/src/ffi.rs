//! Plumbing of the fake driver: opaque handles, out-parameters, C strings,
//! initialisation state and the failures tests ask for through env vars:
//!
//! - `FAKE_NVML_INIT_ERROR=<nvmlReturn_t>`: `nvmlInit*` fails with that code
//!   (9 driver not loaded, 18 driver/library version mismatch, ...).
//! - `FAKE_NVML_LOST_GPU=<index>`: calls on that GPU (and its MIG devices),
//!   handle lookups included, return `NVML_ERROR_GPU_IS_LOST`; only the call
//!   named by `FAKE_NVML_LOST_CALL=<nvml function>` when that is set
//!   (`nvmlEventSetWait_v2`: waits on a set holding the GPU fail, naming it).
//!   `FAKE_NVML_LOST_CODE=<nvmlReturn_t>` returns that code instead.
//!
//! A GPU with `lost: true` in the node file fails every call the same way.
//! - `FAKE_NVML_EVENT_WAIT_ERROR=<nvmlReturn_t>`: `nvmlEventSetWait_v2` fails.
//! - `FAKE_NVML_EVENTS_NOT_SUPPORTED=<index>,...`: registering events on those
//!   GPUs returns `NVML_ERROR_NOT_SUPPORTED`.

use std::os::raw::{c_char, c_uint};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use nvml_wrapper_sys::bindings::*;

use crate::node::{self, Gpu, Mig, Node};

pub type Ret = nvmlReturn_t;
pub const SUCCESS: Ret = nvmlReturn_enum_NVML_SUCCESS;
pub const UNINITIALIZED: Ret = nvmlReturn_enum_NVML_ERROR_UNINITIALIZED;
pub const INVALID_ARGUMENT: Ret = nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT;
pub const NOT_SUPPORTED: Ret = nvmlReturn_enum_NVML_ERROR_NOT_SUPPORTED;
pub const NOT_FOUND: Ret = nvmlReturn_enum_NVML_ERROR_NOT_FOUND;
pub const INSUFFICIENT_SIZE: Ret = nvmlReturn_enum_NVML_ERROR_INSUFFICIENT_SIZE;
pub const DRIVER_NOT_LOADED: Ret = nvmlReturn_enum_NVML_ERROR_DRIVER_NOT_LOADED;
pub const TIMEOUT: Ret = nvmlReturn_enum_NVML_ERROR_TIMEOUT;
pub const GPU_IS_LOST: Ret = nvmlReturn_enum_NVML_ERROR_GPU_IS_LOST;
pub const RESET_REQUIRED: Ret = nvmlReturn_enum_NVML_ERROR_RESET_REQUIRED;
pub const UNKNOWN: Ret = nvmlReturn_enum_NVML_ERROR_UNKNOWN;
pub const LIBRARY_NOT_FOUND: Ret = nvmlReturn_enum_NVML_ERROR_LIBRARY_NOT_FOUND;

/// Number of `nvmlInit*` calls not yet matched by `nvmlShutdown`.
pub static INIT_COUNT: AtomicU32 = AtomicU32::new(0);

/// An env var holding a return code, if set and numeric.
pub fn env_code(name: &str) -> Option<Ret> {
    std::env::var(name).ok()?.trim().parse().ok()
}

/// Whether a comma-separated env var lists `index`.
pub fn env_lists(name: &str, index: u32) -> bool {
    std::env::var(name)
        .map(|v| v.split(',').any(|s| s.trim().parse() == Ok(index)))
        .unwrap_or(false)
}

/// What a handle the fake gave out points at. Handles are opaque numbers
/// (kind, GPU index, sub id) the caller never dereferences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handle {
    Gpu(u32),
    Mig(u32, u32),
    GpuInstance(u32, u32),
}

impl Handle {
    fn encode(self) -> usize {
        let (kind, gpu, sub) = match self {
            Handle::Gpu(g) => (1, g, 0),
            Handle::Mig(g, slot) => (2, g, slot),
            Handle::GpuInstance(g, gi) => (3, g, gi),
        };
        (kind << 24) | ((gpu as usize & 0xFFF) << 12) | (sub as usize & 0xFFF)
    }

    pub fn decode(raw: usize) -> Option<Handle> {
        let gpu = ((raw >> 12) & 0xFFF) as u32;
        let sub = (raw & 0xFFF) as u32;
        match raw >> 24 {
            1 => Some(Handle::Gpu(gpu)),
            2 => Some(Handle::Mig(gpu, sub)),
            3 => Some(Handle::GpuInstance(gpu, sub)),
            _ => None,
        }
    }

    pub fn device(self) -> nvmlDevice_t {
        self.encode() as nvmlDevice_t
    }

    pub fn gpu_instance(self) -> nvmlGpuInstance_t {
        self.encode() as nvmlGpuInstance_t
    }

    pub fn gpu_index(self) -> u32 {
        match self {
            Handle::Gpu(g) | Handle::Mig(g, _) | Handle::GpuInstance(g, _) => g,
        }
    }
}

/// Writes `value` through an out-pointer.
pub fn put<T>(out: *mut T, value: T) -> Ret {
    if out.is_null() {
        return INVALID_ARGUMENT;
    }
    // SAFETY: the caller passes a valid, writable out-pointer, as the NVML API requires.
    unsafe { out.write(value) };
    SUCCESS
}

/// Copies `s` and a NUL into a caller buffer of `len` bytes.
pub fn put_str(out: *mut c_char, len: c_uint, s: &str) -> Ret {
    if out.is_null() {
        return INVALID_ARGUMENT;
    }
    if s.len() + 1 > len as usize {
        return INSUFFICIENT_SIZE;
    }
    // SAFETY: `out` has room for `len` >= s.len() + 1 bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(s.as_ptr().cast::<c_char>(), out, s.len());
        out.add(s.len()).write(0);
    }
    SUCCESS
}

/// Reads a C string argument.
pub fn get_str(s: *const c_char) -> Option<String> {
    if s.is_null() {
        return None;
    }
    // SAFETY: the caller passes a NUL-terminated string, as the NVML API requires.
    let s = unsafe { std::ffi::CStr::from_ptr(s) };
    s.to_str().ok().map(str::to_string)
}

/// The loaded node, or the code a call made without one returns.
pub fn current_node() -> Result<Arc<Node>, Ret> {
    if INIT_COUNT.load(Ordering::SeqCst) == 0 {
        return Err(UNINITIALIZED);
    }
    node::load().map_err(|message| {
        eprintln!("fake-nvml: {message}");
        UNKNOWN
    })
}

/// The code the NVML function `call` on `gpu` fails with, if the node file
/// (`lost: true`) or `FAKE_NVML_LOST_*` say it fails.
pub fn failure(gpu: &Gpu, call: &str) -> Option<Ret> {
    if gpu.lost {
        return Some(GPU_IS_LOST);
    }
    let lost = env_code("FAKE_NVML_LOST_GPU")?;
    let only = std::env::var("FAKE_NVML_LOST_CALL").ok();
    (lost == gpu.index && only.as_deref().is_none_or(|c| c == call))
        .then(|| env_code("FAKE_NVML_LOST_CODE").unwrap_or(GPU_IS_LOST))
}

/// Resolves a device handle for the NVML function `call`, applying [`failure`].
pub fn resolve(device: nvmlDevice_t, call: &str) -> Result<(Arc<Node>, Handle), Ret> {
    let node = current_node()?;
    let handle = Handle::decode(device as usize).ok_or(INVALID_ARGUMENT)?;
    let gpu = node.gpu(handle.gpu_index()).ok_or(INVALID_ARGUMENT)?;
    if let Some(code) = failure(gpu, call) {
        return Err(code);
    }
    Ok((node, handle))
}

/// Runs `f` on the node and the resolved handle; both arms carry the return code.
pub fn with_device(
    device: nvmlDevice_t,
    call: &str,
    f: impl FnOnce(&Node, Handle) -> Result<Ret, Ret>,
) -> Ret {
    match resolve(device, call).and_then(|(node, handle)| f(&node, handle)) {
        Ok(code) | Err(code) => code,
    }
}

/// The GPU behind a handle of a full GPU.
pub fn gpu_of(node: &Node, handle: Handle) -> Result<&Gpu, Ret> {
    match handle {
        Handle::Gpu(g) => node.gpu(g).ok_or(INVALID_ARGUMENT),
        _ => Err(INVALID_ARGUMENT),
    }
}

/// The MIG device behind a MIG handle, with its parent GPU.
pub fn mig_of(node: &Node, handle: Handle) -> Result<(&Gpu, &Mig), Ret> {
    match handle {
        Handle::Mig(g, slot) => {
            let gpu = node.gpu(g).ok_or(INVALID_ARGUMENT)?;
            let mig = gpu.mig_devices.get(slot as usize).ok_or(INVALID_ARGUMENT)?;
            Ok((gpu, mig))
        }
        _ => Err(INVALID_ARGUMENT),
    }
}
