//! The simulated backend: a node described in a YAML file (the schema is in
//! [`node`] and `config/nodes/*.yaml`), used for tests, demos and benchmarks.
//! Editing the file while the plugin runs changes the hardware, a GPU's
//! fitness (`lost`, `recoveryAction`, ...), or raises health events; every
//! inventory and probe reads the file afresh.

mod node;
mod usage;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub use node::{GpuHealth, Node, new_events, parse_node, probe_node, usage_node};
pub use usage::UsageEntry;

use super::{
    Backend, FaultKind, GpuError, Inventory, Probe, StopSignal, Usage, WATCH_WAKE, WatchReport,
};

/// The DGX-class node compiled into the binary (8×A100, two NUMA nodes, NVLink).
pub const BUILTIN_NODE: &str = include_str!("../../../../config/nodes/dgx-a100.yaml");
/// Name used for the built-in node in messages.
pub const BUILTIN_NAME: &str = "built-in dgx-a100";
/// The largest node file read; real ones are a few KiB.
pub const MAX_NODE_FILE_BYTES: u64 = 1024 * 1024;

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
            Source::File(path) => parse_node(&read_node_file(path)?, &path.display().to_string()),
        }
    }

    /// The watch loop of both trait methods: wakes on a change of the node
    /// file, on `signal`, and every `wake` when set; ends once `stop()`.
    fn watch(
        &self,
        gpus: &[String],
        sink: &mut dyn FnMut(WatchReport),
        signal: &StopSignal,
        stop: &dyn Fn() -> bool,
        wake: Option<Duration>,
    ) -> Result<(), GpuError> {
        let changed = Arc::new(AtomicBool::new(false));
        // Only changes of the node file itself: our own reads must not wake us.
        let _watcher = match self.path() {
            Some(path) => {
                let (changed, waker) = (changed.clone(), signal.waker());
                let watcher = crate::watch::on_file_change(path, move || {
                    changed.store(true, Ordering::SeqCst);
                    waker.wake();
                })
                .map_err(|e| GpuError::Events(format!("cannot watch the node file: {e}")))?;
                Some(watcher)
            }
            None => None,
        };
        let mut last = self.node()?;
        let (mut watched, unwatched) = registration(&last, gpus);
        sink(WatchReport::Watching {
            unwatched,
            unsupported: Vec::new(),
        });
        loop {
            let seen = signal.wakes();
            if stop() {
                return Ok(());
            }
            // A half-written or invalid file raises nothing; the next write will.
            if changed.swap(false, Ordering::SeqCst)
                && let Ok(node) = self.node()
            {
                for report in changes(&last, &node, &mut watched) {
                    if stop() {
                        return Ok(());
                    }
                    sink(report);
                }
                last = node;
            }
            if signal.wait(seen, wake) {
                return Ok(());
            }
        }
    }
}

/// Reads a node file of at most [`MAX_NODE_FILE_BYTES`].
fn read_node_file(path: &Path) -> Result<String, GpuError> {
    use crate::config::{ReadError, read_bounded};
    read_bounded(path, MAX_NODE_FILE_BYTES).map_err(|e| match e {
        ReadError::Io { source, .. } => GpuError::NodeFileRead {
            path: path.display().to_string(),
            source,
        },
        ReadError::TooLarge { max, .. } => GpuError::NodeFileInvalid {
            path: path.display().to_string(),
            message: format!("larger than {max} bytes (a node file is a few KiB)"),
        },
        e @ ReadError::NotUtf8 { .. } => GpuError::NodeFileInvalid {
            path: path.display().to_string(),
            message: e.to_string(),
        },
    })
}

/// Splits the GPUs to watch into those watched and those that cannot be, as
/// the NVML backend's registration does.
fn registration(node: &Node, gpus: &[String]) -> (Vec<String>, Vec<(String, FaultKind)>) {
    let mut watched = Vec::new();
    let mut unwatched = Vec::new();
    for uuid in gpus {
        match probe_node(node, uuid) {
            Ok(_) => watched.push(uuid.clone()),
            Err(kind) => unwatched.push((uuid.clone(), kind)),
        }
    }
    (watched, unwatched)
}

/// Reports implied by the node going from `old` to `new`: events on the
/// watched GPUs, then a `Lost` fault for each watched GPU now lost, which is
/// no longer watched.
fn changes(old: &Node, new: &Node, watched: &mut Vec<String>) -> Vec<WatchReport> {
    let set: HashSet<&str> = watched.iter().map(String::as_str).collect();
    let mut reports: Vec<WatchReport> = new_events(old, new, &set)
        .into_iter()
        .map(WatchReport::Event)
        .collect();
    watched.retain(|uuid| {
        let lost = new.health.get(uuid).is_some_and(|h| h.lost);
        if lost {
            reports.push(WatchReport::Fault {
                uuid: uuid.clone(),
                kind: FaultKind::Lost,
            });
        }
        !lost
    });
    reports
}

impl Backend for Simulated {
    fn name(&self) -> &'static str {
        "simulated"
    }

    fn inventory(&self) -> Result<Inventory, GpuError> {
        Ok(self.node()?.inventory)
    }

    fn probe(&self, gpu_uuid: &str) -> Result<Probe, FaultKind> {
        let node = self.node().map_err(|e| FaultKind::Failed(e.to_string()))?;
        probe_node(&node, gpu_uuid)
    }

    fn usage(&self, uuid: &str) -> Result<Usage, FaultKind> {
        let node = self.node().map_err(|e| FaultKind::Failed(e.to_string()))?;
        usage_node(&node, uuid)
    }

    /// One read and parse of the node file for all devices.
    fn usage_many(&self, uuids: &[String]) -> Vec<Result<Usage, FaultKind>> {
        match self.node() {
            Ok(node) => uuids.iter().map(|uuid| usage_node(&node, uuid)).collect(),
            Err(e) => {
                let kind = FaultKind::Failed(e.to_string());
                uuids.iter().map(|_| Err(kind.clone())).collect()
            }
        }
    }

    fn watch_health(
        &self,
        gpus: &[String],
        sink: &mut dyn FnMut(WatchReport),
        stop: &dyn Fn() -> bool,
    ) -> Result<(), GpuError> {
        self.watch(gpus, sink, &StopSignal::new(), stop, Some(WATCH_WAKE))
    }

    fn watch_health_until(
        &self,
        gpus: &[String],
        sink: &mut dyn FnMut(WatchReport),
        stop: &StopSignal,
    ) -> Result<(), GpuError> {
        self.watch(gpus, sink, stop, &|| stop.is_stopped(), None)
    }
}

#[cfg(test)]
#[path = "simulated_tests.rs"]
mod tests;
