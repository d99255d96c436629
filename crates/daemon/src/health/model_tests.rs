//! Table tests of device health over event sequences (time as seconds after
//! a base): marks, quiet periods, probes, faults and re-enumeration.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::{HealthModel, ProbeOutcome};
use crate::gpu::{EventKind, FaultKind, HealthEvent, Probe, RecoveryAction};
use crate::resources::{Device, MigPlacement};

fn whole(gpu: &str) -> Device {
    Device {
        id: gpu.to_string(),
        uuid: gpu.to_string(),
        index: "0".into(),
        gpu_uuid: gpu.to_string(),
        gpu_index: 0,
        mig: None,
        replica: None,
        numa_node: None,
        paths: Vec::new(),
    }
}

fn mig(gpu: &str, gi: u32, ci: u32) -> Device {
    Device {
        id: format!("MIG-{gpu}-{gi}-{ci}"),
        uuid: format!("MIG-{gpu}-{gi}-{ci}"),
        mig: Some(MigPlacement {
            gpu_instance_id: gi,
            compute_instance_id: ci,
        }),
        ..whole(gpu)
    }
}

#[derive(Debug, Clone, Copy)]
enum Out {
    Recovered,
    NotFit,
    Stale,
}

#[derive(Debug, Clone)]
enum Step {
    /// A critical event (XID, or 0 for double-bit ECC) on a GPU, with GI/CI.
    Event(&'static str, u64, Option<u32>, Option<u32>, u64),
    /// An inventory read: the GPUs that answered, and faults.
    Inventory(
        &'static [&'static str],
        &'static [(&'static str, Fault)],
        u64,
    ),
    /// The probes due at this time.
    Due(u64, &'static [&'static str]),
    /// A probe result and what it must do.
    Probed(&'static str, Answer, u64, Out),
    WatchFailed(bool),
    /// Devices and whether each must be healthy now.
    Healthy(&'static [(DeviceRef, bool)]),
    NextDeadline(Option<u64>),
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    Lost,
    Reset,
}

#[derive(Debug, Clone, Copy)]
enum Answer {
    /// Recovery action (None = unknown), retired pages pending.
    Fit(Option<RecoveryAction>, bool),
    Lost,
}

#[derive(Debug, Clone, Copy)]
enum DeviceRef {
    Whole(&'static str),
    Mig(&'static str, u32, u32),
}

struct Case {
    name: &'static str,
    quiet: Option<u64>,
    steps: &'static [Step],
}

const NONE: Option<RecoveryAction> = Some(RecoveryAction::None);
const RESET: Option<RecoveryAction> = Some(RecoveryAction::GpuReset);

const CASES: &[Case] = &[
    Case {
        name: "an app-class XID recovers after the quiet period and a passing probe",
        quiet: Some(60),
        steps: &[
            Step::Inventory(&["A", "B"], &[], 0),
            Step::Event("A", 94, None, None, 0),
            Step::Healthy(&[
                (DeviceRef::Whole("A"), false),
                (DeviceRef::Whole("B"), true),
            ]),
            Step::NextDeadline(Some(60)),
            Step::Due(59, &[]),
            Step::Due(60, &["A"]),
            Step::NextDeadline(None),
            Step::Probed("A", Answer::Fit(None, false), 60, Out::Recovered),
            Step::Healthy(&[(DeviceRef::Whole("A"), true)]),
        ],
    },
    Case {
        name: "XID 79 with a pending GPU reset stays unhealthy past the quiet period",
        quiet: Some(60),
        steps: &[
            Step::Inventory(&["A"], &[], 0),
            Step::Event("A", 79, None, None, 0),
            Step::Due(60, &["A"]),
            Step::Probed("A", Answer::Fit(RESET, false), 60, Out::NotFit),
            Step::Healthy(&[(DeviceRef::Whole("A"), false)]),
            Step::NextDeadline(Some(120)),
            Step::Due(119, &[]),
            Step::Due(120, &["A"]),
            Step::Probed("A", Answer::Fit(NONE, false), 120, Out::Recovered),
            Step::Healthy(&[(DeviceRef::Whole("A"), true)]),
        ],
    },
    Case {
        name: "a reset-class XID never recovers on time when the driver cannot say",
        quiet: Some(60),
        steps: &[
            Step::Inventory(&["A"], &[], 0),
            Step::Event("A", 79, None, None, 0),
            Step::Due(60, &["A"]),
            Step::Probed("A", Answer::Fit(None, false), 60, Out::NotFit),
            Step::Due(120, &["A"]),
            Step::Probed("A", Answer::Fit(None, false), 120, Out::NotFit),
            Step::Healthy(&[(DeviceRef::Whole("A"), false)]),
        ],
    },
    Case {
        name: "a reset-class mark clears when the GPU is re-enumerated",
        quiet: Some(60),
        steps: &[
            Step::Inventory(&["A", "B"], &[], 0),
            Step::Event("A", 79, None, None, 0),
            Step::Inventory(&["B"], &[("A", Fault::Lost)], 10),
            Step::Healthy(&[
                (DeviceRef::Whole("A"), false),
                (DeviceRef::Whole("B"), true),
            ]),
            Step::Inventory(&["A", "B"], &[], 20),
            Step::Healthy(&[(DeviceRef::Whole("A"), true)]),
        ],
    },
    Case {
        name: "an app-class mark survives re-enumeration until its own probe",
        quiet: Some(60),
        steps: &[
            Step::Inventory(&["A"], &[], 0),
            Step::Event("A", 94, None, None, 0),
            Step::Inventory(&[], &[("A", Fault::Lost)], 10),
            Step::Inventory(&["A"], &[], 20),
            Step::Healthy(&[(DeviceRef::Whole("A"), false)]),
        ],
    },
    Case {
        name: "pending page retirement keeps even an app-class mark",
        quiet: Some(60),
        steps: &[
            Step::Inventory(&["A"], &[], 0),
            Step::Event("A", 94, None, None, 0),
            Step::Due(60, &["A"]),
            Step::Probed("A", Answer::Fit(NONE, true), 60, Out::NotFit),
            Step::Healthy(&[(DeviceRef::Whole("A"), false)]),
        ],
    },
    Case {
        name: "a lost GPU at probe time stays unhealthy",
        quiet: Some(60),
        steps: &[
            Step::Inventory(&["A"], &[], 0),
            Step::Event("A", 94, None, None, 0),
            Step::Due(60, &["A"]),
            Step::Probed("A", Answer::Lost, 60, Out::NotFit),
            Step::Healthy(&[(DeviceRef::Whole("A"), false)]),
        ],
    },
    Case {
        name: "an event during the probe restarts the quiet period and the probe is stale",
        quiet: Some(60),
        steps: &[
            Step::Inventory(&["A"], &[], 0),
            Step::Event("A", 94, None, None, 0),
            Step::Due(60, &["A"]),
            Step::Event("A", 94, None, None, 61),
            Step::Probed("A", Answer::Fit(NONE, false), 62, Out::Stale),
            Step::Healthy(&[(DeviceRef::Whole("A"), false)]),
            Step::NextDeadline(Some(121)),
        ],
    },
    Case {
        name: "a fault clearing on the GPU probes a not-fit mark again at once",
        quiet: Some(60),
        steps: &[
            Step::Inventory(&["A"], &[], 0),
            Step::Event("A", 79, None, None, 0),
            Step::Inventory(&["A"], &[("A", Fault::Reset)], 1),
            Step::Due(60, &["A"]),
            Step::Probed("A", Answer::Fit(RESET, false), 60, Out::NotFit),
            Step::Inventory(&["A"], &[], 70),
            Step::NextDeadline(Some(70)),
            Step::Due(70, &["A"]),
            Step::Probed("A", Answer::Fit(NONE, false), 70, Out::Recovered),
            Step::Healthy(&[(DeviceRef::Whole("A"), true)]),
        ],
    },
    Case {
        name: "a MIG-level event marks only the matching MIG device, and the GPU advertised whole",
        quiet: Some(60),
        steps: &[
            Step::Inventory(&["A"], &[], 0),
            Step::Event("A", 94, Some(2), Some(0), 0),
            Step::Healthy(&[
                (DeviceRef::Mig("A", 2, 0), false),
                (DeviceRef::Mig("A", 1, 0), true),
                (DeviceRef::Whole("A"), false),
            ]),
        ],
    },
    Case {
        name: "a GPU fault affects its devices only, and clears with the fault",
        quiet: Some(60),
        steps: &[
            Step::Inventory(&["A", "B"], &[("A", Fault::Reset)], 0),
            Step::Healthy(&[
                (DeviceRef::Whole("A"), false),
                (DeviceRef::Mig("A", 1, 0), false),
                (DeviceRef::Whole("B"), true),
            ]),
            Step::Inventory(&["A", "B"], &[], 1),
            Step::Healthy(&[(DeviceRef::Whole("A"), true)]),
        ],
    },
    Case {
        name: "a node-wide watch failure makes every device unhealthy until it works again",
        quiet: Some(60),
        steps: &[
            Step::Inventory(&["A", "B"], &[], 0),
            Step::WatchFailed(true),
            Step::Healthy(&[
                (DeviceRef::Whole("A"), false),
                (DeviceRef::Whole("B"), false),
            ]),
            Step::WatchFailed(false),
            Step::Healthy(&[(DeviceRef::Whole("A"), true), (DeviceRef::Whole("B"), true)]),
        ],
    },
    Case {
        name: "quiet period never: no probe, no recovery",
        quiet: None,
        steps: &[
            Step::Inventory(&["A"], &[], 0),
            Step::Event("A", 94, None, None, 0),
            Step::NextDeadline(None),
            Step::Due(100_000, &[]),
            Step::Healthy(&[(DeviceRef::Whole("A"), false)]),
        ],
    },
    Case {
        name: "a double-bit ECC error counts as reset class",
        quiet: Some(60),
        steps: &[
            Step::Inventory(&["A"], &[], 0),
            Step::Event("A", 0, None, None, 0),
            Step::Due(60, &["A"]),
            Step::Probed("A", Answer::Fit(None, false), 60, Out::NotFit),
        ],
    },
];

fn device(r: DeviceRef) -> Device {
    match r {
        DeviceRef::Whole(g) => whole(g),
        DeviceRef::Mig(g, gi, ci) => mig(g, gi, ci),
    }
}

#[test]
fn health_over_event_sequences() {
    let base = Instant::now();
    let at = |s: u64| base + Duration::from_secs(s);
    for case in CASES {
        let mut m = HealthModel::new(case.quiet.map(Duration::from_secs));
        for (i, step) in case.steps.iter().enumerate() {
            let ctx = format!("{}: step {i} {step:?}", case.name);
            match step {
                Step::Event(gpu, xid, gi, ci, t) => {
                    let kind = if *xid == 0 {
                        EventKind::DoubleBitEcc
                    } else {
                        EventKind::Xid(*xid)
                    };
                    let event = HealthEvent {
                        gpu_uuid: gpu.to_string(),
                        kind,
                        gpu_instance_id: *gi,
                        compute_instance_id: *ci,
                    };
                    m.mark(&event, at(*t));
                }
                Step::Inventory(present, faults, t) => {
                    let present: BTreeSet<String> = present.iter().map(|s| s.to_string()).collect();
                    let faults: BTreeMap<String, FaultKind> = faults
                        .iter()
                        .map(|(g, f)| {
                            let kind = match f {
                                Fault::Lost => FaultKind::Lost,
                                Fault::Reset => FaultKind::NeedsRecovery(RecoveryAction::GpuReset),
                            };
                            (g.to_string(), kind)
                        })
                        .collect();
                    m.set_inventory(present, faults, at(*t));
                }
                Step::Due(t, want) => {
                    let got = m.due_probes(at(*t));
                    assert_eq!(got, want.to_vec(), "{ctx}");
                }
                Step::Probed(gpu, answer, t, want) => {
                    let result = match answer {
                        Answer::Fit(action, pending) => Ok(Probe {
                            recovery_action: *action,
                            retired_pages_pending: Some(*pending),
                            remapped_rows_pending: Some(false),
                            remapped_rows_failure: Some(false),
                        }),
                        Answer::Lost => Err(FaultKind::Lost),
                    };
                    let got = m.probed(gpu, &result, at(*t));
                    let ok = matches!(
                        (want, &got),
                        (Out::Recovered, ProbeOutcome::Recovered(_))
                            | (Out::NotFit, ProbeOutcome::NotFit { .. })
                            | (Out::Stale, ProbeOutcome::Stale)
                    );
                    assert!(ok, "{ctx}: got {got:?}");
                }
                Step::WatchFailed(failed) => {
                    m.set_watch_failure(failed.then(|| "event wait failed".to_string()))
                }
                Step::Healthy(want) => {
                    for (r, healthy) in *want {
                        assert_eq!(m.is_healthy(&device(*r)), *healthy, "{ctx}: {r:?}");
                    }
                }
                Step::NextDeadline(want) => {
                    assert_eq!(m.next_deadline(), want.map(at), "{ctx}");
                }
            }
        }
    }
}

#[test]
fn a_repeated_not_fit_reason_is_reported_once() {
    let t0 = Instant::now();
    let mut m = HealthModel::new(Some(Duration::from_secs(1)));
    let event = HealthEvent {
        gpu_uuid: "A".into(),
        kind: EventKind::Xid(79),
        gpu_instance_id: None,
        compute_instance_id: None,
    };
    m.mark(&event, t0);
    let reset = Ok(Probe {
        recovery_action: RESET,
        ..Probe::default()
    });
    let mut firsts = Vec::new();
    for s in 1..=3 {
        let now = t0 + Duration::from_secs(s);
        assert_eq!(m.due_probes(now), vec!["A".to_string()]);
        match m.probed("A", &reset, now) {
            ProbeOutcome::NotFit { first, .. } => firsts.push(first),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(firsts, [true, false, false]);
}
