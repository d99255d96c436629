//! The daemon as a DRA kubelet plugin for driver `gpu.nvidia.com`: the
//! node's devices published as ResourceSlices ([`slices`], pure; [`publish`],
//! the API shell), registration with the kubelet's plugin watcher and the
//! DRA gRPC services ([`server`]), claim preparation as claim-scoped CDI
//! specs ([`claims`] pure, [`prepare`] the files), and which GPUs DRA owns
//! instead of the device plugin ([`DraDevices`]).

pub mod claims;
pub mod prepare;
pub mod publish;
pub mod server;
pub mod side;
pub mod slices;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::gpu::Inventory;

/// The driver name: ResourceSlice `spec.driver`, allocation results, GetInfo.
pub const DRIVER: &str = "gpu.nvidia.com";
/// The kubelet's default root.
pub const DEFAULT_KUBELET_DIR: &str = "/var/lib/kubelet";

/// The registration socket under the kubelet dir.
pub fn registration_socket(kubelet_dir: &Path) -> PathBuf {
    kubelet_dir
        .join("plugins_registry")
        .join(format!("{DRIVER}-reg.sock"))
}

/// The DRA service socket under the kubelet dir.
pub fn dra_socket(kubelet_dir: &Path) -> PathBuf {
    kubelet_dir.join("plugins").join(DRIVER).join("dra.sock")
}

/// Which GPUs DRA serves (`--dra-devices`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DraDevices {
    /// Every GPU of the node.
    #[default]
    All,
    /// GPUs by NVML index or UUID.
    Some(Vec<String>),
}

impl std::str::FromStr for DraDevices {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() || s == "all" {
            return Ok(DraDevices::All);
        }
        let items: Vec<String> = s
            .split(',')
            .map(|i| i.trim().to_string())
            .filter(|i| !i.is_empty())
            .collect();
        for i in &items {
            if i.parse::<u32>().is_err() && !i.starts_with("GPU-") {
                return Err(format!(
                    "--dra-devices: {i:?} is neither a GPU index nor a GPU UUID (GPU-…); use all or a comma-separated list"
                ));
            }
        }
        Ok(DraDevices::Some(items))
    }
}

impl DraDevices {
    /// The UUIDs of the GPUs of `inventory` this selects.
    pub fn owned(&self, inventory: &Inventory) -> BTreeSet<String> {
        inventory
            .gpus
            .iter()
            .filter(|g| match self {
                DraDevices::All => true,
                DraDevices::Some(items) => items
                    .iter()
                    .any(|i| *i == g.uuid || i.parse::<u32>().ok() == Some(g.index)),
            })
            .map(|g| g.uuid.clone())
            .collect()
    }
}

/// `inventory` without the GPUs in `owned` (and their faults): what the
/// device plugin advertises when DRA owns those GPUs.
pub fn without_owned(inventory: &Inventory, owned: &BTreeSet<String>) -> Inventory {
    Inventory {
        driver_version: inventory.driver_version.clone(),
        cuda_driver_version: inventory.cuda_driver_version,
        gpus: inventory
            .gpus
            .iter()
            .filter(|g| !owned.contains(&g.uuid))
            .cloned()
            .collect(),
        faults: inventory
            .faults
            .iter()
            .filter(|f| f.uuid.as_ref().is_none_or(|u| !owned.contains(u)))
            .cloned()
            .collect(),
    }
}

/// Everything the DRA side needs, from flags and env.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraOptions {
    pub kubelet_dir: PathBuf,
    pub devices: DraDevices,
}

impl Default for DraOptions {
    fn default() -> Self {
        DraOptions {
            kubelet_dir: PathBuf::from(DEFAULT_KUBELET_DIR),
            devices: DraDevices::All,
        }
    }
}

/// Why the DRA side could not start.
#[derive(Debug, thiserror::Error)]
pub enum DraError {
    #[error(
        "DRA needs the node's name to publish its ResourceSlices (the chart sets NODE_NAME from spec.nodeName; or pass --node-name)"
    )]
    NoNodeName,
    #[error(
        "another DRA plugin for gpu.nvidia.com already serves {0}: one publisher per pool; stop the other daemon on this node"
    )]
    InUse(String),
    #[error("cannot create {path} for the DRA sockets: {source}")]
    Dir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot serve the DRA socket {path}: {source}")]
    Bind {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dra_devices_parse_all_indices_and_uuids() {
        let cases: &[(&str, Result<DraDevices, ()>)] = &[
            ("all", Ok(DraDevices::All)),
            ("", Ok(DraDevices::All)),
            ("0,2", Ok(DraDevices::Some(vec!["0".into(), "2".into()]))),
            (
                "GPU-abc, 3",
                Ok(DraDevices::Some(vec!["GPU-abc".into(), "3".into()])),
            ),
            ("gpu0", Err(())),
        ];
        for (text, want) in cases {
            let got = text.parse::<DraDevices>().map_err(|_| ());
            assert_eq!(&got, want, "{text:?}");
        }
    }

    #[test]
    fn the_selection_picks_gpus_by_index_or_uuid() {
        let inventory = crate::gpu::simulated::parse_node(
            include_str!("../../../../config/nodes/dgx-a100.yaml"),
            "dgx",
        )
        .unwrap()
        .inventory;
        let uuid1 = inventory.gpus[1].uuid.clone();
        let sel = DraDevices::Some(vec!["0".into(), uuid1.clone()]);
        let owned = sel.owned(&inventory);
        assert_eq!(
            owned,
            [inventory.gpus[0].uuid.clone(), uuid1]
                .into_iter()
                .collect()
        );
        assert_eq!(DraDevices::All.owned(&inventory).len(), 8);
        let rest = without_owned(&inventory, &owned);
        assert_eq!(rest.gpus.len(), 6);
        assert!(rest.gpus.iter().all(|g| !owned.contains(&g.uuid)));
        assert!(
            without_owned(&inventory, &DraDevices::All.owned(&inventory))
                .gpus
                .is_empty()
        );
    }
}
