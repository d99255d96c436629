//! Which events are critical (NVIDIA's `DP_DISABLE_HEALTHCHECKS` /
//! `DP_ENABLE_HEALTHCHECKS` semantics, reference §6) and which advertised
//! devices an event hits (every replica; MIG devices matched by GI/CI, the
//! behaviour of NVIDIA's fix #1930 for bug #1929).

use std::collections::BTreeMap;

use crate::gpu::{EventKind, HealthEvent};
use crate::resources::Device;

/// XIDs NVIDIA always ignores (application errors; the GPU stays healthy):
/// 13 graphics engine exception, 31 memory page fault, 43 GPU stopped
/// processing, 45 preemptive cleanup, 68 video processor exception,
/// 109 context switch timeout.
pub const IGNORED_XIDS: [u64; 6] = [13, 31, 43, 45, 68, 109];

/// The key NVIDIA uses for "all XIDs". An item `0` in a list lands on it too.
const ALL: u64 = 0;

/// Disabled (`true`) or explicitly enabled (`false`) XIDs, key 0 meaning all.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct XidPolicy {
    entries: BTreeMap<u64, bool>,
}

/// Parses one env list as NVIDIA does: lowercased, split on commas, items
/// trimmed; empty items skipped; `all` or `xids` anywhere makes the result just
/// the all marker (key 0); other items must be unsigned decimal integers, and
/// anything else is logged and ignored.
pub fn parse_xid_list(value: &str) -> Vec<u64> {
    let lower = value.to_lowercase();
    let mut out = Vec::new();
    for item in lower.split(',') {
        let item = item.trim();
        if item == "all" || item == "xids" {
            return vec![ALL];
        }
        if item.is_empty() {
            continue;
        }
        // Go's ParseUint takes digits only (no sign) and rejects overflow.
        match item.parse::<u64>() {
            Ok(xid) if item.bytes().all(|b| b.is_ascii_digit()) => {
                if !out.contains(&xid) {
                    out.push(xid);
                }
            }
            _ => tracing::warn!(value = item, "ignoring malformed XID value"),
        }
    }
    out.sort_unstable();
    out
}

impl XidPolicy {
    /// Builds the policy from the values of `DP_DISABLE_HEALTHCHECKS` and
    /// `DP_ENABLE_HEALTHCHECKS`: the disabled list plus [`IGNORED_XIDS`], then
    /// every enabled XID set to enabled, overriding the disabled entries.
    pub fn from_env_values(disable: Option<&str>, enable: Option<&str>) -> Self {
        let mut entries = BTreeMap::new();
        for xid in parse_xid_list(disable.unwrap_or("")) {
            entries.insert(xid, true);
        }
        for xid in IGNORED_XIDS {
            entries.insert(xid, true);
        }
        for xid in parse_xid_list(enable.unwrap_or("")) {
            entries.insert(xid, false);
        }
        XidPolicy { entries }
    }

    /// The entries: XID → disabled (`true`) or enabled (`false`); key 0 is "all".
    pub fn entries(&self) -> &BTreeMap<u64, bool> {
        &self.entries
    }

    /// NVIDIA's `IsAllDisabled`: the all marker is present and disabled. Then
    /// no health checks run at all, even when specific XIDs are enabled.
    pub fn checks_disabled(&self) -> bool {
        self.entries.get(&ALL) == Some(&true)
    }

    /// NVIDIA's `IsDisabled`: `enable=all` enables everything; else the XID's
    /// own entry decides; else whether all are disabled.
    pub fn is_disabled(&self, xid: u64) -> bool {
        if self.entries.get(&ALL) == Some(&false) {
            return false;
        }
        match self.entries.get(&xid) {
            Some(&disabled) => disabled,
            None => self.checks_disabled(),
        }
    }

    /// Whether an event marks devices unhealthy. Unlike NVIDIA (which registers
    /// ECC events but never acts on them, #267), a double-bit ECC error is
    /// critical unless checks are disabled altogether.
    pub fn is_critical(&self, kind: EventKind) -> bool {
        if self.checks_disabled() {
            return false;
        }
        match kind {
            EventKind::Xid(xid) => !self.is_disabled(xid),
            EventKind::DoubleBitEcc => true,
        }
    }
}

/// Positions in `devices` (one resource's device list) that `event` hits: every
/// device on the event's GPU, except that a MIG device is hit only when the
/// event's GPU instance and compute instance (each when given) match its own.
/// An event without GI/CI hits every MIG device of the GPU; whole GPUs and
/// their replicas are hit by any event on them.
pub fn affected_devices(event: &HealthEvent, devices: &[Device]) -> Vec<usize> {
    devices
        .iter()
        .enumerate()
        .filter(|(_, d)| d.gpu_uuid == event.gpu_uuid)
        .filter(|(_, d)| match d.mig {
            None => true,
            Some(p) => {
                event
                    .gpu_instance_id
                    .is_none_or(|gi| gi == p.gpu_instance_id)
                    && event
                        .compute_instance_id
                        .is_none_or(|ci| ci == p.compute_instance_id)
            }
        })
        .map(|(i, _)| i)
        .collect()
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
