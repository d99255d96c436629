//! Tests of `health::recovery`: the XID catalog and the fitness verdict.
use super::*;
use RecoveryClass::{App, Reset};

#[test]
fn xid_classes_follow_the_catalogs_immediate_action() {
    // (XID, class, why)
    let cases: [(u64, RecoveryClass, &str); 16] = [
        (13, App, "RESTART_APP"),
        (31, App, "RESTART_APP"),
        (43, App, "IGNORE"),
        (63, App, "IGNORE: the probe's remap fields decide"),
        (92, App, "IGNORE"),
        (94, App, "RESTART_APP: contained memory error"),
        (45, Reset, "WORKFLOW_XID_45"),
        (48, Reset, "WORKFLOW_XID_48"),
        (61, Reset, "CONTACT_SUPPORT"),
        (79, Reset, "RESTART_BM"),
        (95, Reset, "RESET_GPU"),
        (109, Reset, "RESET_GPU, although NVIDIA's plugin ignores it"),
        (147, Reset, "WORKFLOW_NVLINK5_ERR"),
        (154, Reset, "XID_154: field 230 decides"),
        (999, Reset, "unknown XID as NVML reports it"),
        (100_000, Reset, "not in the catalog"),
    ];
    for (xid, class, why) in cases {
        assert_eq!(xid_class(xid), class, "XID {xid}: {why}");
    }
}

#[test]
fn the_catalog_is_sorted_and_unique() {
    for pair in XID_CATALOG.windows(2) {
        assert!(
            pair[0].xid < pair[1].xid,
            "{} before {}",
            pair[0].xid,
            pair[1].xid
        );
    }
}

#[test]
fn every_catalog_entry_is_found_with_its_name() {
    for e in XID_CATALOG {
        assert_eq!(xid_info(e.xid), Some(e), "XID {}", e.xid);
        assert!(
            !e.name.is_empty() && !e.description.is_empty(),
            "XID {}",
            e.xid
        );
    }
}

fn probe(
    action: Option<RecoveryAction>,
    pages: Option<bool>,
    pending: Option<bool>,
    failure: Option<bool>,
) -> Probe {
    Probe {
        recovery_action: action,
        retired_pages_pending: pages,
        remapped_rows_pending: pending,
        remapped_rows_failure: failure,
    }
}

#[test]
fn verdicts_from_probes() {
    use RecoveryAction::{DrainAndReset, DrainP2P, GpuReset, NodeReboot, Other};
    let none = Some(RecoveryAction::None);
    // (case, class, probe, None = fit, or a part of the reason)
    let cases: Vec<(&str, RecoveryClass, Probe, Option<&str>)> = vec![
        (
            "all clear",
            Reset,
            probe(none, Some(false), Some(false), Some(false)),
            None,
        ),
        (
            "action none overrides a reset class",
            Reset,
            probe(none, None, None, None),
            None,
        ),
        (
            "old driver, application XID",
            App,
            probe(None, None, None, None),
            None,
        ),
        (
            "old driver, reset XID",
            Reset,
            probe(None, Some(false), Some(false), Some(false)),
            Some("driver is too old to report NVML's recovery action"),
        ),
        (
            "gpuReset",
            App,
            probe(Some(GpuReset), None, None, None),
            Some(
                "GPU recovery action gpuReset pending: stop the GPU's processes and reset the GPU",
            ),
        ),
        (
            "nodeReboot",
            App,
            probe(Some(NodeReboot), None, None, None),
            Some("nodeReboot pending: reboot the node"),
        ),
        (
            "drainP2P",
            App,
            probe(Some(DrainP2P), None, None, None),
            Some("drainP2P pending: stop the processes using peer-to-peer"),
        ),
        (
            "drainAndReset",
            App,
            probe(Some(DrainAndReset), None, None, None),
            Some("drainAndReset pending: stop peer-to-peer"),
        ),
        (
            "IMEX domain",
            App,
            probe(Some(Other(5)), None, None, None),
            Some("action 5 pending: recover the IMEX domain"),
        ),
        (
            "unknown action",
            App,
            probe(Some(Other(42)), None, None, None),
            Some("action 42 pending: see NVIDIA's"),
        ),
        (
            "retired pages pending",
            App,
            probe(none, Some(true), None, None),
            Some("retired memory pages pending"),
        ),
        (
            "row remap pending",
            App,
            probe(none, None, Some(true), None),
            Some("row remapping pending: reset the GPU"),
        ),
        (
            "row remap failure",
            App,
            probe(none, None, None, Some(true)),
            Some("row remapping failed"),
        ),
        (
            "every reason is given",
            Reset,
            probe(Some(GpuReset), Some(true), Some(true), Some(true)),
            Some(
                "gpuReset pending: stop the GPU's processes and reset the GPU (nvidia-smi -r); retired memory pages pending: reset the GPU or reboot the node; memory row remapping pending: reset the GPU to apply it; memory row remapping failed",
            ),
        ),
        (
            "unknown memory state does not block",
            App,
            probe(none, None, None, None),
            None,
        ),
    ];
    for (case, class, p, want) in cases {
        match (verdict(class, &p), want) {
            (Verdict::Fit, None) => {}
            (Verdict::NotFit(reason), Some(part)) => {
                assert!(reason.contains(part), "{case}: {part:?} in {reason:?}");
            }
            (got, want) => panic!("{case}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn reset_outranks_app_when_classes_are_combined() {
    assert_eq!(App.max(Reset), Reset);
    assert_eq!([App, App].into_iter().max(), Some(App));
}
