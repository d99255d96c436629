//! Tests of `inspect --pods`: the kubelet's assignments onto the sockets'
//! device lists, and how the table and JSON show them.
use super::*;
use crate::inspect::tests::report;
use crate::inspect::{Inspection, render_json, render_table};

fn assignment(resource: &str, id: &str, pod: &str) -> Assignment {
    Assignment {
        resource: resource.into(),
        device_id: id.into(),
        pod: pod.into(),
        namespace: "ns".into(),
        container: "c".into(),
    }
}

fn pods_of(sockets: &[SocketReport]) -> Vec<(String, String, Vec<String>)> {
    sockets
        .iter()
        .flat_map(|s| {
            s.devices.iter().map(|d| {
                (
                    s.socket.clone(),
                    d.id.clone(),
                    d.pods.iter().map(|p| p.pod.clone()).collect(),
                )
            })
        })
        .collect()
}

#[test]
fn assignments_land_on_the_socket_and_id_the_kubelet_named() {
    type Case<'a> = (
        &'a str,
        &'a [(&'a str, &'a str, &'a str)],
        &'a [(&'a str, &'a str, &'a [&'a str])],
        &'a [&'a str],
    );
    let cases: &[Case] = &[
        ("nobody holds anything", &[], &[], &[]),
        (
            "one whole GPU",
            &[("nvidia.com/gpu", "GPU-0", "A")],
            &[("nvidia-gpu.sock", "GPU-0", &["A"])],
            &[],
        ),
        (
            "two replicas of one GPU, each its own holder",
            &[
                ("nvidia.com/gpu", "GPU-1::1", "C"),
                ("nvidia.com/gpu", "GPU-1::0", "B"),
            ],
            &[
                ("nvidia-gpu.sock", "GPU-1::0", &["B"]),
                ("nvidia-gpu.sock", "GPU-1::1", &["C"]),
            ],
            &[],
        ),
        (
            "a MIG device on its own socket",
            &[("nvidia.com/mig-1g.10gb", "MIG-9", "M")],
            &[("nvidia-mig-1g.10gb.sock", "MIG-9", &["M"])],
            &[],
        ),
        (
            "the same ID under another resource does not match",
            &[("nvidia.com/gpu.shared", "GPU-0", "S")],
            &[],
            &["S"],
        ),
        (
            "a withdrawn device is reported, not dropped",
            &[("nvidia.com/gpu", "GPU-gone", "G")],
            &[],
            &["G"],
        ),
    ];
    for (name, given, want_held, want_unmatched) in cases {
        let mut sockets = vec![
            report("nvidia-gpu.sock", &["GPU-0", "GPU-1::0", "GPU-1::1"]),
            report("nvidia-mig-1g.10gb.sock", &["MIG-9"]),
        ];
        let assignments: Vec<Assignment> = given
            .iter()
            .map(|(r, id, pod)| assignment(r, id, pod))
            .collect();
        let unmatched = attach_holders(&mut sockets, &assignments);
        let held: Vec<(String, String, Vec<String>)> = pods_of(&sockets)
            .into_iter()
            .filter(|(_, _, pods)| !pods.is_empty())
            .collect();
        let want: Vec<(String, String, Vec<String>)> = want_held
            .iter()
            .map(|(s, id, pods)| {
                (
                    s.to_string(),
                    id.to_string(),
                    pods.iter().map(|p| p.to_string()).collect(),
                )
            })
            .collect();
        assert_eq!(held, want, "{name}");
        let got: Vec<&str> = unmatched.iter().map(|u| u.holder.pod.as_str()).collect();
        assert_eq!(&got, want_unmatched, "{name}");
    }
}

#[test]
fn two_containers_on_one_id_are_listed_once_each_in_order() {
    let mut sockets = vec![report("nvidia-gpu.sock", &["GPU-0"])];
    let a = assignment("nvidia.com/gpu", "GPU-0", "b");
    let b = assignment("nvidia.com/gpu", "GPU-0", "a");
    attach_holders(&mut sockets, &[a.clone(), b, a]);
    let pods: Vec<&str> = sockets[0].devices[0]
        .pods
        .iter()
        .map(|p| p.pod.as_str())
        .collect();
    assert_eq!(pods, ["a", "b"]);
}

#[test]
fn table_has_a_pods_column_and_json_a_pods_list() {
    let mut sockets = vec![report("nvidia-gpu.sock", &["GPU-0", "GPU-1"])];
    let unmatched = attach_holders(
        &mut sockets,
        &[
            assignment("nvidia.com/gpu", "GPU-0", "A"),
            assignment("nvidia.com/gpu", "GPU-9", "Z"),
        ],
    );
    let inspection = Inspection {
        directory: "/d".into(),
        sockets,
        unknown_ids: vec![],
        pods: Some(PodsReport {
            socket: "/pr.sock".into(),
            error: None,
            unmatched,
        }),
    };
    let table = render_table(&inspection);
    for want in [
        "ID     HEALTH     NUMA  PODS",
        "GPU-0  Healthy    -     ns/A/c",
        "GPU-1  Healthy    -     -",
        "held but not advertised: nvidia.com/gpu GPU-9 by ns/Z/c",
    ] {
        assert!(table.contains(want), "{want:?} not in:\n{table}");
    }
    let json: serde_json::Value = serde_json::from_str(&render_json(&inspection)).unwrap();
    assert_eq!(json["sockets"][0]["devices"][0]["pods"][0]["pod"], "A");
    assert!(json["sockets"][0]["devices"][1].get("pods").is_none());
    assert_eq!(json["pods"]["unmatched"][0]["id"], "GPU-9");
    assert!(!inspection.has_problems());
}

#[test]
fn a_failed_list_is_a_problem_and_is_shown() {
    let inspection = Inspection {
        pods: Some(PodsReport {
            socket: "/pr.sock".into(),
            error: Some("kubelet PodResources socket /pr.sock does not exist".into()),
            unmatched: vec![],
        }),
        ..Default::default()
    };
    assert!(inspection.has_problems());
    assert!(render_table(&inspection).contains("pod resources: kubelet PodResources socket"));
}

#[tokio::test]
async fn a_missing_socket_reports_the_error_and_no_holders() {
    let dir = tempfile::tempdir().unwrap();
    let mut sockets = vec![report("nvidia-gpu.sock", &["GPU-0"])];
    let got = attach(&mut sockets, &dir.path().join("none.sock")).await;
    assert!(got.error.is_some_and(|e| e.contains("does not exist")));
    assert!(sockets[0].devices[0].pods.is_empty());
}
