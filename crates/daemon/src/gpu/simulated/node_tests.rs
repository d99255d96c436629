//! Tests of `gpu::simulated::node`: the per-GPU fitness keys as faults and
//! probe answers, lost GPUs and their links, invalid keys (tables of cases).
use super::*;

const A: &str = "GPU-aaaaaaaa-0000-0000-0000-000000000000";
const B: &str = "GPU-bbbbbbbb-0000-0000-0000-000000000000";
const C: &str = "GPU-cccccccc-0000-0000-0000-000000000000";

/// Three linked GPUs; `extra[i]` is appended to GPU i's entry.
fn node_text(extra: [&str; 3]) -> String {
    let gpu = |i: usize, uuid: &str, peers: [u32; 2]| {
        format!(
            "  - {{index: {i}, uuid: {uuid}, name: NVIDIA A100-SXM4-40GB, memoryMiB: 40960, \
             pciBusId: \"0000:0{i}:00.0\", nvlinks: [{{peer: {}, links: 2}}, {{peer: {}, links: 2}}]{}}}\n",
            peers[0], peers[1], extra[i]
        )
    };
    format!(
        "gpus:\n{}{}{}",
        gpu(0, A, [1, 2]),
        gpu(1, B, [0, 2]),
        gpu(2, C, [0, 1])
    )
}

fn parse(extra: [&str; 3]) -> Node {
    parse_node(&node_text(extra), "test").unwrap()
}

fn fault(index: u32, uuid: Option<&str>, kind: FaultKind) -> GpuFault {
    GpuFault {
        index,
        uuid: uuid.map(str::to_string),
        kind,
    }
}

#[test]
fn fitness_keys_give_faults_and_probe_answers() {
    let healthy = Probe {
        recovery_action: Some(RecoveryAction::None),
        retired_pages_pending: Some(false),
        remapped_rows_pending: Some(false),
        remapped_rows_failure: Some(false),
    };
    let with = |f: fn(&mut Probe)| {
        let mut p = healthy;
        f(&mut p);
        Ok(p)
    };
    let actions = [
        ("none", None),
        ("gpuReset", Some(RecoveryAction::GpuReset)),
        ("nodeReboot", Some(RecoveryAction::NodeReboot)),
        ("drainP2P", Some(RecoveryAction::DrainP2P)),
        ("drainAndReset", Some(RecoveryAction::DrainAndReset)),
    ];
    for (name, action) in actions {
        let node = parse(["", &format!(", recoveryAction: {name}"), ""]);
        let faults: Vec<_> = action
            .map(|a| fault(1, Some(B), FaultKind::NeedsRecovery(a)))
            .into_iter()
            .collect();
        assert_eq!(node.inventory.faults, faults, "{name}");
        assert_eq!(node.inventory.gpus.len(), 3, "{name}: the GPU answers");
        let want = Probe {
            recovery_action: Some(action.unwrap_or(RecoveryAction::None)),
            ..healthy
        };
        assert_eq!(probe_node(&node, B), Ok(want), "{name}");
    }
    let cases: [(&str, Result<Probe, FaultKind>); 6] = [
        ("", Ok(healthy)),
        (
            ", recoveryAction: unsupported",
            with(|p| p.recovery_action = None),
        ),
        (
            ", retiredPagesPending: true",
            with(|p| p.retired_pages_pending = Some(true)),
        ),
        (
            ", remappedRowsPending: true",
            with(|p| p.remapped_rows_pending = Some(true)),
        ),
        (
            ", remappedRowsFailure: true",
            with(|p| p.remapped_rows_failure = Some(true)),
        ),
        (
            ", lost: true, recoveryAction: gpuReset",
            Err(FaultKind::Lost),
        ),
    ];
    for (extra, want) in cases {
        let node = parse(["", extra, ""]);
        assert_eq!(probe_node(&node, B), want, "{extra:?}");
        assert_eq!(
            probe_node(&node, A),
            Ok(healthy),
            "{extra:?}: others unaffected"
        );
    }
}

#[test]
fn a_lost_gpu_is_only_a_fault_and_links_to_it_are_gone() {
    let node = parse(["", ", lost: true, xids: [79]", ""]);
    let inventory = &node.inventory;
    assert_eq!(inventory.faults, [fault(1, None, FaultKind::Lost)]);
    let indices: Vec<u32> = inventory.gpus.iter().map(|g| g.index).collect();
    assert_eq!(indices, [0, 2]);
    assert_eq!(inventory.gpus[0].nvlinks, [NvLink { peer: 2, links: 2 }]);
    assert_eq!(inventory.gpus[1].nvlinks, [NvLink { peer: 0, links: 2 }]);
    // A lost GPU raises no events.
    let before = parse(["", ", lost: true", ""]);
    let all = HashSet::from([A, B, C]);
    assert!(new_events(&before, &node, &all).is_empty());
}

#[test]
fn faults_are_in_index_order() {
    let node = parse([
        ", recoveryAction: nodeReboot",
        ", lost: true",
        ", lost: true",
    ]);
    assert_eq!(
        node.inventory.faults,
        [
            fault(
                0,
                Some(A),
                FaultKind::NeedsRecovery(RecoveryAction::NodeReboot)
            ),
            fault(1, None, FaultKind::Lost),
            fault(2, None, FaultKind::Lost),
        ]
    );
    assert!(node.inventory.gpus[0].nvlinks.is_empty());
}

#[test]
fn row_remapping_is_not_reported_on_a_gpu_with_mig_devices() {
    let text = "gpus:\n  - {index: 0, uuid: GPU-m, name: NVIDIA A100-SXM4-40GB, memoryMiB: 40960, \
                pciBusId: \"0000:07:00.0\", migEnabled: true, remappedRowsPending: true, \
                migDevices: [{uuid: MIG-1, profile: 1g.5gb, gpuInstanceId: 7, computeInstanceId: 0, memoryMiB: 4864}]}\n";
    let node = parse_node(text, "test").unwrap();
    let probe = probe_node(&node, "GPU-m").unwrap();
    assert_eq!(probe.remapped_rows_pending, None);
    assert_eq!(probe.remapped_rows_failure, None);
    assert_eq!(probe.retired_pages_pending, Some(false));
    assert!(matches!(
        probe_node(&node, "MIG-1"),
        Err(FaultKind::Failed(_))
    ));
}

#[test]
fn invalid_fitness_keys_are_refused() {
    let cases = [
        (", recoveryAction: reboot", "reboot"),
        (", lost: maybe", "lost"),
        (", recoveryAction: 1", "recoveryAction"),
    ];
    for (extra, needle) in cases {
        let err = parse_node(&node_text(["", extra, ""]), "node.yaml").unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with("invalid simulated node file node.yaml"),
            "{message}"
        );
        assert!(message.contains(needle), "{extra}: {message}");
    }
}

#[test]
fn an_unknown_uuid_is_a_failed_probe() {
    let node = parse(["", "", ""]);
    let Err(FaultKind::Failed(message)) = probe_node(&node, "GPU-nope") else {
        panic!("an unknown UUID must fail");
    };
    assert!(message.contains("GPU-nope"), "{message}");
}

#[test]
fn the_usage_map_answers_usage_reads() {
    let node = parse([
        ", usage: {gpuUtil: 30, memoryUsedMiB: 1024, powerW: 99.5}",
        "",
        ", lost: true, usage: {gpuUtil: 1}",
    ]);
    let a = usage_node(&node, A).unwrap();
    assert_eq!(a.gpu_util_percent, Some(30));
    assert_eq!(a.memory_used_bytes, Some(1024 * 1024 * 1024));
    assert_eq!(a.memory_free_bytes, Some((40960 - 1024) * 1024 * 1024));
    assert_eq!(a.power_mw, Some(99_500));
    assert_eq!(
        (a.memory_util_percent, a.temperature_c, a.sm_clock_mhz),
        (None, None, None)
    );
    // No map: nothing is supported.
    assert_eq!(usage_node(&node, B).unwrap(), crate::gpu::Usage::default());
    assert_eq!(usage_node(&node, C), Err(FaultKind::Lost));
    assert!(matches!(
        usage_node(&node, "GPU-nope"),
        Err(FaultKind::Failed(_))
    ));
}

#[test]
fn invalid_usage_values_are_refused() {
    let cases = [
        (", usage: {gpuUtil: 101}", "gpuUtil"),
        (", usage: {memoryUsedMiB: 50000}", "memoryUsedMiB"),
        (", usage: {powerW: -1}", "powerW"),
        (", usage: {fanSpeed: 3}", "fanSpeed"),
    ];
    for (extra, needle) in cases {
        let err = parse_node(&node_text([extra, "", ""]), "node.yaml").unwrap_err();
        assert!(err.to_string().contains(needle), "{extra}: {err}");
    }
}
