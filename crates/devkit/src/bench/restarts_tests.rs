//! Tests of `bench::restarts`: counting duplicates and lost resources in a
//! kubelet's view, and the figures of a series (tables of cases).

use std::time::Duration;

use super::*;
use crate::kubelet::{KubeletView, SeenResource};

fn view(seen: &[(&str, u64)]) -> KubeletView {
    let mut v = KubeletView::default();
    for (name, registrations) in seen {
        v.resources.insert(
            name.to_string(),
            SeenResource {
                registrations: *registrations,
                updates: *registrations,
                ..SeenResource::default()
            },
        );
    }
    v
}

/// (resource, registrations) seen → (duplicates, lost).
type Case = (&'static [(&'static str, u64)], (u64, usize));

#[test]
fn duplicates_and_lost_resources_per_kubelet_start() {
    let want = ["a", "b", "c"];
    let cases: [Case; 5] = [
        (&[("a", 1), ("b", 1), ("c", 1)], (0, 0)),
        // Old runtime on the MIG node: some resources twice.
        (&[("a", 2), ("b", 2), ("c", 1)], (2, 0)),
        (&[("a", 1), ("b", 1)], (0, 1)),
        // Seen but never registered at this start counts as lost.
        (&[("a", 1), ("b", 0), ("c", 3)], (2, 1)),
        (&[], (0, 3)),
    ];
    for (seen, expected) in cases {
        assert_eq!(account(&view(seen), &want), expected, "{seen:?}");
    }
}

fn ms(n: u64) -> Option<Duration> {
    Some(Duration::from_millis(n))
}

#[test]
fn a_series_reports_percentiles_and_counts() {
    let mut series: Vec<Restart> = (1..=100)
        .map(|i| Restart {
            registered: ms(i),
            listed: ms(i + 10),
            duplicates: 0,
            lost: 0,
        })
        .collect();
    series[3].duplicates = 5;
    series[7].duplicates = 1;
    series[9] = Restart {
        registered: None,
        listed: None,
        duplicates: 0,
        lost: 2,
    };
    let lines = report(&series);
    assert_eq!(lines.len(), 3);
    let (reg, listed, counts) = (&lines[0], &lines[1], &lines[2]);
    assert_eq!(reg["figure"], "kubelet_restart_all_registered");
    assert_eq!(reg["n"], 99);
    assert_eq!(reg["restarts"], 100);
    assert_eq!(reg["p50_ms"], 51.0);
    assert_eq!(
        reg["p99_ms"], 100.0,
        "nearest rank 99 of 99: 10 ms is missing"
    );
    assert_eq!(reg["max_ms"], 100.0);
    assert_eq!(listed["p99_ms"], 110.0);
    assert_eq!(counts["duplicate_registers"], 6);
    assert_eq!(counts["restarts_with_duplicates"], 2);
    assert_eq!(counts["lost_registrations"], 2);
    assert_eq!(counts["restarts_with_lost"], 1);
    assert_eq!(counts["restarts_not_listed"], 1);
}

#[test]
fn the_node_has_a_mig_device_of_every_profile_the_series_waits_for() {
    for r in RESOURCES.iter().filter(|r| r.contains("mig-")) {
        let profile = r
            .trim_start_matches("nvidia.com/mig-")
            .replace(".me", "+me");
        assert!(
            NODE.contains(&format!("profile: {profile},")),
            "{r}: no MIG device with profile {profile}"
        );
    }
    assert!(NODE.contains("migEnabled: true") && NODE.lines().any(|l| l.contains("numaNode: 1")));
}
