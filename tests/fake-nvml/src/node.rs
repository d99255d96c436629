//! The node the fake driver describes: the simulated node file named by
//! `FAKE_NVML_NODE` (the format of `config/nodes/*.yaml`, read as the
//! simulated backend reads it, at most 1 MiB), re-read whenever it changes.

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    #[serde(default)]
    pub driver_version: Option<String>,
    #[serde(default)]
    pub cuda_driver_version: Option<u32>,
    #[serde(default)]
    pub gpus: Vec<Gpu>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Gpu {
    pub index: u32,
    pub uuid: String,
    pub name: String,
    #[serde(rename = "memoryMiB")]
    pub memory_mib: u64,
    pub pci_bus_id: String,
    #[serde(default)]
    pub minor: Option<u32>,
    #[serde(default)]
    pub compute_capability: Option<String>,
    #[serde(default)]
    pub nvlinks: Vec<Link>,
    #[serde(default)]
    pub mig_enabled: bool,
    #[serde(default)]
    pub mig_devices: Vec<Mig>,
    #[serde(default)]
    pub xids: Vec<u64>,
    #[serde(default)]
    pub mig_xids: HashMap<String, Vec<u64>>,
    /// Every call on the GPU fails with `GPU_IS_LOST`.
    #[serde(default)]
    pub lost: bool,
    /// Field 230; absent means `none`.
    #[serde(default)]
    pub recovery_action: Option<Action>,
    #[serde(default)]
    pub retired_pages_pending: bool,
    #[serde(default)]
    pub remapped_rows_pending: bool,
    #[serde(default)]
    pub remapped_rows_failure: bool,
    /// What usage queries answer; an absent key is `NOT_SUPPORTED`.
    #[serde(default)]
    pub usage: Option<Usage>,
}

/// A device's `usage:` map (the simulated backend's `UsageEntry`).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    #[serde(default)]
    pub gpu_util: Option<u32>,
    #[serde(default)]
    pub memory_util: Option<u32>,
    #[serde(default, rename = "memoryUsedMiB")]
    pub memory_used_mib: Option<u64>,
    #[serde(default, rename = "temperatureC")]
    pub temperature_c: Option<u32>,
    #[serde(default, rename = "powerW")]
    pub power_w: Option<f64>,
    #[serde(default, rename = "smClockMHz")]
    pub sm_clock_mhz: Option<u32>,
}

/// `recoveryAction`: NVML's recovery actions, or a driver without field 230.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    None,
    GpuReset,
    NodeReboot,
    DrainP2P,
    DrainAndReset,
    Unsupported,
}

impl Action {
    /// The `nvmlDeviceGpuRecoveryAction_t` value; `None` when unsupported.
    pub fn value(self) -> Option<u32> {
        match self {
            Action::None => Some(0),
            Action::GpuReset => Some(1),
            Action::NodeReboot => Some(2),
            Action::DrainP2P => Some(3),
            Action::DrainAndReset => Some(4),
            Action::Unsupported => None,
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct Link {
    pub peer: u32,
    pub links: u32,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mig {
    pub uuid: String,
    pub profile: String,
    pub gpu_instance_id: u32,
    pub compute_instance_id: u32,
    #[serde(rename = "memoryMiB")]
    pub memory_mib: u64,
    #[serde(default)]
    pub usage: Option<Usage>,
}

/// The real driver's number of NVLink slots per GPU (`NVML_NVLINK_MAX_LINKS`);
/// a node file may list more links, which then get slots past it.
pub const NVLINK_SLOTS: u32 = 18;

impl Node {
    /// GPU with NVML index `index`.
    pub fn gpu(&self, index: u32) -> Option<&Gpu> {
        self.gpus.iter().find(|g| g.index == index)
    }
}

impl Gpu {
    pub fn minor(&self) -> u32 {
        self.minor.unwrap_or(self.index)
    }

    /// Slots returned by `nvmlDeviceGetMaxMigDeviceCount`.
    pub fn mig_slots(&self) -> u32 {
        (self.mig_devices.len() as u32).max(7)
    }

    /// MIG enabled with MIG devices: no row remapping is reported then.
    pub fn mig_active(&self) -> bool {
        self.mig_enabled && !self.mig_devices.is_empty()
    }

    /// The peer GPU index behind each NVLink slot, in file order.
    pub fn link_peers(&self) -> Vec<u32> {
        self.nvlinks
            .iter()
            .flat_map(|l| std::iter::repeat_n(l.peer, l.links as usize))
            .collect()
    }
}

/// What a MIG profile string says: GPU-instance profile index and slices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    pub gi_profile: u32,
    pub gpu_slices: u32,
    pub compute_slices: u32,
}

/// Parses `[<C>c.]<G>g.<GB>gb[+me|+me.all|+gfx|-me]` into the NVML profile
/// index that go-nvlib would name that way.
pub fn parse_profile(profile: &str) -> Option<Profile> {
    let (base, suffix) = if let Some((base, attr)) = profile.split_once('+') {
        (base, format!("+{attr}"))
    } else if let Some((base, attr)) = profile.split_once('-') {
        (base, format!("-{attr}"))
    } else {
        (profile, String::new())
    };
    let fields: Vec<&str> = base.split('.').collect();
    let number = |s: &str, unit: &str| s.strip_suffix(unit)?.parse::<u32>().ok();
    // The GB figure is derived from memory by the reader; it only has to parse.
    let (c, g, _gb) = match fields.as_slice() {
        [c, g, gb] => (number(c, "c")?, number(g, "g")?, number(gb, "gb")?),
        [g, gb] => {
            let g = number(g, "g")?;
            (g, g, number(gb, "gb")?)
        }
        _ => return None,
    };
    let gi_profile = match (g, suffix.as_str()) {
        (1, "") => 0,
        (2, "") => 1,
        (3, "") => 2,
        (4, "") => 3,
        (7, "") => 4,
        (8, "") => 5,
        (6, "") => 6,
        (1, "+me") => 7,
        (2, "+me") => 8,
        (1, "+gfx") => 10,
        (2, "+gfx") => 11,
        (4, "+gfx") => 12,
        (1, "-me") => 13,
        (2, "-me") => 14,
        (1, "+me.all") => 15,
        (2, "+me.all") => 16,
        _ => return None,
    };
    Some(Profile {
        gi_profile,
        gpu_slices: g,
        compute_slices: c,
    })
}

/// The profile id the fake driver reports for a profile index (real drivers
/// use ids unrelated to the index too, e.g. 19 for A100 `1g.5gb`).
pub fn profile_id(gi_profile: u32) -> u32 {
    gi_profile + 100
}

type Stamp = (SystemTime, u64, u64);

/// The largest node file read, as the simulated backend bounds it.
const MAX_NODE_FILE_BYTES: u64 = 1024 * 1024;

static CACHE: Mutex<Option<(String, Stamp, Arc<Node>)>> = Mutex::new(None);

/// The current node, re-parsed when the file changed since the last call.
pub fn load() -> Result<Arc<Node>, String> {
    let path =
        std::env::var("FAKE_NVML_NODE").map_err(|_| "FAKE_NVML_NODE is not set".to_string())?;
    let meta = std::fs::metadata(&path).map_err(|e| format!("{path}: {e}"))?;
    let stamp = (
        meta.modified().map_err(|e| e.to_string())?,
        meta.len(),
        meta.ino(),
    );
    let mut cache = CACHE
        .lock()
        .map_err(|_| "node cache poisoned".to_string())?;
    if let Some((cached_path, cached_stamp, node)) = cache.as_ref()
        && *cached_path == path
        && *cached_stamp == stamp
    {
        return Ok(node.clone());
    }
    let mut text = String::new();
    std::fs::File::open(&path)
        .and_then(|f| f.take(MAX_NODE_FILE_BYTES + 1).read_to_string(&mut text))
        .map_err(|e| format!("{path}: {e}"))?;
    if text.len() as u64 > MAX_NODE_FILE_BYTES {
        return Err(format!("{path}: larger than {MAX_NODE_FILE_BYTES} bytes"));
    }
    let mut node: Node = serde_saphyr::from_str(&text).map_err(|e| format!("{path}: {e}"))?;
    node.gpus.sort_by_key(|g| g.index);
    let node = Arc::new(node);
    *cache = Some((path, stamp, node.clone()));
    Ok(node)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_names_map_to_nvml_profile_indexes() {
        let p = |gi_profile, gpu_slices, compute_slices| {
            Some(Profile {
                gi_profile,
                gpu_slices,
                compute_slices,
            })
        };
        let cases = [
            ("1g.5gb", p(0, 1, 1)),
            ("2g.20gb", p(1, 2, 2)),
            ("7g.80gb", p(4, 7, 7)),
            ("1c.2g.20gb", p(1, 2, 1)),
            ("1g.10gb+me", p(7, 1, 1)),
            ("1g.10gb+me.all", p(15, 1, 1)),
            ("4g.40gb+gfx", p(12, 4, 4)),
            ("2g.20gb-me", p(14, 2, 2)),
            ("3g.40gb+me", None),
            ("5g.50gb", None),
            ("1g", None),
            ("1x.2g.10gb", None),
        ];
        for (name, want) in cases {
            assert_eq!(parse_profile(name), want, "{name}");
        }
    }
}
