//! The simulated backend: a node described in a YAML file (format in
//! `design.md`), used for tests, demos and benchmarks. Editing the file while
//! the plugin runs changes the hardware or raises health events.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use serde::Deserialize;

use super::mig_caps::MigMinors;
use super::{
    Backend, EventKind, FaultKind, Gpu, GpuError, HealthEvent, Inventory, MigDevice, NvLink, Probe,
    WatchReport,
};

/// The DGX-class node compiled into the binary (8×A100, two NUMA nodes, NVLink).
pub const BUILTIN_NODE: &str = include_str!("../../config/nodes/dgx-a100.yaml");
/// Name used for the built-in node in messages.
pub const BUILTIN_NAME: &str = "built-in dgx-a100";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NodeFile {
    #[serde(default)]
    driver_version: Option<String>,
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
}

/// A parsed node: the inventory plus the events raised so far.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub inventory: Inventory,
    /// XIDs raised so far per GPU UUID, oldest first.
    pub xids: HashMap<String, Vec<u64>>,
    /// XIDs raised so far per MIG UUID, oldest first.
    pub mig_xids: HashMap<String, Vec<u64>>,
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
    let mut xids = HashMap::new();
    let mut mig_xids = HashMap::new();
    let mut uuids = HashSet::new();
    let indices: HashSet<u32> = file.gpus.iter().map(|g| g.index).collect();
    if indices.len() != file.gpus.len() {
        return Err(invalid("two GPUs have the same index".into()));
    }
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
        let mut migs = Vec::with_capacity(g.mig_devices.len());
        for m in g.mig_devices {
            if !uuids.insert(m.uuid.clone()) {
                return Err(invalid(format!("UUID {} appears twice", m.uuid)));
            }
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
        xids.insert(g.uuid.clone(), g.xids);
        gpus.push(Gpu {
            index: g.index,
            uuid: g.uuid,
            name: g.name,
            memory_mib: g.memory_mib,
            pci_bus_id: g.pci_bus_id.to_ascii_lowercase(),
            minor,
            numa_node: g.numa_node.and_then(|n| u32::try_from(n).ok()),
            compute_capability: g.compute_capability,
            nvlinks: g
                .nvlinks
                .into_iter()
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
    Ok(Node {
        inventory: Inventory {
            driver_version: file.driver_version,
            gpus,
            faults: Vec::new(),
        },
        xids,
        mig_xids,
    })
}

/// Where the simulated node comes from.
#[derive(Debug, Clone)]
enum Source {
    Builtin,
    File(PathBuf),
}

/// The simulated backend.
#[derive(Debug, Clone)]
pub struct Simulated {
    source: Source,
}

impl Simulated {
    /// The built-in DGX-class node.
    pub fn builtin() -> Self {
        Simulated {
            source: Source::Builtin,
        }
    }

    /// A node file on disk, re-read on every inventory call.
    pub fn from_file(path: impl Into<PathBuf>) -> Self {
        Simulated {
            source: Source::File(path.into()),
        }
    }

    /// The watched file, if any.
    pub fn path(&self) -> Option<&Path> {
        match &self.source {
            Source::Builtin => None,
            Source::File(p) => Some(p),
        }
    }

    /// Reads and parses the node.
    pub fn node(&self) -> Result<Node, GpuError> {
        match &self.source {
            Source::Builtin => parse_node(BUILTIN_NODE, BUILTIN_NAME),
            Source::File(path) => {
                let text = crate::config::read_bounded(path, crate::config::MAX_CONFIG_FILE_BYTES)
                    .map_err(|e| GpuError::NodeFileRead {
                        path: path.display().to_string(),
                        source: e.into(),
                    })?;
                parse_node(&text, &path.display().to_string())
            }
        }
    }
}

/// Events implied by the XID lists growing from `old` to `new`.
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

impl Backend for Simulated {
    fn name(&self) -> &'static str {
        "simulated"
    }

    fn inventory(&self) -> Result<Inventory, GpuError> {
        Ok(self.node()?.inventory)
    }

    fn probe(&self, _gpu_uuid: &str) -> Result<Probe, FaultKind> {
        Ok(Probe::default())
    }

    fn watch_health(
        &self,
        gpus: &[String],
        sink: &mut dyn FnMut(WatchReport),
        stop: &dyn Fn() -> bool,
    ) -> Result<(), GpuError> {
        let poll = super::WATCH_WAKE;
        sink(WatchReport::Watching {
            unwatched: Vec::new(),
            unsupported: Vec::new(),
        });
        let sink = &mut |e| sink(WatchReport::Event(e));
        let Some(path) = self.path() else {
            // The built-in node never changes: nothing to watch.
            while !stop() {
                std::thread::sleep(poll);
            }
            return Ok(());
        };
        let wanted: HashSet<&str> = gpus.iter().map(String::as_str).collect();
        let (tx, rx) = mpsc::channel();
        // Only changes of the node file itself: our own reads must not wake us.
        let _watcher = crate::filewatch::on_file_change(path, move || {
            let _ = tx.send(());
        })
        .map_err(|e| GpuError::Events(e.to_string()))?;
        let mut last = self.node()?;
        while !stop() {
            match rx.recv_timeout(poll) {
                Ok(_) => {
                    while rx.try_recv().is_ok() {}
                    // A half-written or invalid file raises nothing; the next write will.
                    let Ok(node) = self.node() else { continue };
                    for event in new_events(&last, &node, &wanted) {
                        sink(event);
                    }
                    last = node;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(GpuError::Events("file watcher stopped".into()));
                }
            }
        }
        Ok(())
    }
}
