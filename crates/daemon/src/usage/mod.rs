//! Per-device usage and who holds each device: a sampler thread reads every
//! served GPU and MIG device's usage through the backend each
//! `--usage-interval`, a PodResources client lists which container holds
//! which device (each interval, and soon after each Allocate, which only
//! nudges it), and `/metrics` renders the latest of both from the [`Store`].
//! Nothing here runs on an RPC path: Allocate's only cost is one
//! non-blocking notify.

pub mod attribution;
pub mod podresources;
pub mod render;
mod sampler;

pub use attribution::{Allocated, Assignment, Attribution, Holder, attribute};
pub use podresources::DEFAULT_POD_RESOURCES_SOCKET;
pub use render::XidCount;
pub use sampler::{Running, start};

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::gpu::{Backend, EventKind, Inventory, StopSignal, Usage, WatchReport};
use crate::resources::Resource;

/// How usage is sampled and exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageOptions {
    /// How often usage is sampled and PodResources listed; `None` = never
    /// (no usage metrics at all).
    pub interval: Option<Duration>,
    /// Also export the samples under DCGM exporter's default names.
    pub dcgm_compatible: bool,
    /// The kubelet's PodResources socket.
    pub pod_resources_socket: PathBuf,
}

impl Default for UsageOptions {
    fn default() -> Self {
        UsageOptions {
            interval: Some(Duration::from_secs(15)),
            dcgm_compatible: false,
            pod_resources_socket: PathBuf::from(DEFAULT_POD_RESOURCES_SOCKET),
        }
    }
}

#[derive(Default)]
struct Data {
    backend: Option<Arc<dyn Backend>>,
    inventory: Inventory,
    resources: BTreeMap<String, Arc<Resource>>,
    samples: HashMap<String, Usage>,
    xids: HashMap<String, XidCount>,
    assignments: Vec<Assignment>,
}

#[derive(Default)]
struct Inner {
    data: Mutex<Data>,
    enabled: AtomicBool,
    dcgm: AtomicBool,
    /// Allocate's nudge to the PodResources client.
    nudge: tokio::sync::Notify,
    /// Wakes (and stops) the sampler thread.
    signal: StopSignal,
}

/// The latest samples, attribution and XID counts, shared by the sampler,
/// the PodResources client, the daemon's shell and `/metrics`. Clone freely.
#[derive(Clone, Default)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    fn data(&self) -> MutexGuard<'_, Data> {
        self.inner
            .data
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Turns the usage families on (they render nothing until then).
    pub fn enable(&self, dcgm_compatible: bool) {
        self.inner.dcgm.store(dcgm_compatible, Ordering::Relaxed);
        self.inner.enabled.store(true, Ordering::Relaxed);
    }

    /// The backend to sample from.
    pub fn set_backend(&self, backend: Arc<dyn Backend>) {
        self.data().backend = Some(backend);
        self.wake_sampler();
    }

    /// The inventory last read (names, MIG profiles, memory sizes).
    pub fn set_inventory(&self, inventory: &Inventory) {
        let mut data = self.data();
        if data.inventory != *inventory {
            data.inventory = inventory.clone();
            drop(data);
            self.wake_sampler();
        }
    }

    /// The devices `name` serves now.
    pub fn set_resource(&self, name: &str, resource: &Arc<Resource>) {
        let mut data = self.data();
        let same = data
            .resources
            .get(name)
            .is_some_and(|r| Arc::ptr_eq(r, resource));
        if !same {
            data.resources.insert(name.to_string(), resource.clone());
            drop(data);
            self.wake_sampler();
        }
    }

    /// Forgets a resource that is no longer served.
    pub fn remove_resource(&self, name: &str) {
        self.data().resources.remove(name);
    }

    /// Counts the XIDs of a health-watch report.
    pub fn record(&self, report: &WatchReport) {
        if let WatchReport::Event(event) = report
            && let EventKind::Xid(xid) = event.kind
        {
            let mut data = self.data();
            let count = data.xids.entry(event.gpu_uuid.clone()).or_default();
            count.count = count.count.saturating_add(1);
            count.last = xid;
        }
    }

    /// Asks the PodResources client to list again soon (Allocate calls it:
    /// one atomic notify, no I/O, no lock held across anything).
    pub fn nudge(&self) {
        if self.inner.enabled.load(Ordering::Relaxed) {
            self.inner.nudge.notify_one();
        }
    }

    fn wake_sampler(&self) {
        self.inner.signal.waker().wake();
    }

    /// What the sampler reads: the backend and every served physical device.
    fn targets(&self) -> (Option<Arc<dyn Backend>>, Vec<String>) {
        let data = self.data();
        let mut uuids: Vec<String> = data
            .resources
            .values()
            .flat_map(|r| r.devices.iter().map(|d| d.uuid.clone()))
            .collect();
        uuids.sort();
        uuids.dedup();
        (data.backend.clone(), uuids)
    }

    fn put_samples(&self, samples: HashMap<String, Usage>) {
        self.data().samples = samples;
    }

    fn put_assignments(&self, assignments: Vec<Assignment>) {
        self.data().assignments = assignments;
    }

    /// Who holds which served device, as last listed.
    pub fn attribution(&self) -> Attribution {
        let data = self.data();
        attribute(&data.resources, &data.assignments)
    }

    /// The usage families as OpenMetrics text (no `# EOF`); empty unless enabled.
    pub fn render(&self) -> String {
        if !self.inner.enabled.load(Ordering::Relaxed) {
            return String::new();
        }
        let data = self.data();
        let attribution = attribute(&data.resources, &data.assignments);
        render::render(&render::View {
            inventory: &data.inventory,
            resources: &data.resources,
            samples: &data.samples,
            xids: &data.xids,
            attribution: &attribution,
            dcgm: self.inner.dcgm.load(Ordering::Relaxed),
        })
    }
}
