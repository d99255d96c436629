//! Reading the inventory through NVML: GPUs in index order, their MIG devices
//! in slot order, NUMA nodes through `topology`, and NVLink peers.

use nvml_wrapper::Device;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::struct_wrappers::device::ProfileInfo;

use super::naming::{count_links, gi_profile, mig_profile_name};
use super::{NvmlOptions, raw};
use crate::gpu::mig_caps::MigMinors;
use crate::gpu::{Gpu, GpuError, Inventory, MigDevice};
use crate::topology::{self, normalize_pci_bus_id};

const MIB: u64 = 1024 * 1024;
/// `NVML_DEVICE_MIG_ENABLE`.
const MIG_ENABLED: u32 = 1;
/// Link indexes probed per GPU. NVML answers `INVALID_ARGUMENT` past the
/// driver's last link (18 on current drivers); the loop stops there, so this
/// bound only matters if a driver never says so.
const MAX_LINK_PROBE: u32 = 256;

/// Display devices on DGX stations that NVIDIA's plugin skips (go-nvlib `device.New`).
pub fn is_display_device(name: &str) -> bool {
    name == "DGX Display" || name == "NVIDIA DGX Display"
}

fn gpu_err(index: u32, what: &'static str) -> impl FnOnce(NvmlError) -> GpuError {
    move |e| GpuError::Nvml(format!("GPU {index}: cannot read its {what}: {e}"))
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

/// Reads the whole inventory.
pub fn read_inventory(lib: &nvml_wrapper::Nvml, opts: &NvmlOptions) -> Result<Inventory, GpuError> {
    let driver_version = lib
        .sys_driver_version()
        .map_err(|e| tracing::warn!(error = %e, "cannot read the driver version"))
        .ok();
    let count = lib
        .device_count()
        .map_err(|e| GpuError::Nvml(format!("cannot count GPUs: {e}")))?;
    let mut minors = Minors { opts, table: None };
    let mut gpus = Vec::new();
    let mut devices = Vec::new();
    for index in 0..count {
        let device = lib
            .device_by_index(index)
            .map_err(gpu_err(index, "handle"))?;
        let name = device.name().map_err(gpu_err(index, "name"))?;
        if is_display_device(&name) {
            tracing::info!(index, name, "skipping display device");
            continue;
        }
        gpus.push(read_gpu(index, name, &device, opts, &mut minors)?);
        devices.push(device);
    }
    let buses: Vec<(u32, String)> = gpus
        .iter()
        .map(|g| (g.index, g.pci_bus_id.clone()))
        .collect();
    for (gpu, device) in gpus.iter_mut().zip(&devices) {
        gpu.nvlinks = count_links(gpu.index, &link_remotes(gpu.index, device), &buses);
    }
    Ok(Inventory {
        driver_version,
        gpus,
        faults: Vec::new(),
    })
}

fn read_gpu(
    index: u32,
    name: String,
    device: &Device,
    opts: &NvmlOptions,
    minors: &mut Minors,
) -> Result<Gpu, GpuError> {
    let uuid = device.uuid().map_err(gpu_err(index, "UUID"))?;
    let memory_bytes = device.memory_info().map(|m| m.total).unwrap_or_else(|e| {
        tracing::warn!(index, error = %e, "cannot read the GPU's memory size; reporting 0");
        0
    });
    let pci = device.pci_info().map_err(gpu_err(index, "PCI bus id"))?;
    let pci_bus_id = normalize_pci_bus_id(&pci.bus_id).ok_or_else(|| {
        GpuError::Nvml(format!(
            "GPU {index}: NVML reported the malformed PCI bus id {:?}",
            pci.bus_id
        ))
    })?;
    let minor = device
        .minor_number()
        .map_err(gpu_err(index, "minor number"))?;
    let compute_capability = match device.cuda_compute_capability() {
        Ok(c) => Some(format!("{}.{}", c.major, c.minor)),
        Err(e) => {
            tracing::warn!(index, error = %e, "cannot read the compute capability");
            None
        }
    };
    let mig_enabled = match device.mig_mode() {
        Ok(mode) => mode.current == MIG_ENABLED,
        Err(NvmlError::NotSupported) => false,
        Err(e) => return Err(gpu_err(index, "MIG mode")(e)),
    };
    let mig_devices = if mig_enabled {
        read_mig_devices(index, device, minor, memory_bytes, minors)?
    } else {
        Vec::new()
    };
    Ok(Gpu {
        index,
        uuid,
        name,
        memory_mib: memory_bytes / MIB,
        numa_node: topology::numa_node(&opts.numa, &pci_bus_id),
        pci_bus_id,
        minor,
        compute_capability,
        nvlinks: Vec::new(),
        mig_enabled,
        mig_devices,
    })
}

/// The GPU-instance profiles a GPU supports, as (profile index, info).
fn gi_profiles(index: u32, parent: &Device) -> Result<Vec<(u32, ProfileInfo)>, GpuError> {
    let mut profiles = Vec::new();
    for profile in 0..gi_profile::COUNT {
        match parent.profile_info(profile) {
            Ok(info) => profiles.push((profile, info)),
            Err(NvmlError::NotSupported | NvmlError::InvalidArg) => {}
            Err(e) => return Err(gpu_err(index, "MIG profiles")(e)),
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
) -> Result<Vec<MigDevice>, GpuError> {
    let slots = parent
        .mig_device_count()
        .map_err(gpu_err(index, "MIG device count"))?;
    let mut profiles: Option<Vec<(u32, ProfileInfo)>> = None;
    let mut migs = Vec::new();
    for slot in 0..slots {
        let mig = match parent.mig_device_by_index(slot) {
            Ok(mig) => mig,
            Err(NvmlError::NotFound) => continue,
            Err(e) => return Err(gpu_err(index, "MIG devices")(e)),
        };
        let uuid = mig.uuid().map_err(gpu_err(index, "MIG device UUID"))?;
        let mig_err = |what: &'static str| {
            let uuid = uuid.clone();
            move |e: NvmlError| {
                GpuError::Nvml(format!(
                    "MIG device {uuid} of GPU {index}: cannot read its {what}: {e}"
                ))
            }
        };
        let gi = raw::gpu_instance_id(&mig).map_err(mig_err("GPU instance id"))?;
        let ci = raw::compute_instance_id(&mig).map_err(mig_err("compute instance id"))?;
        let attributes = mig.attributes().map_err(mig_err("attributes"))?;
        let profile_id =
            raw::gpu_instance_profile_id(parent, gi).map_err(mig_err("GPU instance profile"))?;
        if profiles.is_none() {
            profiles = Some(gi_profiles(index, parent)?);
        }
        let (profile, info) = profiles
            .iter()
            .flatten()
            .find(|(_, info)| info.id == profile_id)
            .ok_or_else(|| {
                GpuError::Nvml(format!(
                    "MIG device {uuid} of GPU {index}: its GPU instance profile id {profile_id} is not one the GPU lists"
                ))
            })?;
        let name = mig_profile_name(
            *profile,
            attributes.compute_instance_slice_count,
            info.memory_size_mb,
            parent_memory_bytes,
        )
        .map_err(|message| {
            GpuError::Nvml(format!(
                "MIG device {uuid} of GPU {index}: cannot name its profile: {message}"
            ))
        })?;
        let cap_paths = minors.table().cap_paths(parent_minor, gi, ci).unwrap_or_else(|missing| {
            tracing::warn!(mig = %uuid, missing, "missing MIG capability entry; the device gets no capability device nodes");
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
fn link_remotes(index: u32, device: &Device) -> Vec<String> {
    let mut remotes = Vec::new();
    for link in 0..MAX_LINK_PROBE {
        let nvlink = device.link_wrapper_for(link);
        match nvlink.is_active() {
            Ok(true) => {}
            Ok(false) | Err(NvmlError::NotSupported) => continue,
            Err(NvmlError::InvalidArg) => break,
            Err(e) => {
                tracing::warn!(index, link, error = %e, "cannot read NVLink state; ignoring the GPU's remaining links");
                break;
            }
        }
        match nvlink.remote_pci_info() {
            Ok(pci) => match normalize_pci_bus_id(&pci.bus_id) {
                Some(bus) => remotes.push(bus),
                None => tracing::warn!(
                    index,
                    link,
                    bus = pci.bus_id,
                    "NVLink remote has a malformed PCI bus id"
                ),
            },
            Err(e) => tracing::warn!(index, link, error = %e, "cannot read NVLink remote PCI info"),
        }
    }
    remotes
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
            assert_eq!(super::is_display_device(name), want, "{name}");
        }
    }
}
