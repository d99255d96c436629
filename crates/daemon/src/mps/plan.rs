//! What the MPS control daemon should run, as plain functions of the config
//! and the inventory: one control daemon per MPS-shared resource, its
//! directories under the MPS root (NVIDIA's layout), its environment and the
//! limits it is sent (NVIDIA's formulas, reference part B3).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::{Settings, v1};
use crate::gpu::Inventory;
use crate::resources::{PlanError, PlanOptions, SharingKind, plan};

use super::MpsError;

/// One GPU a control daemon serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonGpu {
    /// NVML index.
    pub index: u32,
    pub uuid: String,
    pub memory_mib: u64,
    /// Replicas of this GPU in the resource.
    pub replicas: u32,
}

/// One control daemon: a resource shared with MPS and its GPUs, by NVML index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonSpec {
    /// Full resource name, e.g. `nvidia.com/gpu`.
    pub resource: String,
    pub gpus: Vec<DaemonGpu>,
    /// Replica devices advertised for the resource.
    pub devices: usize,
}

/// NVIDIA's directory layout under the MPS root (`/mps` in both containers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub root: PathBuf,
}

impl Layout {
    pub fn pipe_dir(&self, resource: &str) -> PathBuf {
        self.root.join(resource).join("pipe")
    }
    pub fn log_dir(&self, resource: &str) -> PathBuf {
        self.root.join(resource).join("log")
    }
    pub fn marker(&self, resource: &str) -> PathBuf {
        self.root.join(resource).join(".started")
    }
    /// Written once every control daemon has started.
    pub fn ready(&self) -> PathBuf {
        self.root.join(".ready")
    }
}

impl DaemonSpec {
    /// `set_default_active_thread_percentage`'s value: 100 / (devices / GPUs),
    /// both integer divisions, as NVIDIA computes it.
    pub fn thread_percentage(&self) -> u32 {
        let gpus = self.gpus.len().max(1);
        let per_gpu = (self.devices / gpus).max(1);
        u32::try_from(100 / per_gpu).unwrap_or(0)
    }

    /// The commands sent once the daemon is up, in order: the pinned-memory
    /// limit of every GPU with memory (total / its replicas, in MiB), then the
    /// active-thread percentage. A GPU is named by its position among the
    /// daemon's visible GPUs (`CUDA_VISIBLE_DEVICES`, NVML index order),
    /// which is its NVML index when the resource has every GPU of the node.
    pub fn commands(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .gpus
            .iter()
            .enumerate()
            .filter(|(_, g)| g.memory_mib > 0)
            .map(|(position, g)| {
                let limit = g.memory_mib / u64::from(g.replicas.max(1));
                format!("set_default_device_pinned_mem_limit {position} {limit}M")
            })
            .collect();
        out.push(format!(
            "set_default_active_thread_percentage {}",
            self.thread_percentage()
        ));
        out
    }

    /// The whole environment of every `nvidia-cuda-mps-control` run: the pipe
    /// and log directories, and the resource's GPUs only.
    pub fn env(&self, layout: &Layout) -> Vec<(String, String)> {
        let visible: Vec<&str> = self.gpus.iter().map(|g| g.uuid.as_str()).collect();
        vec![
            (
                "CUDA_MPS_PIPE_DIRECTORY".into(),
                path_text(&layout.pipe_dir(&self.resource)),
            ),
            (
                "CUDA_MPS_LOG_DIRECTORY".into(),
                path_text(&layout.log_dir(&self.resource)),
            ),
            ("CUDA_VISIBLE_DEVICES".into(), visible.join(",")),
        ]
    }
}

fn path_text(p: &Path) -> String {
    p.display().to_string()
}

/// The control daemons a config asks for on this node, by resource name.
/// Refuses what NVIDIA refuses: MPS on MIG devices, more replicas than MPS
/// clients per device.
pub fn plan_daemons(
    inventory: &Inventory,
    settings: &Settings,
    file: &v1::Config,
) -> Result<BTreeMap<String, DaemonSpec>, MpsError> {
    if file.sharing_strategy() != v1::SharingStrategy::Mps {
        return Ok(BTreeMap::new());
    }
    let options = PlanOptions {
        mig_strategy: settings.mig_strategy,
        gpu_patterns: file.resources.gpus.clone(),
        mig_patterns: file.resources.mig.clone(),
        sharing: file.sharing_options(),
    };
    let planned = plan(inventory, &options).map_err(|e| match e {
        PlanError::MpsClients { replicas, max, .. } => MpsError::TooManyClients { replicas, max },
        other => MpsError::Plan(other),
    })?;
    let mut out = BTreeMap::new();
    for (name, resource) in planned {
        let shared = resource
            .sharing
            .as_ref()
            .is_some_and(|s| s.kind == SharingKind::Mps);
        let replicated: Vec<_> = resource
            .devices
            .iter()
            .filter(|d| d.replica.is_some())
            .collect();
        if !shared || replicated.is_empty() {
            continue;
        }
        let mut gpus: BTreeMap<u32, DaemonGpu> = BTreeMap::new();
        for d in &replicated {
            let memory_mib = inventory
                .gpus
                .iter()
                .find(|g| g.index == d.gpu_index)
                .map_or(0, |g| g.memory_mib);
            gpus.entry(d.gpu_index)
                .or_insert_with(|| DaemonGpu {
                    index: d.gpu_index,
                    uuid: d.gpu_uuid.clone(),
                    memory_mib,
                    replicas: 0,
                })
                .replicas += 1;
        }
        let spec = DaemonSpec {
            resource: name.clone(),
            gpus: gpus.into_values().collect(),
            devices: replicated.len(),
        };
        out.insert(name, spec);
    }
    Ok(out)
}

/// What a config change does to the running daemons.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Stop these (gone, or changed).
    pub stop: Vec<String>,
    /// Start these (new, or changed).
    pub start: Vec<String>,
}

/// Only resources whose MPS settings changed are stopped and started again.
pub fn diff(old: &BTreeMap<String, DaemonSpec>, new: &BTreeMap<String, DaemonSpec>) -> Changes {
    let mut changes = Changes::default();
    for (name, spec) in old {
        if new.get(name) != Some(spec) {
            changes.stop.push(name.clone());
        }
    }
    for (name, spec) in new {
        if old.get(name) != Some(spec) {
            changes.start.push(name.clone());
        }
    }
    changes
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
