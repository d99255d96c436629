//! Device health over time (pure; the caller passes the clock in): a device is
//! unhealthy after a critical event until a quiet period passes without
//! another, and every device is unhealthy while NVML itself fails.
//!
//! NVIDIA never recovers a device (users restart the plugin, reference
//! users §1.2); a quiet period of `None` keeps that behaviour. Marking every
//! device unhealthy when NVML fails follows NVIDIA PR #1641; that state clears
//! as soon as NVML answers again, while devices with their own event keep
//! their own quiet period.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Health state keyed by the caller's device key (UUID or device ID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthTracker {
    quiet: Option<Duration>,
    /// Devices unhealthy through their own critical event, with the last one's time.
    events: BTreeMap<String, Instant>,
    /// Set while NVML fails: the reason and since when.
    nvml_failure: Option<(String, Instant)>,
}

impl HealthTracker {
    /// `quiet`: how long a device must stay free of critical events to become
    /// healthy again; `None` = never.
    pub fn new(quiet: Option<Duration>) -> Self {
        HealthTracker {
            quiet,
            events: BTreeMap::new(),
            nvml_failure: None,
        }
    }

    /// A critical event hit `device` at `now` (its quiet period restarts).
    /// Returns whether the device's health changed.
    pub fn mark_unhealthy(&mut self, device: &str, now: Instant) -> bool {
        let was_healthy = self.is_healthy(device);
        match self.events.get_mut(device) {
            Some(last) => *last = (*last).max(now),
            None => {
                self.events.insert(device.to_string(), now);
            }
        }
        was_healthy
    }

    /// NVML failed (`reason` says how): every device is unhealthy until
    /// [`nvml_ok`](Self::nvml_ok). Returns whether anything changed.
    pub fn mark_all_unhealthy(&mut self, reason: &str, now: Instant) -> bool {
        let changed = self.nvml_failure.is_none();
        if changed {
            self.nvml_failure = Some((reason.to_string(), now));
        }
        changed
    }

    /// NVML answers again: clears the NVML failure and ends the quiet periods
    /// that are over at `now`. Returns whether anything changed.
    pub fn nvml_ok(&mut self, now: Instant) -> bool {
        let cleared = self.nvml_failure.take().is_some();
        let expired = self.expire(now);
        cleared || expired
    }

    /// Ends the quiet periods that are over at `now`. Returns whether any
    /// device's health changed (a device stays unhealthy while NVML fails).
    pub fn tick(&mut self, now: Instant) -> bool {
        self.expire(now) && self.nvml_failure.is_none()
    }

    fn expire(&mut self, now: Instant) -> bool {
        let Some(quiet) = self.quiet else {
            return false;
        };
        let before = self.events.len();
        self.events
            .retain(|_, last| last.checked_add(quiet).is_none_or(|end| end > now));
        self.events.len() != before
    }

    pub fn is_healthy(&self, device: &str) -> bool {
        self.nvml_failure.is_none() && !self.events.contains_key(device)
    }

    /// When the next quiet period ends, if any will.
    pub fn next_deadline(&self) -> Option<Instant> {
        let quiet = self.quiet?;
        self.events
            .values()
            .filter_map(|last| last.checked_add(quiet))
            .min()
    }

    /// Why NVML is considered failed, while it is.
    pub fn nvml_failure(&self) -> Option<&str> {
        self.nvml_failure
            .as_ref()
            .map(|(reason, _)| reason.as_str())
    }

    /// Devices unhealthy through their own events (not counting an NVML failure).
    pub fn unhealthy_devices(&self) -> impl Iterator<Item = &str> {
        self.events.keys().map(String::as_str)
    }
}

#[cfg(test)]
#[path = "tracker_tests.rs"]
mod tests;
