//! The simulated node file: its YAML schema, validation into an inventory,
//! and the answers a simulated driver gives from it (health events implied
//! by an edit, the fitness probe of one GPU).
//!
//! Per-GPU fitness keys, all optional: `lost: true` (every NVML call on the
//! GPU fails with `GPU_IS_LOST`: the GPU is only a `Lost` fault in the
//! inventory), `recoveryAction: none|gpuReset|nodeReboot|drainP2P|drainAndReset|unsupported`
//! (NVML field 230; `unsupported` is a driver too old for it; anything but
//! `none`/`unsupported` also puts a `NeedsRecovery` fault in the inventory),
//! `retiredPagesPending`, `remappedRowsPending`, `remappedRowsFailure` (bools;
//! row remapping is not reported on a MIG GPU with MIG devices, as NVML does).
//! Usage: an optional `usage:` map on each GPU and MIG device entry (see
//! [`super::usage`]).

use std::collections::{HashMap, HashSet};

use serde::Deserialize;

use super::usage::UsageEntry;
use crate::gpu::mig_caps::MigMinors;
use crate::gpu::{
    EventKind, FaultKind, Gpu, GpuError, GpuFault, HealthEvent, Inventory, MigDevice, NvLink,
    Probe, RecoveryAction,
};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NodeFile {
    #[serde(default)]
    driver_version: Option<String>,
    /// `nvmlSystemGetCudaDriverVersion_v2`, e.g. 12040 for CUDA 12.4.
    #[serde(default)]
    cuda_driver_version: Option<u32>,
    #[serde(default)]
    gpus: Vec<GpuEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GpuEntry {
    index: u32,
    uuid: String,
    name: String,
    #[serde(rename = "memoryMiB")]
    memory_mib: u64,
    pci_bus_id: String,
    #[serde(default)]
    minor: Option<u32>,
    #[serde(default)]
    numa_node: Option<i64>,
    #[serde(default)]
    compute_capability: Option<String>,
    #[serde(default)]
    nvlinks: Vec<NvLinkEntry>,
    #[serde(default)]
    mig_enabled: bool,
    #[serde(default)]
    mig_devices: Vec<MigEntry>,
    #[serde(default)]
    xids: Vec<u64>,
    #[serde(default)]
    mig_xids: HashMap<String, Vec<u64>>,
    #[serde(default)]
    lost: bool,
    #[serde(default)]
    recovery_action: Option<ActionEntry>,
    #[serde(default)]
    retired_pages_pending: bool,
    #[serde(default)]
    remapped_rows_pending: bool,
    #[serde(default)]
    remapped_rows_failure: bool,
    #[serde(default)]
    usage: Option<UsageEntry>,
}

/// `recoveryAction` values: NVML's names, plus `unsupported`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase")]
enum ActionEntry {
    None,
    GpuReset,
    NodeReboot,
    DrainP2P,
    DrainAndReset,
    Unsupported,
}

impl ActionEntry {
    fn action(self) -> Option<RecoveryAction> {
        match self {
            Self::None => Some(RecoveryAction::None),
            Self::GpuReset => Some(RecoveryAction::GpuReset),
            Self::NodeReboot => Some(RecoveryAction::NodeReboot),
            Self::DrainP2P => Some(RecoveryAction::DrainP2P),
            Self::DrainAndReset => Some(RecoveryAction::DrainAndReset),
            Self::Unsupported => None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NvLinkEntry {
    peer: u32,
    links: u32,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MigEntry {
    uuid: String,
    profile: String,
    gpu_instance_id: u32,
    compute_instance_id: u32,
    #[serde(rename = "memoryMiB")]
    memory_mib: u64,
    #[serde(default)]
    usage: Option<UsageEntry>,
}

/// What the node file says about one GPU's fitness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GpuHealth {
    pub index: u32,
    pub lost: bool,
    /// `None` for `recoveryAction: unsupported`; `none` when the key is absent.
    pub recovery_action: Option<RecoveryAction>,
    pub retired_pages_pending: bool,
    pub remapped_rows_pending: bool,
    pub remapped_rows_failure: bool,
    /// MIG enabled with MIG devices: NVML reports no row remapping then.
    pub mig_active: bool,
}

/// A parsed node: the inventory plus the events raised so far.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// GPUs that answer; lost ones are only faults here.
    pub inventory: Inventory,
    /// XIDs raised so far per GPU UUID, oldest first.
    pub xids: HashMap<String, Vec<u64>>,
    /// XIDs raised so far per MIG UUID, oldest first.
    pub mig_xids: HashMap<String, Vec<u64>>,
    /// Fitness of every GPU of the file (lost ones too) by UUID.
    pub health: HashMap<String, GpuHealth>,
    /// What each GPU and MIG device (by its own UUID) reports as usage;
    /// devices without a `usage:` map report nothing but free memory.
    pub usage: HashMap<String, crate::gpu::Usage>,
}

/// Parses and validates a node file. `origin` names the file in errors.
pub fn parse_node(text: &str, origin: &str) -> Result<Node, GpuError> {
    let invalid = |message: String| GpuError::NodeFileInvalid {
        path: origin.to_string(),
        message,
    };
    let file: NodeFile = serde_saphyr::from_str(text).map_err(|e| invalid(e.to_string()))?;
    let minors = MigMinors::driver_default();
    let mut gpus = Vec::with_capacity(file.gpus.len());
    let mut faults = Vec::new();
    let mut xids = HashMap::new();
    let mut mig_xids = HashMap::new();
    let mut health = HashMap::new();
    let mut usage = HashMap::new();
    let mut uuids = HashSet::new();
    let indices: HashSet<u32> = file.gpus.iter().map(|g| g.index).collect();
    if indices.len() != file.gpus.len() {
        return Err(invalid("two GPUs have the same index".into()));
    }
    let lost: HashSet<u32> = file
        .gpus
        .iter()
        .filter(|g| g.lost)
        .map(|g| g.index)
        .collect();
    for g in file.gpus {
        if !uuids.insert(g.uuid.clone()) {
            return Err(invalid(format!("UUID {} appears twice", g.uuid)));
        }
        if !g.mig_enabled && !g.mig_devices.is_empty() {
            return Err(invalid(format!(
                "GPU {} lists migDevices but migEnabled is not true",
                g.index
            )));
        }
        for link in &g.nvlinks {
            if !indices.contains(&link.peer) || link.peer == g.index {
                return Err(invalid(format!(
                    "GPU {} has an NVLink to GPU {}, which is not another GPU of this node",
                    g.index, link.peer
                )));
            }
        }
        let minor = g.minor.unwrap_or(g.index);
        let entry = g.usage.unwrap_or_default();
        entry
            .validate(&format!("GPU {}", g.index), g.memory_mib)
            .map_err(invalid)?;
        usage.insert(g.uuid.clone(), entry.usage(g.memory_mib));
        let mut migs = Vec::with_capacity(g.mig_devices.len());
        for m in g.mig_devices {
            if !uuids.insert(m.uuid.clone()) {
                return Err(invalid(format!("UUID {} appears twice", m.uuid)));
            }
            let entry = m.usage.unwrap_or_default();
            entry
                .validate(&format!("MIG device {}", m.uuid), m.memory_mib)
                .map_err(invalid)?;
            usage.insert(m.uuid.clone(), entry.usage(m.memory_mib));
            let cap_paths = minors
                .cap_paths(minor, m.gpu_instance_id, m.compute_instance_id)
                .map_err(|name| {
                    invalid(format!(
                        "MIG device {} has no capability entry {name}",
                        m.uuid
                    ))
                })?;
            migs.push(MigDevice {
                uuid: m.uuid,
                profile: m.profile,
                gpu_instance_id: m.gpu_instance_id,
                compute_instance_id: m.compute_instance_id,
                memory_mib: m.memory_mib,
                cap_paths,
            });
        }
        for (mig_uuid, list) in g.mig_xids {
            if !migs.iter().any(|m| m.uuid == mig_uuid) {
                return Err(invalid(format!(
                    "migXids of GPU {} names {mig_uuid}, which is not one of its MIG devices",
                    g.index
                )));
            }
            mig_xids.insert(mig_uuid, list);
        }
        let state = GpuHealth {
            index: g.index,
            lost: g.lost,
            recovery_action: g
                .recovery_action
                .map_or(Some(RecoveryAction::None), ActionEntry::action),
            retired_pages_pending: g.retired_pages_pending,
            remapped_rows_pending: g.remapped_rows_pending,
            remapped_rows_failure: g.remapped_rows_failure,
            mig_active: g.mig_enabled && !migs.is_empty(),
        };
        health.insert(g.uuid.clone(), state);
        xids.insert(g.uuid.clone(), g.xids);
        if g.lost {
            // NVML cannot read anything of a lost GPU, its UUID included.
            faults.push(GpuFault {
                index: g.index,
                uuid: None,
                kind: FaultKind::Lost,
            });
            continue;
        }
        if let Some(action) = state.recovery_action.filter(|a| *a != RecoveryAction::None) {
            faults.push(GpuFault {
                index: g.index,
                uuid: Some(g.uuid.clone()),
                kind: FaultKind::NeedsRecovery(action),
            });
        }
        gpus.push(Gpu {
            index: g.index,
            uuid: g.uuid,
            name: g.name,
            memory_mib: g.memory_mib,
            pci_bus_id: g.pci_bus_id.to_ascii_lowercase(),
            minor,
            numa_node: g.numa_node.and_then(|n| u32::try_from(n).ok()),
            compute_capability: g.compute_capability,
            // A lost peer is not a GPU of the inventory, so no link to it counts.
            nvlinks: g
                .nvlinks
                .into_iter()
                .filter(|l| !lost.contains(&l.peer))
                .map(|l| NvLink {
                    peer: l.peer,
                    links: l.links,
                })
                .collect(),
            mig_enabled: g.mig_enabled,
            mig_devices: migs,
        });
    }
    gpus.sort_by_key(|g| g.index);
    faults.sort_by_key(|f| f.index);
    Ok(Node {
        inventory: Inventory {
            driver_version: file.driver_version,
            cuda_driver_version: file.cuda_driver_version,
            gpus,
            faults,
        },
        xids,
        mig_xids,
        health,
        usage,
    })
}

/// What a probe of GPU `uuid` answers on this node.
pub fn probe_node(node: &Node, uuid: &str) -> Result<Probe, FaultKind> {
    let Some(gpu) = node.health.get(uuid) else {
        return Err(FaultKind::Failed(format!(
            "no GPU with UUID {uuid} in the simulated node"
        )));
    };
    if gpu.lost {
        return Err(FaultKind::Lost);
    }
    let rows = |value: bool| (!gpu.mig_active).then_some(value);
    Ok(Probe {
        recovery_action: gpu.recovery_action,
        retired_pages_pending: Some(gpu.retired_pages_pending),
        remapped_rows_pending: rows(gpu.remapped_rows_pending),
        remapped_rows_failure: rows(gpu.remapped_rows_failure),
    })
}

/// What a usage read of device `uuid` (a GPU or MIG device) answers on this
/// node: a lost GPU (or a MIG device on one) does not answer.
pub fn usage_node(node: &Node, uuid: &str) -> Result<crate::gpu::Usage, FaultKind> {
    let Some(usage) = node.usage.get(uuid) else {
        return Err(FaultKind::Failed(format!(
            "no GPU or MIG device with UUID {uuid} in the simulated node"
        )));
    };
    // In the file but not in the inventory: it is (or sits on) a lost GPU.
    let answers = node
        .inventory
        .gpus
        .iter()
        .any(|g| g.uuid == uuid || g.mig_devices.iter().any(|m| m.uuid == uuid));
    if answers {
        Ok(*usage)
    } else {
        Err(FaultKind::Lost)
    }
}

/// Events implied by the XID lists growing from `old` to `new`, on the GPUs
/// in `gpus` that answer in `new` (a lost GPU raises none).
pub fn new_events(old: &Node, new: &Node, gpus: &HashSet<&str>) -> Vec<HealthEvent> {
    let mut events = Vec::new();
    for gpu in &new.inventory.gpus {
        if !gpus.contains(gpu.uuid.as_str()) {
            continue;
        }
        let before = old.xids.get(&gpu.uuid).map_or(0, Vec::len);
        if let Some(list) = new.xids.get(&gpu.uuid) {
            for &xid in list.iter().skip(before) {
                events.push(HealthEvent {
                    gpu_uuid: gpu.uuid.clone(),
                    kind: EventKind::Xid(xid),
                    gpu_instance_id: None,
                    compute_instance_id: None,
                });
            }
        }
        for mig in &gpu.mig_devices {
            let before = old.mig_xids.get(&mig.uuid).map_or(0, Vec::len);
            if let Some(list) = new.mig_xids.get(&mig.uuid) {
                for &xid in list.iter().skip(before) {
                    events.push(HealthEvent {
                        gpu_uuid: gpu.uuid.clone(),
                        kind: EventKind::Xid(xid),
                        gpu_instance_id: Some(mig.gpu_instance_id),
                        compute_instance_id: Some(mig.compute_instance_id),
                    });
                }
            }
        }
    }
    events
}

#[cfg(test)]
#[path = "node_tests.rs"]
mod tests;
