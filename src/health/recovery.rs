//! Interim recovery policy (replaced by the feat/bounds branch's table).

use crate::gpu::Probe;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RecoveryClass {
    App,
    Reset,
}

pub fn xid_class(xid: u64) -> RecoveryClass {
    match xid {
        13 | 31 | 32 | 38 | 43 | 63 | 68 | 69 | 92 | 94 | 121 => RecoveryClass::App,
        _ => RecoveryClass::Reset,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Fit,
    NotFit(String),
}

pub fn verdict(class: RecoveryClass, probe: &Probe) -> Verdict {
    if probe.retired_pages_pending == Some(true) {
        return Verdict::NotFit("retired pages pending".into());
    }
    if probe.remapped_rows_pending == Some(true) {
        return Verdict::NotFit("row remap pending".into());
    }
    if probe.remapped_rows_failure == Some(true) {
        return Verdict::NotFit("row remap failed".into());
    }
    match (probe.recovery_action, class) {
        (Some(crate::gpu::RecoveryAction::None), _) | (None, RecoveryClass::App) => Verdict::Fit,
        (Some(a), _) => Verdict::NotFit(format!("recovery action {} pending", a.name())),
        (None, RecoveryClass::Reset) => Verdict::NotFit("needs a reset".into()),
    }
}
