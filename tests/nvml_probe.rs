//! Probes and per-GPU fitness keys on both backends from the same node file:
//! the NVML backend on the fake driver answers every probe (and reports every
//! inventory fault) exactly as the simulated backend does, before and after
//! the file is edited. Each scenario runs in its own child process (`child_*`).

mod nvml_support;

use gpu_device_plugin::gpu::nvml::Nvml;
use gpu_device_plugin::gpu::simulated::Simulated;
use gpu_device_plugin::gpu::{Backend, FaultKind, Probe, RecoveryAction};
use nvml_support::{Paths, Stage, run_child};

const UUIDS: [&str; 6] = [
    "GPU-00000000-1111-2222-3333-000000000000",
    "GPU-00000000-1111-2222-3333-000000000001",
    "GPU-00000000-1111-2222-3333-000000000002",
    "GPU-00000000-1111-2222-3333-000000000003",
    "GPU-00000000-1111-2222-3333-000000000004",
    "GPU-00000000-1111-2222-3333-000000000005",
];
const UNKNOWN: &str = "GPU-ffffffff-ffff-ffff-ffff-ffffffffffff";

/// Six A100s, `keys[i]` added to GPU i; GPU 5 is MIG-enabled with a MIG device.
fn node(keys: [&str; 6]) -> String {
    let mut text = String::from("driverVersion: \"570.86.15\"\ngpus:\n");
    for (i, uuid) in UUIDS.iter().enumerate() {
        text.push_str(&format!(
            "  - {{index: {i}, uuid: {uuid}, name: NVIDIA A100-SXM4-40GB, memoryMiB: 40960, \
             pciBusId: \"0000:1{i}:00.0\", computeCapability: \"8.0\"{}{}}}\n",
            if i == 5 {
                ", migEnabled: true, migDevices: [{uuid: MIG-00000000-1111-2222-3333-000000000050, \
                 profile: 1g.5gb, gpuInstanceId: 7, computeInstanceId: 0, memoryMiB: 4864}]"
            } else {
                ""
            },
            keys[i]
        ));
    }
    text
}

const HEALTHY: Probe = Probe {
    recovery_action: Some(RecoveryAction::None),
    retired_pages_pending: Some(false),
    remapped_rows_pending: Some(false),
    remapped_rows_failure: Some(false),
};

/// Keys added to each GPU, and what a probe of each GPU must answer then.
type Case = ([&'static str; 6], [Result<Probe, FaultKind>; 6]);

/// Each node file and what a probe of each GPU must answer on it.
fn cases() -> Vec<Case> {
    let probe = |f: fn(&mut Probe)| {
        let mut p = HEALTHY;
        f(&mut p);
        Ok(p)
    };
    let mig = probe(|p| (p.remapped_rows_pending, p.remapped_rows_failure) = (None, None));
    let action = |a| {
        Ok(Probe {
            recovery_action: Some(a),
            ..HEALTHY
        })
    };
    vec![
        (
            ["", "", "", "", "", ""],
            [
                Ok(HEALTHY),
                Ok(HEALTHY),
                Ok(HEALTHY),
                Ok(HEALTHY),
                Ok(HEALTHY),
                mig.clone(),
            ],
        ),
        (
            [
                ", recoveryAction: gpuReset",
                ", recoveryAction: unsupported, retiredPagesPending: true",
                ", remappedRowsPending: true, remappedRowsFailure: true",
                ", lost: true",
                ", recoveryAction: drainP2P",
                ", remappedRowsPending: true, recoveryAction: nodeReboot",
            ],
            [
                action(RecoveryAction::GpuReset),
                probe(|p| (p.recovery_action, p.retired_pages_pending) = (None, Some(true))),
                probe(|p| {
                    (p.remapped_rows_pending, p.remapped_rows_failure) = (Some(true), Some(true))
                }),
                Err(FaultKind::Lost),
                action(RecoveryAction::DrainP2P),
                Ok(Probe {
                    recovery_action: Some(RecoveryAction::NodeReboot),
                    ..mig.clone().unwrap()
                }),
            ],
        ),
        (
            [
                ", recoveryAction: drainAndReset",
                ", recoveryAction: none",
                ", remappedRowsFailure: true",
                "",
                ", lost: true",
                ", lost: true",
            ],
            [
                action(RecoveryAction::DrainAndReset),
                Ok(HEALTHY),
                probe(|p| p.remapped_rows_failure = Some(true)),
                Ok(HEALTHY),
                Err(FaultKind::Lost),
                Err(FaultKind::Lost),
            ],
        ),
    ]
}

#[test]
fn both_backends_answer_probes_and_faults_alike_across_edits() {
    run_child("child_probes_alike", &Stage::new(&node([""; 6])), &[]);
}

#[test]
#[ignore = "child process of both_backends_answer_probes_and_faults_alike_across_edits"]
fn child_probes_alike() {
    let paths = Paths::from_env();
    let nvml = Nvml::new(paths.options()).unwrap();
    let sim = Simulated::from_file(paths.node());
    // One NVML session across every edit: each probe reads the file as it is now.
    for (keys, want) in cases() {
        paths.write_node(&node(keys));
        for (uuid, want) in UUIDS.iter().zip(want) {
            let got = nvml.probe(uuid);
            assert_eq!(got, want, "NVML probe of {uuid} with {keys:?}");
            assert_eq!(
                sim.probe(uuid),
                want,
                "simulated probe of {uuid} with {keys:?}"
            );
        }
        let (got, sim_got) = (nvml.probe(UNKNOWN), sim.probe(UNKNOWN));
        assert!(
            matches!(got, Err(FaultKind::Failed(ref m)) if m.contains("nvmlDeviceGetHandleByUUID")),
            "{got:?}"
        );
        assert!(matches!(sim_got, Err(FaultKind::Failed(_))), "{sim_got:?}");
        assert_eq!(
            nvml.inventory().unwrap(),
            sim.inventory().unwrap(),
            "inventory with {keys:?}"
        );
    }
}

#[test]
fn probe_failures_are_per_gpu_and_name_the_call() {
    let cases = [
        ("nvmlDeviceGetHandleByUUID", "15", "lost"),
        ("nvmlDeviceGetFieldValues", "15", "lost"),
        ("nvmlDeviceGetRetiredPagesPendingStatus", "15", "lost"),
        ("nvmlDeviceGetRemappedRows", "15", "lost"),
        ("nvmlDeviceGetRemappedRows", "16", "reset"),
        ("nvmlDeviceGetFieldValues", "999", "failed"),
        ("nvmlDeviceGetRetiredPagesPendingStatus", "999", "failed"),
        ("nvmlDeviceGetRemappedRows", "999", "failed"),
        // A driver without the question: unknown, not a failure.
        ("nvmlDeviceGetRetiredPagesPendingStatus", "3", "unsupported"),
    ];
    for (call, code, expect) in cases {
        let env = [
            ("FAKE_NVML_LOST_GPU", "2"),
            ("FAKE_NVML_LOST_CALL", call),
            ("FAKE_NVML_LOST_CODE", code),
            ("EXPECT", expect),
        ];
        run_child("child_probe_fails", &Stage::new(&node([""; 6])), &env);
    }
}

#[test]
#[ignore = "child process of probe_failures_are_per_gpu_and_name_the_call"]
fn child_probe_fails() {
    let call = std::env::var("FAKE_NVML_LOST_CALL").unwrap();
    let nvml = Nvml::new(Paths::from_env().options()).unwrap();
    let got = nvml.probe(UUIDS[2]);
    match (std::env::var("EXPECT").unwrap().as_str(), &got) {
        ("lost", Err(FaultKind::Lost)) => {}
        ("reset", Err(FaultKind::NeedsRecovery(RecoveryAction::GpuReset))) => {}
        ("failed", Err(FaultKind::Failed(message))) => {
            assert!(message.contains(&call), "{call}: {message}");
        }
        ("unsupported", Ok(probe)) => assert_eq!(
            *probe,
            Probe {
                retired_pages_pending: None,
                ..HEALTHY
            }
        ),
        (expect, got) => panic!("{call}: expected {expect}, got {got:?}"),
    }
    for uuid in [UUIDS[0], UUIDS[1], UUIDS[3]] {
        assert_eq!(nvml.probe(uuid), Ok(HEALTHY), "{call}: other GPUs answer");
    }
}
