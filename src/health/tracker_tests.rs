//! Table tests of recovery over event sequences (time as seconds after a base).

use std::time::{Duration, Instant};

use super::HealthTracker;

#[derive(Debug, Clone, Copy)]
enum Step {
    Event(&'static str, u64),
    NvmlFailed(u64),
    NvmlOk(u64),
    Tick(u64),
}

struct Case {
    name: &'static str,
    quiet: Option<u64>,
    /// Each step with the `changed` it must return.
    steps: &'static [(Step, bool)],
    healthy: &'static [(&'static str, bool)],
    next_deadline: Option<u64>,
}

const CASES: &[Case] = &[
    Case {
        name: "event then quiet period",
        quiet: Some(60),
        steps: &[
            (Step::Event("a", 0), true),
            (Step::Tick(59), false),
            (Step::Tick(60), true),
        ],
        healthy: &[("a", true), ("b", true)],
        next_deadline: None,
    },
    Case {
        name: "a new event restarts the quiet period",
        quiet: Some(60),
        steps: &[
            (Step::Event("a", 0), true),
            (Step::Event("a", 30), false),
            (Step::Tick(60), false),
        ],
        healthy: &[("a", false), ("b", true)],
        next_deadline: Some(90),
    },
    Case {
        name: "no quiet period: never recovers",
        quiet: None,
        steps: &[(Step::Event("a", 0), true), (Step::Tick(1_000_000), false)],
        healthy: &[("a", false)],
        next_deadline: None,
    },
    Case {
        name: "NVML failure marks all, clears on NVML ok",
        quiet: None,
        steps: &[
            (Step::NvmlFailed(0), true),
            (Step::NvmlFailed(5), false),
            (Step::NvmlOk(10), true),
        ],
        healthy: &[("a", true), ("b", true)],
        next_deadline: None,
    },
    Case {
        name: "own event outlives the NVML failure",
        quiet: Some(60),
        steps: &[
            (Step::Event("a", 0), true),
            (Step::NvmlFailed(10), true),
            (Step::NvmlOk(20), true),
        ],
        healthy: &[("a", false), ("b", true)],
        next_deadline: Some(60),
    },
    Case {
        name: "quiet period ends while NVML fails: unhealthy until NVML answers",
        quiet: Some(60),
        steps: &[
            (Step::Event("a", 0), true),
            (Step::NvmlFailed(10), true),
            (Step::Tick(70), false),
            (Step::NvmlOk(80), true),
        ],
        healthy: &[("a", true)],
        next_deadline: None,
    },
    Case {
        name: "event during an NVML failure changes nothing visible",
        quiet: Some(60),
        steps: &[
            (Step::NvmlFailed(0), true),
            (Step::Event("a", 5), false),
            (Step::NvmlOk(10), true),
        ],
        healthy: &[("a", false), ("b", true)],
        next_deadline: Some(65),
    },
    Case {
        name: "earliest deadline first",
        quiet: Some(60),
        steps: &[
            (Step::Event("a", 10), true),
            (Step::Event("b", 0), true),
            (Step::Tick(60), true),
        ],
        healthy: &[("a", false), ("b", true)],
        next_deadline: Some(70),
    },
];

#[test]
fn recovery_table() {
    let base = Instant::now();
    let at = |s: u64| base + Duration::from_secs(s);
    for case in CASES {
        let mut t = HealthTracker::new(case.quiet.map(Duration::from_secs));
        for (i, &(step, want)) in case.steps.iter().enumerate() {
            let changed = match step {
                Step::Event(d, s) => t.mark_unhealthy(d, at(s)),
                Step::NvmlFailed(s) => t.mark_all_unhealthy("nvml: GPU is lost", at(s)),
                Step::NvmlOk(s) => t.nvml_ok(at(s)),
                Step::Tick(s) => t.tick(at(s)),
            };
            assert_eq!(changed, want, "{}: step {i} {step:?}", case.name);
        }
        for &(device, want) in case.healthy {
            assert_eq!(t.is_healthy(device), want, "{}: {device}", case.name);
        }
        assert_eq!(
            t.next_deadline(),
            case.next_deadline.map(at),
            "{}",
            case.name
        );
    }
}

#[test]
fn nvml_failure_reason_is_kept_until_ok() {
    let now = Instant::now();
    let mut t = HealthTracker::new(None);
    t.mark_all_unhealthy("wait failed", now);
    assert_eq!(t.nvml_failure(), Some("wait failed"));
    assert!(!t.is_healthy("anything"));
    t.nvml_ok(now);
    assert_eq!(t.nvml_failure(), None);
}
