//! Reading the inventory through NVML: GPUs in index order, their MIG devices
//! in slot order, NUMA nodes through `topology`, and NVLink peers. Each GPU
//! is read on its own: one that fails a read (lost, reset required, any other
//! error) is a fault of the inventory and the others are reported as usual;
//! only NVML itself failing (count, initialisation) fails the inventory.

use nvml_wrapper::Device;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::struct_wrappers::device::ProfileInfo;

use super::faults::{self, Failure};
use super::naming::{count_links, gi_profile, mig_profile_name};
use super::{NvmlOptions, probe, raw};
use crate::gpu::mig_caps::MigMinors;
use crate::gpu::{FaultKind, Gpu, GpuError, GpuFault, Inventory, MigDevice, RecoveryAction};
use crate::numa::{self, normalize_pci_bus_id};

const MIB: u64 = 1024 * 1024;
/// `NVML_DEVICE_MIG_ENABLE`.
const MIG_ENABLED: u32 = 1;
/// Link indexes probed per GPU. NVML answers `INVALID_ARGUMENT` past the
/// driver's last link (18 on current drivers); the loop stops there, so this
/// bound only matters if a driver never says so.
const MAX_LINK_PROBE: u32 = 256;
/// More GPUs than any node has (NVML's own limit is far lower); a larger
/// count is a broken driver, not a node to enumerate.
pub const MAX_GPUS: u32 = 1024;
/// MIG slots read per GPU (7 on current GPUs).
const MAX_MIG_SLOTS: u32 = 64;

/// Why one GPU could not be read: what was read, and NVML's error (`None`
/// when the answer itself was unusable).
struct ReadError {
    what: String,
    error: Option<NvmlError>,
}

impl ReadError {
    fn failure(&self) -> Failure {
        match &self.error {
            Some(e) => faults::classify(e, &self.what),
            None => Failure::Gpu(FaultKind::Failed(self.what.clone())),
        }
    }
}

fn failed(error: NvmlError, what: impl Into<String>) -> ReadError {
    ReadError {
        what: what.into(),
        error: Some(error),
    }
}

/// A read the GPU must answer.
fn must<T>(result: Result<T, NvmlError>, what: impl Into<String>) -> Result<T, ReadError> {
    result.map_err(|e| failed(e, what))
}

/// A read the driver or GPU may not support: `None` then; any other error
/// fails the GPU like a [`must`] read.
fn may<T>(result: Result<T, NvmlError>, what: &str) -> Result<Option<T>, ReadError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(e) if faults::unsupported(&e) => Ok(None),
        Err(e) => Err(failed(e, what)),
    }
}

/// The `mig-minors` table, read on first use.
struct Minors<'a> {
    opts: &'a NvmlOptions,
    table: Option<MigMinors>,
}

impl Minors<'_> {
    fn table(&mut self) -> &MigMinors {
        let path = &self.opts.mig_minors_path;
        self.table.get_or_insert_with(|| match std::fs::read_to_string(path) {
            Ok(text) => MigMinors::parse(&text),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read the MIG capability table; MIG devices get no capability device nodes");
                MigMinors::default()
            }
        })
    }
}

/// One GPU as read, before its NVLinks are counted.
struct Read {
    gpu: Gpu,
    /// Remote PCI bus ids of its active NVLinks.
    remotes: Vec<String>,
    recovery_action: Option<RecoveryAction>,
}

/// Reads the whole inventory.
pub fn read_inventory(lib: &nvml_wrapper::Nvml, opts: &NvmlOptions) -> Result<Inventory, GpuError> {
    let driver_version = lib
        .sys_driver_version()
        .map_err(|e| tracing::warn!(error = %e, "cannot read the driver version"))
        .ok();
    // Optional (libcuda may be absent from the driver root): no label then.
    let cuda_driver_version = lib
        .sys_cuda_driver_version()
        .map_err(|e| tracing::debug!(error = %e, "cannot read the CUDA driver version"))
        .ok()
        .and_then(|v| u32::try_from(v).ok());
    let count = lib
        .device_count()
        .map_err(|e| GpuError::Nvml(format!("cannot count GPUs: {e}")))?;
    if count > MAX_GPUS {
        return Err(GpuError::Nvml(format!(
            "NVML counts {count} GPUs, more than the {MAX_GPUS} a node can have; the driver is broken"
        )));
    }
    let mut minors = Minors { opts, table: None };
    let mut reads = Vec::new();
    let mut faults = Vec::new();
    for index in 0..count {
        let mut uuid = None;
        match read_gpu(lib, index, opts, &mut minors, &mut uuid) {
            Ok(None) => {}
            Ok(Some(read)) => {
                if let Some(action) = read.recovery_action.filter(|a| *a != RecoveryAction::None) {
                    // Every rescan sees it again: the caller logs changes.
                    tracing::debug!(index, uuid = %read.gpu.uuid, action = action.name(), "GPU needs recovery before new work");
                    faults.push(GpuFault {
                        index,
                        uuid: Some(read.gpu.uuid.clone()),
                        kind: FaultKind::NeedsRecovery(action),
                    });
                }
                reads.push(read);
            }
            Err(e) => match e.failure() {
                Failure::Node(message) => {
                    return Err(GpuError::Nvml(format!("GPU {index}: {message}")));
                }
                Failure::Gpu(kind) => {
                    tracing::debug!(index, uuid = ?uuid, fault = %kind, "GPU left out of the inventory");
                    faults.push(GpuFault { index, uuid, kind });
                }
            },
        }
    }
    let buses: Vec<(u32, String)> = reads
        .iter()
        .map(|r| (r.gpu.index, r.gpu.pci_bus_id.clone()))
        .collect();
    let gpus = reads
        .into_iter()
        .map(|mut r| {
            r.gpu.nvlinks = count_links(r.gpu.index, &r.remotes, &buses);
            r.gpu
        })
        .collect();
    Ok(Inventory {
        driver_version,
        cuda_driver_version,
        gpus,
        faults,
    })
}

/// Reads GPU `index`; `None` for a display device. Its UUID goes into
/// `uuid` as soon as it is known, for the fault if a later read fails.
fn read_gpu(
    lib: &nvml_wrapper::Nvml,
    index: u32,
    opts: &NvmlOptions,
    minors: &mut Minors,
    uuid: &mut Option<String>,
) -> Result<Option<Read>, ReadError> {
    let device = must(
        lib.device_by_index(index),
        "cannot get its handle (nvmlDeviceGetHandleByIndex)",
    )?;
    let id = must(device.uuid(), "cannot read its UUID (nvmlDeviceGetUUID)")?;
    *uuid = Some(id.clone());
    let name = must(device.name(), "cannot read its name (nvmlDeviceGetName)")?;
    if crate::gpu::is_display_device(&name) {
        tracing::info!(index, name, "skipping display device");
        return Ok(None);
    }
    let memory_bytes = must(
        device.memory_info(),
        "cannot read its memory size (nvmlDeviceGetMemoryInfo)",
    )?
    .total;
    let pci = must(
        device.pci_info(),
        "cannot read its PCI bus id (nvmlDeviceGetPciInfo)",
    )?;
    let pci_bus_id = normalize_pci_bus_id(&pci.bus_id).ok_or_else(|| ReadError {
        what: format!("NVML reported the malformed PCI bus id {:?}", pci.bus_id),
        error: None,
    })?;
    let minor = must(
        device.minor_number(),
        "cannot read its minor number (nvmlDeviceGetMinorNumber)",
    )?;
    let compute_capability = may(
        device.cuda_compute_capability(),
        "cannot read the compute capability (nvmlDeviceGetCudaComputeCapability)",
    )?
    .map(|c| format!("{}.{}", c.major, c.minor));
    let mig_enabled = match device.mig_mode() {
        Ok(mode) => mode.current == MIG_ENABLED,
        Err(NvmlError::NotSupported) => false,
        Err(e) => return Err(failed(e, "cannot read its MIG mode (nvmlDeviceGetMigMode)")),
    };
    let mig_devices = if mig_enabled {
        read_mig_devices(index, &device, minor, memory_bytes, minors)?
    } else {
        Vec::new()
    };
    let remotes = link_remotes(index, &device)?;
    let recovery_action = may(
        probe::recovery_action(&device),
        "cannot read the recovery action (nvmlDeviceGetFieldValues, field 230)",
    )?
    .flatten();
    let gpu = Gpu {
        index,
        uuid: id,
        name,
        memory_mib: memory_bytes / MIB,
        numa_node: numa::numa_node(&opts.numa, &pci_bus_id),
        pci_bus_id,
        minor,
        compute_capability,
        nvlinks: Vec::new(),
        mig_enabled,
        mig_devices,
    };
    Ok(Some(Read {
        gpu,
        remotes,
        recovery_action,
    }))
}

/// The GPU-instance profiles a GPU supports, as (profile index, info).
fn gi_profiles(parent: &Device) -> Result<Vec<(u32, ProfileInfo)>, ReadError> {
    let mut profiles = Vec::new();
    for profile in 0..gi_profile::COUNT {
        match parent.profile_info(profile) {
            Ok(info) => profiles.push((profile, info)),
            Err(NvmlError::NotSupported | NvmlError::InvalidArg) => {}
            Err(e) => {
                return Err(failed(
                    e,
                    "cannot read its MIG profiles (nvmlDeviceGetGpuInstanceProfileInfo)",
                ));
            }
        }
    }
    Ok(profiles)
}

fn read_mig_devices(
    index: u32,
    parent: &Device,
    parent_minor: u32,
    parent_memory_bytes: u64,
    minors: &mut Minors,
) -> Result<Vec<MigDevice>, ReadError> {
    let slots = must(
        parent.mig_device_count(),
        "cannot read its MIG device count (nvmlDeviceGetMaxMigDeviceCount)",
    )?;
    if slots > MAX_MIG_SLOTS {
        return Err(ReadError {
            what: format!(
                "NVML reports {slots} MIG slots, more than the {MAX_MIG_SLOTS} a GPU can have"
            ),
            error: None,
        });
    }
    let mut profiles: Option<Vec<(u32, ProfileInfo)>> = None;
    let mut migs = Vec::new();
    for slot in 0..slots {
        let mig = match parent.mig_device_by_index(slot) {
            Ok(mig) => mig,
            Err(NvmlError::NotFound) => continue,
            Err(e) => {
                return Err(failed(
                    e,
                    format!("cannot read MIG slot {slot} (nvmlDeviceGetMigDeviceHandleByIndex)"),
                ));
            }
        };
        let uuid = must(
            mig.uuid(),
            format!("cannot read the UUID of MIG slot {slot} (nvmlDeviceGetUUID)"),
        )?;
        let of = |what: &str| format!("MIG device {uuid}: cannot read its {what}");
        let gi = must(
            raw::gpu_instance_id(&mig),
            of("GPU instance id (nvmlDeviceGetGpuInstanceId)"),
        )?;
        let ci = must(
            raw::compute_instance_id(&mig),
            of("compute instance id (nvmlDeviceGetComputeInstanceId)"),
        )?;
        let attributes = must(mig.attributes(), of("attributes (nvmlDeviceGetAttributes)"))?;
        let profile_id = must(
            raw::gpu_instance_profile_id(parent, gi),
            of("GPU instance profile (nvmlDeviceGetGpuInstanceById, nvmlGpuInstanceGetInfo)"),
        )?;
        if profiles.is_none() {
            profiles = Some(gi_profiles(parent)?);
        }
        let (profile, info) = profiles
            .iter()
            .flatten()
            .find(|(_, info)| info.id == profile_id)
            .ok_or_else(|| ReadError {
                what: format!(
                    "MIG device {uuid}: its GPU instance profile id {profile_id} is not one the GPU lists"
                ),
                error: None,
            })?;
        let name = mig_profile_name(
            *profile,
            attributes.compute_instance_slice_count,
            info.memory_size_mb,
            parent_memory_bytes,
        )
        .map_err(|message| ReadError {
            what: format!("MIG device {uuid}: cannot name its profile: {message}"),
            error: None,
        })?;
        let cap_paths = minors.table().cap_paths(parent_minor, gi, ci).unwrap_or_else(|missing| {
            tracing::warn!(index, mig = %uuid, missing, "missing MIG capability entry; the device gets no capability device nodes");
            Vec::new()
        });
        migs.push(MigDevice {
            uuid,
            profile: name,
            gpu_instance_id: gi,
            compute_instance_id: ci,
            memory_mib: attributes.memory_size_mb,
            cap_paths,
        });
    }
    Ok(migs)
}

/// Normalised remote PCI bus ids of the GPU's active NVLinks.
fn link_remotes(index: u32, device: &Device) -> Result<Vec<String>, ReadError> {
    let mut remotes = Vec::new();
    for link in 0..MAX_LINK_PROBE {
        let nvlink = device.link_wrapper_for(link);
        match nvlink.is_active() {
            Ok(true) => {}
            Ok(false) | Err(NvmlError::NotSupported) => continue,
            // Past the driver's last link.
            Err(NvmlError::InvalidArg) => break,
            Err(e) => {
                return Err(failed(
                    e,
                    format!("cannot read the state of NVLink {link} (nvmlDeviceGetNvLinkState)"),
                ));
            }
        }
        let pci = must(
            nvlink.remote_pci_info(),
            format!("cannot read the remote of NVLink {link} (nvmlDeviceGetNvLinkRemotePciInfo)"),
        )?;
        match normalize_pci_bus_id(&pci.bus_id) {
            Some(bus) => remotes.push(bus),
            None => tracing::warn!(
                index,
                link,
                bus = pci.bus_id,
                "NVLink remote has a malformed PCI bus id"
            ),
        }
    }
    Ok(remotes)
}

#[cfg(test)]
mod tests {
    #[test]
    fn dgx_display_devices_are_recognised() {
        let cases = [
            ("DGX Display", true),
            ("NVIDIA DGX Display", true),
            ("NVIDIA A100-SXM4-80GB", false),
            ("NVIDIA DGX Display 2", false),
        ];
        for (name, want) in cases {
            assert_eq!(crate::gpu::is_display_device(name), want, "{name}");
        }
    }
}
