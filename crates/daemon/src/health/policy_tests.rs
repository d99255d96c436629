//! Table tests of the XID policy (every vector of reference §6) and of which
//! devices an event hits.

use super::{XidPolicy, affected_devices, parse_xid_list};
use crate::gpu::{EventKind, HealthEvent};
use crate::resources::{Device, MigPlacement};

#[test]
fn parses_lists_like_nvidia() {
    let cases: [(&str, &[u64]); 15] = [
        ("", &[]),
        (",", &[]),
        ("not-an-int", &[]),
        ("68", &[68]),
        ("-68", &[]),
        ("68  ", &[68]),
        ("68,", &[68]),
        (",68", &[68]),
        ("68,67", &[67, 68]),
        ("68,not-an-int,67", &[67, 68]),
        ("+68", &[]),
        ("all", &[0]),
        ("XIDS", &[0]),
        ("13, all ,555", &[0]),
        ("99999999999999999999", &[]),
    ];
    for (input, want) in cases {
        assert_eq!(parse_xid_list(input), want, "{input:?}");
    }
}

#[test]
fn disable_all_disables_everything() {
    let p = XidPolicy::from_env_values(Some("all"), None);
    let keys: Vec<(u64, bool)> = p.entries().iter().map(|(k, v)| (*k, *v)).collect();
    let want: Vec<(u64, bool)> = [0, 13, 31, 43, 45, 68, 109]
        .iter()
        .map(|&k| (k, true))
        .collect();
    assert_eq!(keys, want);
    assert!(p.checks_disabled());
    assert!(p.is_disabled(555));
}

#[test]
fn enable_all_enables_everything() {
    let p = XidPolicy::from_env_values(None, Some("all"));
    assert_eq!(p.entries().get(&0), Some(&false));
    assert!(!p.checks_disabled());
    assert!(!p.is_disabled(13));
    assert!(!p.is_disabled(555));
}

#[test]
fn enable_overrides_disable() {
    let p = XidPolicy::from_env_values(Some("11"), Some("11"));
    assert!(!p.is_disabled(11));
    assert!(!p.is_disabled(555));
}

#[test]
fn is_critical_table() {
    use EventKind::{DoubleBitEcc, Xid};
    // (DP_DISABLE_HEALTHCHECKS, DP_ENABLE_HEALTHCHECKS, event, critical)
    let cases: [(Option<&str>, Option<&str>, EventKind, bool); 12] = [
        (None, None, Xid(79), true),
        (None, None, Xid(48), true),
        (None, None, Xid(13), false),
        (None, None, Xid(109), false),
        (None, None, DoubleBitEcc, true),
        (Some("79,94"), None, Xid(94), false),
        (Some("79,94"), None, Xid(48), true),
        (None, Some("13"), Xid(13), true),
        (Some("xids"), None, DoubleBitEcc, false),
        // NVIDIA quirk: enabling specific XIDs does not undo "all".
        (Some("all"), Some("79"), Xid(79), false),
        (Some("all"), Some("all"), Xid(13), true),
        // "0" lands on the all key, as in NVIDIA's map.
        (Some("0"), None, Xid(79), false),
    ];
    for (disable, enable, kind, want) in cases {
        let p = XidPolicy::from_env_values(disable, enable);
        assert_eq!(p.is_critical(kind), want, "{disable:?} {enable:?} {kind:?}");
    }
}

fn replica(gpu: &str, n: u32) -> Device {
    Device {
        id: format!("{gpu}::{n}"),
        uuid: gpu.to_string(),
        index: "0".into(),
        gpu_uuid: gpu.to_string(),
        gpu_index: 0,
        mig: None,
        replica: Some(n),
        numa_node: None,
        paths: Vec::new(),
    }
}

fn mig(gpu: &str, gi: u32, ci: u32) -> Device {
    Device {
        id: format!("MIG-{gi}-{ci}"),
        uuid: format!("MIG-{gi}-{ci}"),
        index: "1:0".into(),
        gpu_uuid: gpu.to_string(),
        gpu_index: 1,
        mig: Some(MigPlacement {
            gpu_instance_id: gi,
            compute_instance_id: ci,
        }),
        replica: None,
        numa_node: None,
        paths: Vec::new(),
    }
}

#[test]
fn affected_devices_table() {
    let devices = vec![
        replica("GPU-A", 0),
        replica("GPU-A", 1),
        replica("GPU-A", 2),
        mig("GPU-B", 1, 0),
        mig("GPU-B", 2, 0),
        mig("GPU-B", 2, 1),
        replica("GPU-C", 0),
    ];
    let event = |gpu: &str, gi: Option<u32>, ci: Option<u32>| HealthEvent {
        gpu_uuid: gpu.to_string(),
        kind: EventKind::Xid(79),
        gpu_instance_id: gi,
        compute_instance_id: ci,
    };
    let cases: [(HealthEvent, &[usize]); 7] = [
        (event("GPU-A", None, None), &[0, 1, 2]),
        (event("GPU-B", Some(2), Some(1)), &[5]),
        (event("GPU-B", Some(2), None), &[4, 5]),
        (event("GPU-B", None, None), &[3, 4, 5]),
        (event("GPU-B", Some(9), Some(0)), &[]),
        (event("GPU-Z", None, None), &[]),
        // a MIG-level event on a GPU advertised whole still hits it
        (event("GPU-C", Some(1), Some(0)), &[6]),
    ];
    for (e, want) in cases {
        assert_eq!(affected_devices(&e, &devices), want, "{e:?}");
    }
}
