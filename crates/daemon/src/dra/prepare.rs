//! Claim-scoped CDI specs: what NodePrepareResources writes for a claim
//! (`k8s.gpu.nvidia.com-claim_<uid>.json` in the CDI root, kind
//! `k8s.gpu.nvidia.com/claim`, one device `<uid>-<device>` per allocated
//! device, made by the CDI generator of the device plugin) and what
//! NodeUnprepareResources removes. The files are the prepared state: after
//! a restart the claims found on disk are the prepared ones.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::slices::DraDevice;
use crate::allocate::response::DeviceIdStrategy;
use crate::cdi::{CdiError, CdiOptions, DriverFiles, Spec, gpu_spec, write_spec};
use crate::gpu::Inventory;
use crate::resources::MigStrategy;

/// The vendor and class of claim specs (NVIDIA's DRA driver's names).
pub const CLAIM_KIND: &str = "k8s.gpu.nvidia.com/claim";
const FILE_PREFIX: &str = "k8s.gpu.nvidia.com-claim_";

/// The spec file name of a claim.
pub fn claim_file_name(uid: &str) -> String {
    format!("{FILE_PREFIX}{uid}.json")
}

/// The CDI device name of `device` in claim `uid`.
pub fn claim_device_name(uid: &str, device: &str) -> String {
    format!("{uid}-{device}")
}

/// The qualified CDI ID the kubelet hands the runtime.
pub fn cdi_id(uid: &str, device: &str) -> String {
    format!("{CLAIM_KIND}={}", claim_device_name(uid, device))
}

/// The inventory cut down to `devices`: their GPUs, a whole GPU out of
/// MIG mode, a MIG device's GPU with only the claimed MIG devices.
pub fn claim_inventory(inventory: &Inventory, devices: &[DraDevice]) -> Inventory {
    let mut gpus = Vec::new();
    for gpu in &inventory.gpus {
        let mine: Vec<&DraDevice> = devices.iter().filter(|d| d.gpu_uuid == gpu.uuid).collect();
        if mine.is_empty() {
            continue;
        }
        let mut g = gpu.clone();
        if mine.iter().any(|d| d.mig.is_none()) {
            g.mig_enabled = false;
            g.mig_devices.clear();
        } else {
            g.mig_devices
                .retain(|m| mine.iter().any(|d| d.uuid == m.uuid));
        }
        gpus.push(g);
    }
    Inventory {
        driver_version: inventory.driver_version.clone(),
        cuda_driver_version: inventory.cuda_driver_version,
        gpus,
        faults: Vec::new(),
    }
}

/// The claim's spec: the generator's `gpu` spec of the claim's devices
/// (named by UUID), renamed to `<uid>-<device>`, without `all`.
pub fn claim_spec(
    inventory: &Inventory,
    devices: &[DraDevice],
    files: &DriverFiles,
    opts: &CdiOptions,
    uid: &str,
) -> Result<Spec, CdiError> {
    let mut opts = opts.clone();
    opts.id_strategy = DeviceIdStrategy::Uuid;
    opts.mig_strategy = MigStrategy::Mixed;
    let mut spec = gpu_spec(&claim_inventory(inventory, devices), files, &opts)?;
    let names: BTreeMap<&str, &str> = devices
        .iter()
        .map(|d| (d.uuid.as_str(), d.name.as_str()))
        .collect();
    spec.devices
        .retain_mut(|d| match names.get(d.name.as_str()) {
            Some(name) => {
                d.name = claim_device_name(uid, name);
                true
            }
            None => false,
        });
    spec.kind = CLAIM_KIND.into();
    spec.cdi_version = spec.minimum_version().to_string();
    Ok(spec)
}

/// Writes the claim's spec atomically; the same content again is no write.
pub fn write_claim_spec(root: &Path, uid: &str, spec: &Spec) -> Result<PathBuf, CdiError> {
    let path = root.join(claim_file_name(uid));
    if std::fs::read_to_string(&path).is_ok_and(|old| old == spec.to_json()) {
        return Ok(path);
    }
    write_spec(root, &claim_file_name(uid), spec)
}

/// Removes the claim's spec; an absent one is already unprepared.
pub fn remove_claim_spec(root: &Path, uid: &str) -> Result<(), CdiError> {
    let path = root.join(claim_file_name(uid));
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(CdiError::Write {
            path: path.display().to_string(),
            source,
        }),
    }
}

/// The claim UIDs with a spec in `root` (the claims prepared on this node).
pub fn prepared_claims(root: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut out: Vec<String> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            Some(
                name.strip_prefix(FILE_PREFIX)?
                    .strip_suffix(".json")?
                    .to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dra::slices::dra_devices;
    use crate::gpu::simulated::parse_node;

    fn h100() -> Inventory {
        parse_node(
            include_str!("../../../../config/nodes/h100-mig.yaml"),
            "h100",
        )
        .unwrap()
        .inventory
    }

    #[test]
    fn the_claim_inventory_holds_only_the_claimed_devices() {
        let inv = h100();
        let all = dra_devices(&inv, &inv.gpus.iter().map(|g| g.uuid.clone()).collect());
        let mig = all.iter().find(|d| d.name == "gpu-0-mig-9-0").unwrap();
        let whole = all.iter().find(|d| d.name == "gpu-5").unwrap();
        let cut = claim_inventory(&inv, &[mig.clone(), whole.clone()]);
        assert_eq!(cut.gpus.len(), 2);
        assert_eq!(cut.gpus[0].mig_devices.len(), 1);
        assert_eq!(cut.gpus[0].mig_devices[0].uuid, mig.uuid);
        assert!(cut.gpus[0].mig_enabled);
        assert!(!cut.gpus[1].mig_enabled);
    }

    #[test]
    fn names_and_files() {
        assert_eq!(cdi_id("u-1", "gpu-0"), "k8s.gpu.nvidia.com/claim=u-1-gpu-0");
        assert_eq!(claim_file_name("u-1"), "k8s.gpu.nvidia.com-claim_u-1.json");
    }

    #[test]
    fn prepared_claims_are_found_again_and_removal_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        for uid in ["b", "a"] {
            std::fs::write(dir.path().join(claim_file_name(uid)), "{}").unwrap();
        }
        std::fs::write(
            dir.path().join("k8s.device-plugin.nvidia.com-gpu.json"),
            "{}",
        )
        .unwrap();
        assert_eq!(prepared_claims(dir.path()), ["a", "b"]);
        remove_claim_spec(dir.path(), "a").unwrap();
        remove_claim_spec(dir.path(), "a").unwrap();
        assert_eq!(prepared_claims(dir.path()), ["b"]);
    }
}
