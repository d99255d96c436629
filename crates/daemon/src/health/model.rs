//! Device health over time (pure; the caller passes the clock in). A device is
//! unhealthy while any of these holds:
//! - the node's event source or inventory fails as a whole (every device);
//! - its GPU has a fault: lost, unreadable, needs recovery, or could not be
//!   watched for events (that GPU, its MIG devices and replicas only);
//! - a critical event marked it, until the quiet period has passed *and* a
//!   probe of its GPU says the GPU is fit for new work (recovery.rs decides).
//!
//! A mark whose probe fails is probed again one quiet period later, or as soon
//! as the GPU's fault state changes. A mark of a reset-class event on a driver
//! that cannot report the recovery action only clears when the GPU is
//! re-enumerated (seen lost or absent, then back). A quiet period of `None`
//! never recovers a marked device (NVIDIA's behaviour).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::recovery::{RecoveryClass, Verdict, verdict, xid_class};
use crate::gpu::{EventKind, FaultKind, HealthEvent, Probe};
use crate::resources::Device;

/// Which devices a mark covers: a whole GPU, or one MIG device (GPU and/or
/// compute instance, as far as the event says).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct MarkScope {
    pub gpu: String,
    pub gpu_instance: Option<u32>,
    pub compute_instance: Option<u32>,
}

impl MarkScope {
    fn of(event: &HealthEvent) -> Self {
        MarkScope {
            gpu: event.gpu_uuid.clone(),
            gpu_instance: event.gpu_instance_id,
            compute_instance: event.compute_instance_id,
        }
    }

    /// Whether the mark covers `device`: every device on the GPU, except that
    /// a MIG device is covered only when the scope's instances (each when
    /// given) match its own. A GPU advertised whole is covered by any mark on it.
    pub fn covers(&self, device: &Device) -> bool {
        if device.gpu_uuid != self.gpu {
            return false;
        }
        match device.mig {
            None => true,
            Some(p) => {
                self.gpu_instance.is_none_or(|gi| gi == p.gpu_instance_id)
                    && self
                        .compute_instance
                        .is_none_or(|ci| ci == p.compute_instance_id)
            }
        }
    }
}

/// Where a mark stands on its way back to healthy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarkState {
    /// Waiting for the quiet period to pass.
    Quiet,
    /// The GPU is being probed.
    Probing,
    /// The last probe said the GPU is not fit; probe again at `retry_at`.
    NotFit { reason: String, retry_at: Instant },
}

/// One critical event's mark (later events on the same scope refresh it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    /// When the latest critical event on this scope arrived.
    pub last: Instant,
    /// The strictest class of the events that marked it.
    pub class: RecoveryClass,
    /// The latest event, for logs: `XID 79` or `double-bit ECC`.
    pub cause: String,
    pub state: MarkState,
    /// The last reason a probe gave for keeping it, so a repeated reason is
    /// logged once.
    pub reported: Option<String>,
}

/// What a probe result did to the marks of its GPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// These marks cleared: the GPU is fit again.
    Recovered(Vec<MarkScope>),
    /// The GPU is not fit; `reason` says why (the marks stay).
    NotFit { reason: String, first: bool },
    /// No mark was waiting for this probe.
    Stale,
}

/// The health of every device on the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthModel {
    quiet: Option<Duration>,
    /// The event source failed for the whole node.
    watch_failure: Option<String>,
    /// The inventory could not be read at all.
    inventory_failure: Option<String>,
    /// GPU faults from the latest inventory, by GPU UUID.
    inventory_faults: BTreeMap<String, FaultKind>,
    /// GPUs that answered in the latest inventory.
    present: BTreeSet<String>,
    /// GPUs the event watch could not watch or lost, by GPU UUID.
    watch_faults: BTreeMap<String, FaultKind>,
    marks: BTreeMap<MarkScope, Mark>,
}

/// The recovery class of an event: its XID's catalog bucket; a double-bit ECC
/// error counts like XID 48.
pub fn event_class(kind: EventKind) -> RecoveryClass {
    match kind {
        EventKind::Xid(xid) => xid_class(xid),
        EventKind::DoubleBitEcc => RecoveryClass::Reset,
    }
}

/// A short name of an event for logs and metrics.
pub fn event_name(kind: EventKind) -> String {
    match kind {
        EventKind::Xid(xid) => format!("XID {xid}"),
        EventKind::DoubleBitEcc => "double-bit ECC".to_string(),
    }
}

impl HealthModel {
    /// `quiet`: how long a marked device must stay free of critical events
    /// before its GPU is probed for recovery; `None` = never recover.
    pub fn new(quiet: Option<Duration>) -> Self {
        HealthModel {
            quiet,
            watch_failure: None,
            inventory_failure: None,
            inventory_faults: BTreeMap::new(),
            present: BTreeSet::new(),
            watch_faults: BTreeMap::new(),
            marks: BTreeMap::new(),
        }
    }

    /// Whether `device` may be handed out.
    pub fn is_healthy(&self, device: &Device) -> bool {
        self.node_failure().is_none()
            && self.gpu_fault(&device.gpu_uuid).is_none()
            && !self.marks.keys().any(|scope| scope.covers(device))
    }

    /// Why every device is unhealthy, while one is.
    pub fn node_failure(&self) -> Option<&str> {
        self.watch_failure
            .as_deref()
            .or(self.inventory_failure.as_deref())
    }

    /// The fault that keeps a GPU's devices unhealthy, if any.
    pub fn gpu_fault(&self, gpu: &str) -> Option<&FaultKind> {
        self.inventory_faults
            .get(gpu)
            .or_else(|| self.watch_faults.get(gpu))
    }

    /// The current marks.
    pub fn marks(&self) -> &BTreeMap<MarkScope, Mark> {
        &self.marks
    }

    /// A critical event: marks its scope (a new event restarts the quiet period).
    pub fn mark(&mut self, event: &HealthEvent, now: Instant) {
        let class = event_class(event.kind);
        let cause = event_name(event.kind);
        let scope = MarkScope::of(event);
        match self.marks.get_mut(&scope) {
            Some(mark) => {
                mark.last = mark.last.max(now);
                mark.class = mark.class.max(class);
                mark.cause = cause;
                mark.state = MarkState::Quiet;
            }
            None => {
                self.marks.insert(
                    scope,
                    Mark {
                        last: now,
                        class,
                        cause,
                        state: MarkState::Quiet,
                        reported: None,
                    },
                );
            }
        }
    }

    /// The event source failed (`Some`) or works again (`None`).
    pub fn set_watch_failure(&mut self, failure: Option<String>) {
        self.watch_failure = failure;
    }

    /// The inventory failed as a whole (`Some`) or was read again (`None`).
    pub fn set_inventory_failure(&mut self, failure: Option<String>) {
        self.inventory_failure = failure;
    }

    /// The GPUs the latest inventory found answering.
    pub fn present(&self) -> &BTreeSet<String> {
        &self.present
    }

    /// A fresh inventory: `present` are the GPUs that answered, `faults` the
    /// GPU faults (by UUID), replacing the previous ones. A GPU that answers
    /// again after being lost or absent was re-enumerated (reset, or
    /// re-attached): its reset-class marks clear. Marks on a GPU whose fault
    /// state changed are probed again now.
    pub fn set_inventory(
        &mut self,
        present: BTreeSet<String>,
        faults: BTreeMap<String, FaultKind>,
        now: Instant,
    ) {
        let changed: BTreeSet<String> = self
            .inventory_faults
            .keys()
            .chain(faults.keys())
            .filter(|gpu| self.inventory_faults.get(*gpu) != faults.get(*gpu))
            .cloned()
            .collect();
        let back: BTreeSet<&String> = present
            .iter()
            .filter(|gpu| !self.present.contains(*gpu) && !faults.contains_key(*gpu))
            .collect();
        self.marks.retain(|scope, mark| {
            !(back.contains(&scope.gpu) && mark.class == RecoveryClass::Reset)
        });
        self.inventory_faults = faults;
        self.present = present;
        for gpu in &changed {
            self.reprobe_soon(gpu, now);
        }
    }

    /// The GPUs the event watch could not watch, replacing the previous set.
    pub fn set_watch_faults(&mut self, faults: BTreeMap<String, FaultKind>) {
        self.watch_faults = faults;
    }

    /// The event watch lost one GPU.
    pub fn add_watch_fault(&mut self, gpu: String, kind: FaultKind) {
        self.watch_faults.insert(gpu, kind);
    }

    /// GPUs the watch reports faulted.
    pub fn watch_faults(&self) -> &BTreeMap<String, FaultKind> {
        &self.watch_faults
    }

    fn reprobe_soon(&mut self, gpu: &str, now: Instant) {
        for (scope, mark) in &mut self.marks {
            if scope.gpu == gpu
                && let MarkState::NotFit { retry_at, .. } = &mut mark.state
            {
                *retry_at = now;
            }
        }
    }

    /// When a mark next needs attention (its quiet period ends or its probe
    /// is due), if ever.
    pub fn next_deadline(&self) -> Option<Instant> {
        let quiet = self.quiet?;
        self.marks
            .values()
            .filter_map(|mark| match &mark.state {
                MarkState::Quiet => mark.last.checked_add(quiet),
                MarkState::Probing => None,
                MarkState::NotFit { retry_at, .. } => Some(*retry_at),
            })
            .min()
    }

    /// GPUs to probe now: those with a mark whose quiet period is over or
    /// whose retry is due. Their marks wait for the probe's result.
    pub fn due_probes(&mut self, now: Instant) -> Vec<String> {
        let Some(quiet) = self.quiet else {
            return Vec::new();
        };
        let mut gpus = BTreeSet::new();
        for (scope, mark) in &mut self.marks {
            let due = match &mark.state {
                MarkState::Quiet => mark.last.checked_add(quiet).is_some_and(|at| at <= now),
                MarkState::Probing => false,
                MarkState::NotFit { retry_at, .. } => *retry_at <= now,
            };
            if due {
                mark.state = MarkState::Probing;
                gpus.insert(scope.gpu.clone());
            }
        }
        gpus.into_iter().collect()
    }

    /// A probe of `gpu` answered: the marks that waited for it recover when
    /// the GPU is fit for their class, otherwise they wait one more quiet period.
    pub fn probed(
        &mut self,
        gpu: &str,
        result: &Result<Probe, FaultKind>,
        now: Instant,
    ) -> ProbeOutcome {
        let retry_at = now + self.quiet.unwrap_or(Duration::ZERO);
        let mut recovered = Vec::new();
        let mut not_fit: Option<(String, bool)> = None;
        for (scope, mark) in &mut self.marks {
            if scope.gpu != gpu || mark.state != MarkState::Probing {
                continue;
            }
            let judged = match result {
                Ok(probe) => verdict(mark.class, probe),
                Err(kind) => {
                    Verdict::NotFit(format!("the GPU does not answer: {}", fault_text(kind)))
                }
            };
            match judged {
                Verdict::Fit => recovered.push(scope.clone()),
                Verdict::NotFit(reason) => {
                    let first = mark.reported.as_deref() != Some(reason.as_str());
                    not_fit = Some((
                        format!("{} ({}): {reason}", mark.cause, class_name(mark.class)),
                        first || not_fit.as_ref().is_some_and(|(_, f)| *f),
                    ));
                    mark.reported = Some(reason.clone());
                    mark.state = MarkState::NotFit { reason, retry_at };
                }
            }
        }
        for scope in &recovered {
            self.marks.remove(scope);
        }
        match (recovered.is_empty(), not_fit) {
            (false, _) => ProbeOutcome::Recovered(recovered),
            (true, Some((reason, first))) => ProbeOutcome::NotFit { reason, first },
            (true, None) => ProbeOutcome::Stale,
        }
    }
}

fn class_name(class: RecoveryClass) -> &'static str {
    match class {
        RecoveryClass::App => "application-level fault",
        RecoveryClass::Reset => "needs a GPU reset or reboot",
    }
}

/// A fault as operators read it.
pub fn fault_text(kind: &FaultKind) -> String {
    match kind {
        FaultKind::Lost => "GPU is lost (fallen off the bus or inaccessible)".to_string(),
        FaultKind::NeedsRecovery(action) => {
            format!("the driver reports recovery action {}", action.name())
        }
        FaultKind::Failed(message) => message.clone(),
    }
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
