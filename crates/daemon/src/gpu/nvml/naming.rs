//! Pure helpers of the NVML backend: MIG profile names as go-nvlib formats
//! them, and NVLink counting from the remote PCI bus ids of a GPU's links.

use crate::gpu::NvLink;

/// NVML GPU-instance profile indexes (`NVML_GPU_INSTANCE_PROFILE_*`).
pub mod gi_profile {
    pub const SLICE_1: u32 = 0;
    pub const SLICE_2: u32 = 1;
    pub const SLICE_3: u32 = 2;
    pub const SLICE_4: u32 = 3;
    pub const SLICE_7: u32 = 4;
    pub const SLICE_8: u32 = 5;
    pub const SLICE_6: u32 = 6;
    pub const SLICE_1_REV1: u32 = 7;
    pub const SLICE_2_REV1: u32 = 8;
    pub const SLICE_1_REV2: u32 = 9;
    pub const SLICE_1_GFX: u32 = 10;
    pub const SLICE_2_GFX: u32 = 11;
    pub const SLICE_4_GFX: u32 = 12;
    pub const SLICE_1_NO_ME: u32 = 13;
    pub const SLICE_2_NO_ME: u32 = 14;
    pub const SLICE_1_ALL_ME: u32 = 15;
    pub const SLICE_2_ALL_ME: u32 = 16;
    /// `NVML_GPU_INSTANCE_PROFILE_COUNT`: profile indexes are `0..COUNT`.
    pub const COUNT: u32 = 17;
}

/// GPU slices of a GPU-instance profile index, `None` for an unknown index.
pub fn gpu_instance_slices(profile: u32) -> Option<u32> {
    use gi_profile::*;
    match profile {
        SLICE_1 | SLICE_1_REV1 | SLICE_1_REV2 | SLICE_1_GFX | SLICE_1_NO_ME | SLICE_1_ALL_ME => {
            Some(1)
        }
        SLICE_2 | SLICE_2_REV1 | SLICE_2_GFX | SLICE_2_NO_ME | SLICE_2_ALL_ME => Some(2),
        SLICE_3 => Some(3),
        SLICE_4 | SLICE_4_GFX => Some(4),
        SLICE_6 => Some(6),
        SLICE_7 => Some(7),
        SLICE_8 => Some(8),
        _ => None,
    }
}

/// Name suffix of a GPU-instance profile index: `+me`, `+me.all`, `+gfx`, `-me` or nothing.
fn suffix(profile: u32) -> &'static str {
    use gi_profile::*;
    match profile {
        SLICE_1_REV1 | SLICE_2_REV1 => "+me",
        SLICE_1_ALL_ME | SLICE_2_ALL_ME => "+me.all",
        SLICE_1_GFX | SLICE_2_GFX | SLICE_4_GFX => "+gfx",
        SLICE_1_NO_ME | SLICE_2_NO_ME => "-me",
        _ => "",
    }
}

/// Memory of a MIG profile in GB as go-nvlib rounds it: the fraction of the
/// GPU's memory rounded up to eighths, times the GPU's memory in whole GiB
/// (rounded up), rounded to the nearest integer.
pub fn mig_memory_gb(gpu_memory_bytes: u64, mig_memory_mib: u64) -> Option<u64> {
    const MIB: f64 = 1024.0 * 1024.0;
    const GIB: u64 = 1024 * 1024 * 1024;
    if gpu_memory_bytes == 0 {
        return None;
    }
    let fraction = (mig_memory_mib as f64 * MIB) / gpu_memory_bytes as f64;
    let fraction = (fraction * 8.0).ceil() / 8.0;
    let total_gb = gpu_memory_bytes.div_ceil(GIB) as f64;
    Some((fraction * total_gb).round() as u64)
}

/// The profile name of a MIG device as NVIDIA formats it (go-nvlib
/// `MigProfileInfo.String`): `<G>g.<GB>gb` when the compute instance spans the
/// whole GPU instance, else `<C>c.<G>g.<GB>gb`, then the profile's suffix.
pub fn mig_profile_name(
    gi_profile: u32,
    compute_slices: u32,
    gi_memory_mib: u64,
    gpu_memory_bytes: u64,
) -> Result<String, String> {
    let g = gpu_instance_slices(gi_profile)
        .ok_or_else(|| format!("unknown GPU instance profile {gi_profile}"))?;
    let gb = mig_memory_gb(gpu_memory_bytes, gi_memory_mib)
        .ok_or_else(|| "the GPU's memory size is unknown".to_string())?;
    let suffix = suffix(gi_profile);
    Ok(if compute_slices == g {
        format!("{g}g.{gb}gb{suffix}")
    } else {
        format!("{compute_slices}c.{g}g.{gb}gb{suffix}")
    })
}

/// NVLinks of GPU `own` to its peers: `remotes` are the normalised remote PCI
/// bus ids of its active links, `gpus` the (index, bus id) of every GPU.
/// Links to anything that is not another GPU (an NVSwitch, the GPU itself)
/// are not counted. Sorted by peer index.
pub fn count_links(own: u32, remotes: &[String], gpus: &[(u32, String)]) -> Vec<NvLink> {
    let mut links: Vec<NvLink> = gpus
        .iter()
        .filter(|(index, _)| *index != own)
        .map(|(index, bus)| NvLink {
            peer: *index,
            links: remotes.iter().filter(|r| *r == bus).count() as u32,
        })
        .filter(|link| link.links > 0)
        .collect();
    links.sort_by_key(|l| l.peer);
    links
}

#[cfg(test)]
#[path = "naming_tests.rs"]
mod tests;
