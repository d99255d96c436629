//! Recovery policy (pure): what an XID says about the GPU once the process
//! that hit it has gone, and whether a probe of the GPU shows it fit for new
//! work. XID actions follow NVIDIA's XID catalog ("Resolution Bucket
//! (Immediate Action)", reference health-podresources-metrics.md §A.2, §A.6);
//! the probe reads NVML's GPU recovery action (field 230, R565+ drivers),
//! pending page retirement and row remapping (§A.3, §A.4).

use crate::gpu::{Probe, RecoveryAction};
use CatalogAction::{
    ContactSupport, FollowDriver, Ignore, ResetGpu, RestartApp, RestartNode, Workflow,
};

/// What it takes for a GPU to be usable again after an XID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RecoveryClass {
    /// An application error: the GPU is fine once the process has exited.
    App,
    /// The GPU needs a reset, a reboot or re-enumeration before new work.
    Reset,
}

/// NVIDIA's immediate action for an XID (the catalog's resolution bucket).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatalogAction {
    /// `IGNORE`: informational.
    Ignore,
    /// `RESTART_APP`: contained to the application.
    RestartApp,
    /// `RESET_GPU`: stop the GPU's processes, reset it.
    ResetGpu,
    /// `RESTART_BM`: reboot the node.
    RestartNode,
    /// `CONTACT_SUPPORT`: unexpected; also every code marked "Unused".
    ContactSupport,
    /// A `WORKFLOW_*` bucket: depends on companion XIDs or decoded registers.
    Workflow,
    /// `XID_154`: do what the driver's recovery action (field 230) says.
    FollowDriver,
}

impl CatalogAction {
    /// Only informational and application faults leave the GPU usable; a
    /// workflow, a support case or an unknown outcome needs a reset.
    pub fn class(self) -> RecoveryClass {
        match self {
            Self::Ignore | Self::RestartApp => RecoveryClass::App,
            Self::ResetGpu
            | Self::RestartNode
            | Self::ContactSupport
            | Self::Workflow
            | Self::FollowDriver => RecoveryClass::Reset,
        }
    }
}

/// One catalog entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XidInfo {
    pub xid: u64,
    /// NVIDIA's mnemonic, without the `ROBUST_CHANNEL_`-style prefix.
    pub name: &'static str,
    pub description: &'static str,
    pub action: CatalogAction,
}

const fn entry(
    xid: u64,
    name: &'static str,
    description: &'static str,
    action: CatalogAction,
) -> XidInfo {
    XidInfo {
        xid,
        name,
        description,
        action,
    }
}

/// The XIDs that matter for a device plugin, by number.
pub const XID_CATALOG: &[XidInfo] = &[
    entry(13, "GR_EXCEPTION", "graphics engine exception", RestartApp),
    entry(31, "MMU_ERR_FLT", "GPU memory page fault", RestartApp),
    entry(
        32,
        "PBDMA_ERROR",
        "invalid or corrupted push buffer stream",
        RestartApp,
    ),
    entry(
        38,
        "FECS_ERR_WATCHDOG_TIMEOUT",
        "driver firmware error",
        Ignore,
    ),
    entry(
        43,
        "RESETCHANNEL_VERIF_ERROR",
        "GPU stopped processing (channel reset)",
        Ignore,
    ),
    entry(
        45,
        "PREEMPTIVE_REMOVAL",
        "cleanup after previous errors",
        Workflow,
    ),
    entry(46, "GPU_TIMEOUT_ERROR", "GPU stopped processing", ResetGpu),
    entry(48, "GPU_ECC_DBE", "double-bit ECC error", Workflow),
    entry(61, "PMU_BREAKPOINT", "unused code", ContactSupport),
    entry(
        62,
        "PMU_HALT_ERROR",
        "internal micro-controller halt",
        ResetGpu,
    ),
    entry(
        63,
        "INFOROM_DRAM_RETIREMENT_EVENT",
        "memory page retirement or row remap",
        Ignore,
    ),
    entry(
        64,
        "INFOROM_DRAM_RETIREMENT_FAILURE",
        "memory remapping failure",
        ResetGpu,
    ),
    entry(68, "NVDEC0_ERROR", "video decoder exception", RestartApp),
    entry(
        69,
        "GR_CLASS_ERROR",
        "graphics engine class error",
        RestartApp,
    ),
    entry(74, "NVLINK_ERROR", "NVLink error", Workflow),
    entry(
        79,
        "GPU_HAS_FALLEN_OFF_THE_BUS",
        "GPU has fallen off the bus",
        RestartNode,
    ),
    entry(
        92,
        "EXCESSIVE_SBE_INTERRUPTS",
        "high single-bit ECC error rate",
        Ignore,
    ),
    entry(94, "CONTAINED_ERROR", "contained memory error", RestartApp),
    entry(
        95,
        "UNCONTAINED_ERROR",
        "uncontained memory error",
        ResetGpu,
    ),
    entry(
        109,
        "CTXSW_TIMEOUT_ERROR",
        "context-switch timeout",
        ResetGpu,
    ),
    entry(119, "GSP_RPC_TIMEOUT", "GSP firmware RPC timeout", ResetGpu),
    entry(120, "GSP_ERROR", "GSP firmware error", ResetGpu),
    entry(121, "C2C_ERROR", "chip-to-chip link error", Ignore),
    entry(123, "SPI_PMU_RPC_WRITE_FAIL", "unused code", ContactSupport),
    entry(
        140,
        "UNRECOVERABLE_ECC_ERROR_ESCAPE",
        "unrecoverable ECC error escape",
        ResetGpu,
    ),
    entry(143, "GPU_INIT_ERROR", "GPU initialisation error", ResetGpu),
    entry(144, "NVLINK_SAW_ERROR", "NVLink5 error", Workflow),
    entry(145, "NVLINK_RLW_ERROR", "NVLink5 error", Workflow),
    entry(146, "NVLINK_TLW_ERROR", "NVLink5 error", Workflow),
    entry(147, "NVLINK_TREX_ERROR", "NVLink5 error", Workflow),
    entry(148, "NVLINK_NVLPW_CTRL_ERROR", "NVLink5 error", Workflow),
    entry(149, "NVLINK_NETIR_ERROR", "NVLink5 error", Workflow),
    entry(150, "NVLINK_MSE_ERROR", "NVLink5 error", Workflow),
    entry(
        154,
        "GPU_RECOVERY_ACTION_CHANGED",
        "the driver's recovery action changed",
        FollowDriver,
    ),
    entry(
        155,
        "NVLINK_SW_DEFINED_ERROR",
        "NVLink software-defined error",
        ResetGpu,
    ),
    entry(
        156,
        "RESOURCE_RETIREMENT_EVENT",
        "resource retirement",
        ResetGpu,
    ),
    entry(158, "GPU_FATAL_TIMEOUT", "fatal GPU timeout", ResetGpu),
];

/// The catalog entry of `xid`, if this build knows it.
pub fn xid_info(xid: u64) -> Option<&'static XidInfo> {
    XID_CATALOG
        .binary_search_by_key(&xid, |e| e.xid)
        .ok()
        .and_then(|i| XID_CATALOG.get(i))
}

/// The recovery class of an XID. Unknown XIDs (NVML reports an unknown one as
/// 999) need a reset: nothing says the GPU is fine.
pub fn xid_class(xid: u64) -> RecoveryClass {
    xid_info(xid).map_or(RecoveryClass::Reset, |e| e.action.class())
}

/// Whether a GPU may take new work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Fit,
    /// Not fit, with what is wrong and what the operator does about it.
    NotFit(String),
}

/// Decides from a probe whether a GPU that saw an XID of `class` is fit: NVML's
/// recovery action is none (or, on a driver too old to report it, the XID is
/// an application error), and no page retirement, row remap or remap failure
/// is pending. Every reason that applies is given, separated by `; `.
pub fn verdict(class: RecoveryClass, probe: &Probe) -> Verdict {
    let mut reasons = Vec::new();
    match probe.recovery_action {
        Some(RecoveryAction::None) => {}
        Some(action) => reasons.push(action_reason(action)),
        None if class == RecoveryClass::Reset => reasons.push(
            "the XID needs a GPU reset or a reboot and the driver is too old to report NVML's \
             recovery action (R565+): reset the GPU (nvidia-smi -r) or reboot the node"
                .to_string(),
        ),
        None => {}
    }
    if probe.retired_pages_pending == Some(true) {
        reasons.push("retired memory pages pending: reset the GPU or reboot the node".into());
    }
    if probe.remapped_rows_pending == Some(true) {
        reasons.push("memory row remapping pending: reset the GPU to apply it".into());
    }
    if probe.remapped_rows_failure == Some(true) {
        reasons.push(
            "memory row remapping failed: the GPU cannot repair its memory; have it replaced"
                .into(),
        );
    }
    if reasons.is_empty() {
        Verdict::Fit
    } else {
        Verdict::NotFit(reasons.join("; "))
    }
}

fn action_reason(action: RecoveryAction) -> String {
    let todo = match action {
        RecoveryAction::None => "none",
        RecoveryAction::GpuReset => "stop the GPU's processes and reset the GPU (nvidia-smi -r)",
        RecoveryAction::NodeReboot => "reboot the node",
        RecoveryAction::DrainP2P => {
            "stop the processes using peer-to-peer traffic and disable UVM persistence mode; \
             the driver then reports the next action"
        }
        RecoveryAction::DrainAndReset => {
            "stop peer-to-peer traffic and the GPU's processes, then reset the GPU"
        }
        RecoveryAction::Other(5) => "recover the IMEX domain",
        RecoveryAction::Other(6) => "reset the GPU's PCIe bus",
        RecoveryAction::Other(7) => "reboot the system",
        RecoveryAction::Other(_) => "see NVIDIA's documentation of nvmlDeviceGpuRecoveryAction_t",
    };
    format!("GPU recovery action {} pending: {todo}", action.name())
}

#[cfg(test)]
#[path = "recovery_tests.rs"]
mod tests;
