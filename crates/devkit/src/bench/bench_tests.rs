//! Tests of `bench::bench` (tables of cases).
use std::collections::HashSet;

use serde_json::json;

use super::*;

#[test]
fn lines_start_with_the_figure() {
    let cases = [
        (
            json!({"n": 3, "figure": "allocate", "callers": 16}),
            r#"{"figure":"allocate","callers":16,"n":3}"#,
        ),
        (
            json!({"skipped": "why \"not\"", "figure": "x"}),
            r#"{"figure":"x","skipped":"why \"not\""}"#,
        ),
        (json!({"a": 1}), r#"{"a":1}"#),
        (json!([1]), "[1]"),
    ];
    for (value, want) in cases {
        let got = render_line(&value);
        assert_eq!(got, want);
        assert_eq!(serde_json::from_str::<Value>(&got).unwrap(), value);
    }
}

#[test]
fn replicas_have_unique_kubelet_valid_ids() {
    let s = synthetic::replicated(100).unwrap();
    assert_eq!(s.list.devices.len(), 800);
    let ids: HashSet<&str> = s.list.devices.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids.len(), 800);
    assert!(ids.iter().all(|id| id.len() <= 63 && id.contains("::")));
    assert!(s.list.devices.iter().all(|d| d.topology.is_some()));
}
