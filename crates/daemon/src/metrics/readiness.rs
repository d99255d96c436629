//! Readiness as plain data: the plugin is ready when the backend answers, a
//! plan exists with at least one resource, and every planned resource has
//! registered with the kubelet since the kubelet last (re)started.

use std::collections::BTreeSet;

/// What readiness is computed from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadyState {
    /// `None` until the backend was tried; `Some(false)` when it failed.
    pub backend_ok: Option<bool>,
    /// True once a plan was computed.
    pub planned: bool,
    /// Resources of the current plan.
    pub expected: BTreeSet<String>,
    /// Resources registered with the current kubelet.
    pub registered: BTreeSet<String>,
    /// Other reasons the plugin is not ready, one line each.
    pub problems: Vec<String>,
}

/// Ready, or the reasons why not (one line each, for the `/readyz` body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    NotReady(Vec<String>),
}

impl ReadyState {
    pub fn readiness(&self) -> Readiness {
        let mut reasons = Vec::new();
        match self.backend_ok {
            None => reasons.push("GPU backend not initialized yet".to_string()),
            Some(false) => reasons.push(
                "GPU backend (NVML) failed to initialize; see the plugin log for the cause"
                    .to_string(),
            ),
            Some(true) => {}
        }
        if !self.planned {
            reasons.push("no resource plan yet".to_string());
        } else if self.expected.is_empty() {
            reasons.push("no resources to advertise on this node".to_string());
        }
        for name in self.expected.difference(&self.registered) {
            reasons.push(format!("{name} is not registered with the kubelet"));
        }
        reasons.extend(self.problems.iter().cloned());
        if reasons.is_empty() {
            Readiness::Ready
        } else {
            Readiness::NotReady(reasons)
        }
    }
}
