//! A fake `libnvidia-ml.so.1` for the NVML backend's tests: it exports, with
//! the real C signatures and return codes, every NVML function the backend
//! calls, and answers from the simulated node file named by `FAKE_NVML_NODE`.
//! Appending to a GPU's `xids` (or a MIG device's `migXids`) in that file
//! raises XID events; a GPU's `lost`, `recoveryAction`, `retiredPagesPending`,
//! `remappedRowsPending` and `remappedRowsFailure` answer as the simulated
//! backend says they do, and so does each device's `usage:` map (utilization,
//! memory, temperature, power, SM clock; an absent key is `NOT_SUPPORTED`); env vars (see `ffi`) make calls fail on purpose.
//!
//! Handles are opaque numbers; nothing here dereferences a caller's pointer
//! except the out-parameters and strings the NVML API defines.
#![allow(non_snake_case)]
// The exported functions are the C ABI: their callers follow NVML's pointer contract.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

mod device;
mod events;
mod ffi;
mod health;
mod mig;
mod node;
mod usage;

use std::os::raw::{c_char, c_int, c_uint};
use std::sync::atomic::Ordering;

use ffi::*;

const DEFAULT_DRIVER: &str = "550.54.15";

fn init() -> Ret {
    if let Some(code) = env_code("FAKE_NVML_INIT_ERROR") {
        return code;
    }
    // A node file that cannot be read is a node without a working driver.
    if let Err(message) = node::load() {
        eprintln!("fake-nvml: {message}");
        return DRIVER_NOT_LOADED;
    }
    INIT_COUNT.fetch_add(1, Ordering::SeqCst);
    SUCCESS
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlInit_v2() -> Ret {
    init()
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlInitWithFlags(_flags: c_uint) -> Ret {
    init()
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlShutdown() -> Ret {
    match INIT_COUNT.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)) {
        Ok(_) => SUCCESS,
        Err(_) => UNINITIALIZED,
    }
}

fn driver_version() -> Result<String, Ret> {
    let node = current_node()?;
    Ok(node
        .driver_version
        .clone()
        .unwrap_or_else(|| DEFAULT_DRIVER.to_string()))
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlSystemGetDriverVersion(version: *mut c_char, length: c_uint) -> Ret {
    match driver_version() {
        Ok(v) => put_str(version, length, &v),
        Err(code) => code,
    }
}

/// The node file's `cudaDriverVersion`; without one, what NVML answers when
/// libcuda cannot be loaded.
#[unsafe(no_mangle)]
pub extern "C" fn nvmlSystemGetCudaDriverVersion_v2(version: *mut c_int) -> Ret {
    if version.is_null() {
        return INVALID_ARGUMENT;
    }
    match current_node() {
        Ok(node) => match node
            .cuda_driver_version
            .and_then(|v| c_int::try_from(v).ok())
        {
            Some(v) => {
                // SAFETY: checked non-null; the caller passes a c_int to fill.
                unsafe { *version = v };
                SUCCESS
            }
            None => LIBRARY_NOT_FOUND,
        },
        Err(code) => code,
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlSystemGetCudaDriverVersion(version: *mut c_int) -> Ret {
    nvmlSystemGetCudaDriverVersion_v2(version)
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlSystemGetNVMLVersion(version: *mut c_char, length: c_uint) -> Ret {
    match driver_version() {
        Ok(v) => put_str(version, length, &format!("12.{v}")),
        Err(code) => code,
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlErrorString(result: Ret) -> *const c_char {
    let text: &'static [u8] = match result {
        SUCCESS => b"Success\0",
        UNINITIALIZED => b"Uninitialized\0",
        INVALID_ARGUMENT => b"Invalid Argument\0",
        NOT_SUPPORTED => b"Not Supported\0",
        NOT_FOUND => b"Not Found\0",
        INSUFFICIENT_SIZE => b"Insufficient Size\0",
        DRIVER_NOT_LOADED => b"Driver Not Loaded\0",
        TIMEOUT => b"Timeout\0",
        GPU_IS_LOST => b"GPU is lost\0",
        RESET_REQUIRED => b"Reset Required\0",
        _ => b"Unknown Error\0",
    };
    text.as_ptr().cast()
}
