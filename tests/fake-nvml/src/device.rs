//! Device queries of the fake driver: handles, identity, memory, PCI, MIG
//! mode and MIG devices, NVLink.

use std::os::raw::{c_char, c_int, c_uint};

use nvml_wrapper_sys::bindings::*;

use crate::ffi::*;
use crate::node::{self, Gpu, NVLINK_SLOTS, Node};

const MIB: u64 = 1024 * 1024;

/// `nvmlPciInfo_t` of a sysfs-form bus id, with NVML's 8-digit upper-case `busId`.
pub fn pci_info(bus_id: &str) -> Option<nvmlPciInfo_t> {
    let lower = bus_id.to_ascii_lowercase();
    let (domain, rest) = lower.split_once(':')?;
    let (bus, devfn) = rest.split_once(':')?;
    let (dev, func) = devfn.split_once('.')?;
    let hex = |s: &str| u32::from_str_radix(s, 16).ok();
    let (domain, bus, dev, func) = (hex(domain)?, hex(bus)?, hex(dev)?, hex(func)?);
    // SAFETY: plain C data; all-zero is a valid value.
    let mut info: nvmlPciInfo_t = unsafe { std::mem::zeroed() };
    info.domain = domain;
    info.bus = bus;
    info.device = dev;
    info.pciDeviceId = 0x20B0_10DE;
    info.pciSubSystemId = 0x1450_10DE;
    let long = format!("{domain:08X}:{bus:02X}:{dev:02X}.{func:X}");
    let legacy = format!("{domain:04X}:{bus:02X}:{dev:02X}.{func:X}");
    for (dst, src) in info.busId.iter_mut().zip(long.bytes()) {
        *dst = src as c_char;
    }
    for (dst, src) in info.busIdLegacy.iter_mut().zip(legacy.bytes()) {
        *dst = src as c_char;
    }
    Some(info)
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlDeviceGetCount_v2(count: *mut c_uint) -> Ret {
    match current_node() {
        Ok(node) => put(count, node.gpus.len() as c_uint),
        Err(code) => code,
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlDeviceGetHandleByIndex_v2(index: c_uint, device: *mut nvmlDevice_t) -> Ret {
    let node = match current_node() {
        Ok(node) => node,
        Err(code) => return code,
    };
    match node.gpu(index) {
        Some(gpu) => match failure(gpu, "nvmlDeviceGetHandleByIndex_v2") {
            Some(code) => code,
            None => put(device, Handle::Gpu(index).device()),
        },
        None => INVALID_ARGUMENT,
    }
}

/// Handle of a GPU or MIG device by UUID.
fn by_uuid(node: &Node, uuid: &str) -> Option<Handle> {
    node.gpus.iter().find_map(|g| {
        if g.uuid == uuid {
            return Some(Handle::Gpu(g.index));
        }
        let slot = g.mig_devices.iter().position(|m| m.uuid == uuid)?;
        Some(Handle::Mig(g.index, slot as u32))
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlDeviceGetHandleByUUID(uuid: *const c_char, device: *mut nvmlDevice_t) -> Ret {
    let Some(uuid) = get_str(uuid) else {
        return INVALID_ARGUMENT;
    };
    let node = match current_node() {
        Ok(node) => node,
        Err(code) => return code,
    };
    let Some(handle) = by_uuid(&node, &uuid) else {
        return NOT_FOUND;
    };
    let gpu = node.gpu(handle.gpu_index());
    match gpu.and_then(|g| failure(g, "nvmlDeviceGetHandleByUUID")) {
        Some(code) => code,
        None => put(device, handle.device()),
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlDeviceGetHandleByPciBusId_v2(
    bus_id: *const c_char,
    device: *mut nvmlDevice_t,
) -> Ret {
    let Some(wanted) = get_str(bus_id).as_deref().and_then(pci_info) else {
        return INVALID_ARGUMENT;
    };
    match current_node() {
        Ok(node) => {
            let found = node.gpus.iter().find(|g| {
                pci_info(&g.pci_bus_id).is_some_and(|p| {
                    (p.domain, p.bus, p.device) == (wanted.domain, wanted.bus, wanted.device)
                })
            });
            match found {
                Some(g) => match failure(g, "nvmlDeviceGetHandleByPciBusId_v2") {
                    Some(code) => code,
                    None => put(device, Handle::Gpu(g.index).device()),
                },
                None => NOT_FOUND,
            }
        }
        Err(code) => code,
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlDeviceGetName(
    device: nvmlDevice_t,
    name: *mut c_char,
    length: c_uint,
) -> Ret {
    with_device(device, "nvmlDeviceGetName", |node, h| match h {
        Handle::Mig(..) => {
            let (gpu, mig) = mig_of(node, h)?;
            Ok(put_str(
                name,
                length,
                &format!("{} MIG {}", gpu.name, mig.profile),
            ))
        }
        _ => Ok(put_str(name, length, &gpu_of(node, h)?.name)),
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlDeviceGetUUID(
    device: nvmlDevice_t,
    uuid: *mut c_char,
    length: c_uint,
) -> Ret {
    with_device(device, "nvmlDeviceGetUUID", |node, h| match h {
        Handle::Mig(..) => Ok(put_str(uuid, length, &mig_of(node, h)?.1.uuid)),
        _ => Ok(put_str(uuid, length, &gpu_of(node, h)?.uuid)),
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlDeviceGetMemoryInfo_v2(
    device: nvmlDevice_t,
    memory: *mut nvmlMemory_v2_t,
) -> Ret {
    with_device(device, "nvmlDeviceGetMemoryInfo_v2", |node, h| {
        let mib = match h {
            Handle::Mig(..) => mig_of(node, h)?.1.memory_mib,
            _ => gpu_of(node, h)?.memory_mib,
        };
        let total = mib * MIB;
        let used = crate::usage::used_bytes(node, h).min(total);
        let version = (std::mem::size_of::<nvmlMemory_v2_t>() | (2 << 24)) as c_uint;
        Ok(put(
            memory,
            nvmlMemory_v2_t {
                version,
                total,
                reserved: 0,
                free: total - used,
                used,
            },
        ))
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlDeviceGetPciInfo_v3(device: nvmlDevice_t, pci: *mut nvmlPciInfo_t) -> Ret {
    with_device(device, "nvmlDeviceGetPciInfo_v3", |node, h| {
        let gpu = node.gpu(h.gpu_index()).ok_or(INVALID_ARGUMENT)?;
        Ok(put(pci, pci_info(&gpu.pci_bus_id).ok_or(UNKNOWN)?))
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlDeviceGetMinorNumber(device: nvmlDevice_t, minor: *mut c_uint) -> Ret {
    with_device(device, "nvmlDeviceGetMinorNumber", |node, h| {
        Ok(put(minor, gpu_of(node, h)?.minor()))
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlDeviceGetCudaComputeCapability(
    device: nvmlDevice_t,
    major: *mut c_int,
    minor: *mut c_int,
) -> Ret {
    with_device(device, "nvmlDeviceGetCudaComputeCapability", |node, h| {
        let gpu = node.gpu(h.gpu_index()).ok_or(INVALID_ARGUMENT)?;
        let cc = gpu.compute_capability.as_deref().ok_or(NOT_SUPPORTED)?;
        let (maj, min) = cc.split_once('.').ok_or(UNKNOWN)?;
        let (maj, min) = (
            maj.parse().map_err(|_| UNKNOWN)?,
            min.parse().map_err(|_| UNKNOWN)?,
        );
        match put(major, maj) {
            SUCCESS => Ok(put(minor, min)),
            code => Err(code),
        }
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlDeviceGetMigMode(
    device: nvmlDevice_t,
    current: *mut c_uint,
    pending: *mut c_uint,
) -> Ret {
    with_device(device, "nvmlDeviceGetMigMode", |node, h| {
        let mode = c_uint::from(gpu_of(node, h)?.mig_enabled);
        match put(current, mode) {
            SUCCESS => Ok(put(pending, mode)),
            code => Err(code),
        }
    })
}

fn mig_gpu(node: &Node, h: Handle) -> Result<&Gpu, Ret> {
    let gpu = gpu_of(node, h)?;
    if gpu.mig_enabled {
        Ok(gpu)
    } else {
        Err(NOT_SUPPORTED)
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlDeviceGetMaxMigDeviceCount(device: nvmlDevice_t, count: *mut c_uint) -> Ret {
    with_device(device, "nvmlDeviceGetMaxMigDeviceCount", |node, h| {
        let gpu = gpu_of(node, h)?;
        Ok(put(
            count,
            if gpu.mig_enabled { gpu.mig_slots() } else { 0 },
        ))
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlDeviceGetMigDeviceHandleByIndex(
    device: nvmlDevice_t,
    index: c_uint,
    mig: *mut nvmlDevice_t,
) -> Ret {
    with_device(device, "nvmlDeviceGetMigDeviceHandleByIndex", |node, h| {
        let gpu = mig_gpu(node, h)?;
        if (index as usize) < gpu.mig_devices.len() {
            Ok(put(mig, Handle::Mig(gpu.index, index).device()))
        } else if index < gpu.mig_slots() {
            Err(NOT_FOUND)
        } else {
            Err(INVALID_ARGUMENT)
        }
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlDeviceGetDeviceHandleFromMigDeviceHandle(
    mig: nvmlDevice_t,
    device: *mut nvmlDevice_t,
) -> Ret {
    with_device(
        mig,
        "nvmlDeviceGetDeviceHandleFromMigDeviceHandle",
        |node, h| {
            let (gpu, _) = mig_of(node, h)?;
            Ok(put(device, Handle::Gpu(gpu.index).device()))
        },
    )
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlDeviceIsMigDeviceHandle(device: nvmlDevice_t, is_mig: *mut c_uint) -> Ret {
    with_device(device, "nvmlDeviceIsMigDeviceHandle", |_, h| {
        Ok(put(is_mig, c_uint::from(matches!(h, Handle::Mig(..)))))
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlDeviceGetGpuInstanceId(device: nvmlDevice_t, id: *mut c_uint) -> Ret {
    with_device(device, "nvmlDeviceGetGpuInstanceId", |node, h| {
        Ok(put(id, mig_of(node, h)?.1.gpu_instance_id))
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlDeviceGetComputeInstanceId(device: nvmlDevice_t, id: *mut c_uint) -> Ret {
    with_device(device, "nvmlDeviceGetComputeInstanceId", |node, h| {
        Ok(put(id, mig_of(node, h)?.1.compute_instance_id))
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlDeviceGetAttributes_v2(
    device: nvmlDevice_t,
    attributes: *mut nvmlDeviceAttributes_t,
) -> Ret {
    with_device(device, "nvmlDeviceGetAttributes_v2", |node, h| {
        let (_, mig) = mig_of(node, h).map_err(|_| NOT_SUPPORTED)?;
        let profile = node::parse_profile(&mig.profile).ok_or(UNKNOWN)?;
        Ok(put(
            attributes,
            nvmlDeviceAttributes_t {
                multiprocessorCount: 14 * profile.compute_slices,
                sharedCopyEngineCount: profile.gpu_slices,
                sharedDecoderCount: 0,
                sharedEncoderCount: 0,
                sharedJpegCount: 0,
                sharedOfaCount: 0,
                gpuInstanceSliceCount: profile.gpu_slices,
                computeInstanceSliceCount: profile.compute_slices,
                memorySizeMB: mig.memory_mib,
            },
        ))
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlDeviceGetNvLinkState(
    device: nvmlDevice_t,
    link: c_uint,
    active: *mut nvmlEnableState_t,
) -> Ret {
    with_device(device, "nvmlDeviceGetNvLinkState", |node, h| {
        let peers = gpu_of(node, h)?.link_peers();
        if peers.is_empty() {
            return Err(if link < NVLINK_SLOTS {
                NOT_SUPPORTED
            } else {
                INVALID_ARGUMENT
            });
        }
        if link >= NVLINK_SLOTS.max(peers.len() as u32) {
            return Err(INVALID_ARGUMENT);
        }
        let state = if (link as usize) < peers.len() {
            nvmlEnableState_enum_NVML_FEATURE_ENABLED
        } else {
            nvmlEnableState_enum_NVML_FEATURE_DISABLED
        };
        Ok(put(active, state))
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlDeviceGetNvLinkRemotePciInfo_v2(
    device: nvmlDevice_t,
    link: c_uint,
    pci: *mut nvmlPciInfo_t,
) -> Ret {
    with_device(device, "nvmlDeviceGetNvLinkRemotePciInfo_v2", |node, h| {
        let peers = gpu_of(node, h)?.link_peers();
        let peer = peers.get(link as usize).ok_or(INVALID_ARGUMENT)?;
        let remote = node.gpu(*peer).ok_or(UNKNOWN)?;
        Ok(put(pci, pci_info(&remote.pci_bus_id).ok_or(UNKNOWN)?))
    })
}
