//! GPU instances of the fake driver: lookup by id, their info, and the
//! GPU-instance profile table derived from the node's MIG profile names.

use std::os::raw::c_uint;

use nvml_wrapper_sys::bindings::*;

use crate::ffi::*;
use crate::node::{self, Gpu, Node, Profile};

/// `NVML_GPU_INSTANCE_PROFILE_COUNT`.
const PROFILE_COUNT: c_uint = 17;

fn result(r: Result<Ret, Ret>) -> Ret {
    match r {
        Ok(code) | Err(code) => code,
    }
}

fn enabled_gpu(node: &Node, h: Handle) -> Result<&Gpu, Ret> {
    let gpu = gpu_of(node, h)?;
    if gpu.mig_enabled {
        Ok(gpu)
    } else {
        Err(NOT_SUPPORTED)
    }
}

/// The first MIG device of `gpu` in GPU instance `gi`, with its parsed profile.
fn instance(gpu: &Gpu, gi: c_uint) -> Result<Profile, Ret> {
    let mig = gpu
        .mig_devices
        .iter()
        .find(|m| m.gpu_instance_id == gi)
        .ok_or(NOT_FOUND)?;
    node::parse_profile(&mig.profile).ok_or(UNKNOWN)
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlDeviceGetGpuInstanceById(
    device: nvmlDevice_t,
    id: c_uint,
    gpu_instance: *mut nvmlGpuInstance_t,
) -> Ret {
    result(
        resolve(device, "nvmlDeviceGetGpuInstanceById").and_then(|(node, h)| {
            let gpu = enabled_gpu(&node, h)?;
            instance(gpu, id)?;
            Ok(put(
                gpu_instance,
                Handle::GpuInstance(gpu.index, id).gpu_instance(),
            ))
        }),
    )
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlGpuInstanceGetInfo(
    gpu_instance: nvmlGpuInstance_t,
    info: *mut nvmlGpuInstanceInfo_t,
) -> Ret {
    result(
        resolve(gpu_instance.cast(), "nvmlGpuInstanceGetInfo").and_then(|(node, h)| {
            let Handle::GpuInstance(index, gi) = h else {
                return Err(INVALID_ARGUMENT);
            };
            let gpu = node.gpu(index).ok_or(INVALID_ARGUMENT)?;
            let profile = instance(gpu, gi)?;
            Ok(put(
                info,
                nvmlGpuInstanceInfo_t {
                    device: Handle::Gpu(index).device(),
                    id: gi,
                    profileId: node::profile_id(profile.gi_profile),
                    placement: nvmlGpuInstancePlacement_t {
                        start: 0,
                        size: profile.gpu_slices,
                    },
                },
            ))
        }),
    )
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlDeviceGetGpuInstanceProfileInfo(
    device: nvmlDevice_t,
    profile: c_uint,
    info: *mut nvmlGpuInstanceProfileInfo_t,
) -> Ret {
    result(
        resolve(device, "nvmlDeviceGetGpuInstanceProfileInfo").and_then(|(node, h)| {
            let gpu = enabled_gpu(&node, h)?;
            if profile >= PROFILE_COUNT {
                return Err(INVALID_ARGUMENT);
            }
            // The GPU "supports" the profiles its MIG devices use, with their memory.
            let (mig, parsed) = gpu
                .mig_devices
                .iter()
                .find_map(|m| {
                    node::parse_profile(&m.profile)
                        .filter(|p| p.gi_profile == profile)
                        .map(|p| (m, p))
                })
                .ok_or(NOT_SUPPORTED)?;
            Ok(put(
                info,
                nvmlGpuInstanceProfileInfo_t {
                    id: node::profile_id(profile),
                    isP2pSupported: 0,
                    sliceCount: parsed.gpu_slices,
                    instanceCount: 7 / parsed.gpu_slices.max(1),
                    multiprocessorCount: 14 * parsed.gpu_slices,
                    copyEngineCount: parsed.gpu_slices,
                    decoderCount: 0,
                    encoderCount: 0,
                    jpegCount: 0,
                    ofaCount: 0,
                    memorySizeMB: mig.memory_mib,
                },
            ))
        }),
    )
}
