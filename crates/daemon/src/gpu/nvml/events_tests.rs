//! Tests of `gpu::nvml::events` (tables of cases).
use super::*;

#[test]
fn nvml_events_map_to_health_events() {
    const XID: u64 = 8;
    const DBE: u64 = 2;
    const SBE: u64 = 1;
    const CLOCK: u64 = 16;
    let ev = |kind, gi, ci| {
        Some(HealthEvent {
            gpu_uuid: "GPU-a".into(),
            kind,
            gpu_instance_id: gi,
            compute_instance_id: ci,
        })
    };
    let cases = [
        (
            XID,
            79,
            NO_INSTANCE,
            NO_INSTANCE,
            ev(EventKind::Xid(79), None, None),
        ),
        (XID, 94, 7, 0, ev(EventKind::Xid(94), Some(7), Some(0))),
        (
            XID,
            48,
            3,
            NO_INSTANCE,
            ev(EventKind::Xid(48), Some(3), None),
        ),
        (
            XID,
            999,
            NO_INSTANCE,
            NO_INSTANCE,
            ev(EventKind::Xid(999), None, None),
        ),
        (
            DBE,
            0,
            NO_INSTANCE,
            NO_INSTANCE,
            ev(EventKind::DoubleBitEcc, None, None),
        ),
        (SBE, 0, NO_INSTANCE, NO_INSTANCE, None),
        (CLOCK, 0, NO_INSTANCE, NO_INSTANCE, None),
    ];
    for (event_type, data, gi, ci, want) in cases {
        assert_eq!(
            health_event("GPU-a", event_type, data, gi, ci),
            want,
            "type {event_type} data {data}"
        );
    }
}
