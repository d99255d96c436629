//! GPU feature labels at run time: the daemon's loop hands over the current
//! inventory and config after every event ([`Features::update`], a no-op
//! unless something changed), and a task computes GFD's labels and writes
//! them to the sink at once; a failed write is retried with backoff (logged
//! once), and a NodeFeature object is checked again every minute.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::labels::{LabelInput, Labels, gfd_labels};
use super::sink::{NodeFeatureSink, file_content, write_atomic};
use crate::config::v1::Sharing;
use crate::daemon::state::LoadedConfig;
use crate::gpu::Inventory;
use crate::resources::MigStrategy;

/// GFD's `--machine-type-file` default.
pub const DEFAULT_MACHINE_TYPE_FILE: &str = "/sys/class/dmi/id/product_name";
const RETRY: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(30));
const RESYNC: Duration = Duration::from_secs(60);
/// A write that has not finished by then counts as failed (and is retried).
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on what is read from a sysfs or DMI file.
const MAX_SMALL_FILE: u64 = 4096;

/// Where labels go.
pub enum Writer {
    File(PathBuf),
    NodeFeature(Box<NodeFeatureSink>),
}

impl Writer {
    async fn write(&self, labels: &Labels) -> Result<(), String> {
        match self {
            // A small local file, written in place: no await inside, so a
            // shutdown (which aborts this task) never races a write that
            // would recreate the file after its removal.
            Writer::File(path) => write_atomic(path, &file_content(labels))
                .map_err(|e| format!("cannot write the features file: {e}")),
            Writer::NodeFeature(sink) => sink
                .apply(labels)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
        }
    }

    fn describe(&self) -> String {
        match self {
            Writer::File(path) => path.display().to_string(),
            Writer::NodeFeature(_) => "the NodeFeature object".into(),
        }
    }
}

/// What the labels are computed from, as the daemon holds it now.
#[derive(Debug, Clone, PartialEq)]
struct Source {
    inventory: Inventory,
    mig_strategy: MigStrategy,
    sharing: Sharing,
    no_timestamp: bool,
    machine_file: PathBuf,
}

/// The running label publisher.
pub struct Features {
    tx: watch::Sender<Option<Source>>,
    task: JoinHandle<()>,
    /// The features file to remove on exit (file sink).
    file: Option<PathBuf>,
}

impl Features {
    /// Starts publishing to `writer`.
    pub fn start(writer: Writer) -> Self {
        let (tx, rx) = watch::channel(None);
        let file = match &writer {
            Writer::File(path) => Some(path.clone()),
            Writer::NodeFeature(_) => None,
        };
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let task = tokio::spawn(publish(writer, rx, timestamp));
        Features { tx, task, file }
    }

    /// Hands over the daemon's current inventory and config; the labels are
    /// recomputed only when one of them changed.
    pub fn update(&self, inventory: Option<&Inventory>, config: &LoadedConfig) {
        let Some(inventory) = inventory else { return };
        let gfd = config.file.flags.gfd.as_ref();
        let machine_file = gfd
            .and_then(|g| g.machine_type_file.clone())
            .unwrap_or_else(|| DEFAULT_MACHINE_TYPE_FILE.into());
        let no_timestamp = gfd.and_then(|g| g.no_timestamp).unwrap_or(false);
        let mig_strategy = config.settings.mig_strategy;
        self.tx.send_if_modified(|cur| {
            let same = cur.as_ref().is_some_and(|c| {
                c.inventory == *inventory
                    && c.mig_strategy == mig_strategy
                    && c.sharing == config.file.sharing
                    && c.no_timestamp == no_timestamp
                    && c.machine_file.as_os_str() == machine_file.as_str()
            });
            if !same {
                *cur = Some(Source {
                    inventory: inventory.clone(),
                    mig_strategy,
                    sharing: config.file.sharing.clone(),
                    no_timestamp,
                    machine_file: PathBuf::from(&machine_file),
                });
            }
            !same
        });
    }

    /// Stops publishing at once (a write in flight to a slow API server
    /// must not hold up the exit) and removes the features file.
    pub async fn shutdown(self) {
        self.task.abort();
        let _ = self.task.await;
        if let Some(path) = &self.file
            && let Err(e) = std::fs::remove_file(path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove the features file");
        }
    }
}

fn read_small(path: &Path) -> Option<String> {
    crate::config::read_bounded(path, MAX_SMALL_FILE).ok()
}

/// Reads the machine type and the GPUs' PCI classes, then computes.
fn compute(source: &Source, timestamp: u64) -> Labels {
    let pci_classes: BTreeMap<String, String> = source
        .inventory
        .gpus
        .iter()
        .filter_map(|g| {
            let class = read_small(
                &Path::new("/sys/bus/pci/devices")
                    .join(&g.pci_bus_id)
                    .join("class"),
            )?;
            Some((g.pci_bus_id.clone(), class.trim().to_string()))
        })
        .collect();
    gfd_labels(&LabelInput {
        inventory: source.inventory.clone(),
        mig_strategy: source.mig_strategy,
        sharing: source.sharing.clone(),
        machine: read_small(&source.machine_file),
        pci_classes,
        timestamp: (!source.no_timestamp).then_some(timestamp),
    })
}

async fn publish(writer: Writer, mut rx: watch::Receiver<Option<Source>>, timestamp: u64) {
    let mut written: Option<Labels> = None;
    let mut delay = RETRY.0;
    let mut retry_at: Option<tokio::time::Instant> = None;
    let mut failing = false;
    let resync = matches!(writer, Writer::NodeFeature(_));
    let mut resync_at = tokio::time::Instant::now() + RESYNC;
    loop {
        let wake = retry_at.map_or(resync_at, |r| r.min(resync_at));
        tokio::select! {
            changed = rx.changed() => if changed.is_err() { break },
            _ = tokio::time::sleep_until(wake) => {
                if resync && tokio::time::Instant::now() >= resync_at {
                    // Someone may have edited or deleted the object.
                    written = None;
                }
                resync_at = tokio::time::Instant::now() + RESYNC;
            }
        }
        let Some(source) = rx.borrow_and_update().clone() else {
            continue;
        };
        let labels = match tokio::task::spawn_blocking(move || compute(&source, timestamp)).await {
            Ok(labels) => labels,
            Err(e) => {
                tracing::error!(error = %e, "computing the GPU feature labels failed");
                continue;
            }
        };
        if written.as_ref() == Some(&labels) && retry_at.is_none() {
            continue;
        }
        let written_now = tokio::time::timeout(WRITE_TIMEOUT, writer.write(&labels))
            .await
            .unwrap_or_else(|_| Err(format!("no answer in {WRITE_TIMEOUT:?}")));
        match written_now {
            Ok(()) => {
                if std::mem::take(&mut failing) {
                    tracing::info!(sink = %writer.describe(), "GPU feature labels written again");
                }
                tracing::debug!(labels = labels.len(), "GPU feature labels published");
                written = Some(labels);
                retry_at = None;
                delay = RETRY.0;
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(sink = %writer.describe(), error = %e, "cannot publish the GPU feature labels; retrying with backoff");
                    failing = true;
                }
                retry_at = Some(tokio::time::Instant::now() + delay);
                delay = (delay * 2).min(RETRY.1);
            }
        }
    }
}
