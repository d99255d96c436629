//! Tests of `config::v1::sharing` (tables of cases).
use super::*;
use crate::config::v1::test_support::fragment;

fn resource(text: &str) -> Result<ReplicatedResource, Vec<String>> {
    fragment(text, |ctx, node| ReplicatedResource::decode(ctx, node, "r"))
        .map_err(|e| e.iter().map(|e| e.message.clone()).collect())
}

fn resources(text: &str) -> Result<ReplicatedResources, Vec<String>> {
    fragment(text, |ctx, node| {
        ReplicatedResources::decode(ctx, node, "r")
    })
    .map_err(|e| e.iter().map(|e| e.message.clone()).collect())
}

fn rr(name: &str, rename: Option<&str>, replicas: u32) -> ReplicatedResource {
    ReplicatedResource {
        name: name.to_string(),
        rename: rename.map(str::to_string),
        devices: ReplicatedDevices::All,
        replicas,
    }
}

#[test]
fn unmarshal_replicated_resource_vectors() {
    let valid = Ok(rr("nvidia.com/valid", None, 2));
    let renamed = Ok(rr("nvidia.com/valid", Some("nvidia.com/valid-shared"), 2));
    let cases: [(&str, Result<ReplicatedResource, ()>); 13] = [
        ("", Err(())),
        ("{}", Err(())),
        (r#"{"name":"valid",}"#, Err(())),
        (r#"{"name":"valid","devices":"all",}"#, Err(())),
        (
            r#"{"name":"valid","devices":"all","rename":"valid-shared",}"#,
            Err(()),
        ),
        (
            r#"{"name":"valid","devices":"all","replicas":2}"#,
            valid.clone(),
        ),
        (
            r#"{"name":"valid","devices":"all","replicas":2,"rename":"valid-shared"}"#,
            renamed.clone(),
        ),
        (r#"{"name":"valid","replicas":-1,}"#, Err(())),
        (r#"{"name":"valid","replicas":0,}"#, Err(())),
        (r#"{"name":"valid","replicas":2}"#, valid),
        (
            r#"{"name":"valid","replicas":2,"rename":"valid-shared"}"#,
            renamed,
        ),
        (
            r#"{"name":"$invalid$","replicas":2,"rename":"valid-shared"}"#,
            Err(()),
        ),
        (
            r#"{"name":"valid","replicas":2,"rename":"$invalid$"}"#,
            Err(()),
        ),
    ];
    for (input, want) in cases {
        assert_eq!(resource(input).map_err(|_| ()), want, "{input:?}");
    }
}

#[test]
fn replicated_resource_error_texts() {
    let cases = [
        ("{}", "no resource name specified"),
        ("{name: valid}", "no replicas specified"),
        (
            "{name: valid, replicas: 1}",
            "number of replicas must be >= 2",
        ),
        (
            "{name: valid, replicas: -1}",
            "number of replicas must be >= 2",
        ),
        ("{Name: valid, replicas: 2}", "no resource name specified"),
        ("{name: valid, Replicas: 2}", "no replicas specified"),
        (
            "{name: valid, replicas: two}",
            "json: cannot unmarshal string into Go struct field r.replicas of type int",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(resource(input), Err(vec![want.to_string()]), "{input}");
    }
}

#[test]
fn unmarshal_replicated_resources_vectors() {
    let cases: [(&str, Result<ReplicatedResources, String>); 6] = [
        ("", Err("unexpected end of JSON input".into())),
        ("{}", Err("no resources specified".into())),
        (r#"{"resources":[]}"#, Err("no resources specified".into())),
        (
            r#"{"resources":[{"name":"valid","replicas":2}]}"#,
            Ok(ReplicatedResources {
                rename_by_default: false,
                fail_requests_greater_than_one: None,
                resources: vec![rr("nvidia.com/valid", None, 2)],
            }),
        ),
        (
            r#"{"resources":[{"name":"valid1","replicas":2},{"name":"valid2","replicas":2}]}"#,
            Ok(ReplicatedResources {
                resources: vec![
                    rr("nvidia.com/valid1", None, 2),
                    rr("nvidia.com/valid2", None, 2),
                ],
                ..Default::default()
            }),
        ),
        (
            r#"{"resources":[{"name":"$invalid$","replicas":2}]}"#,
            Err("incorrect format for resource name 'nvidia.com/$invalid$'".into()),
        ),
    ];
    for (input, want) in cases {
        let got = resources(input);
        match want {
            Ok(want) => assert_eq!(got, Ok(want), "{input:?}"),
            Err(prefix) => {
                let errors = got.err().unwrap_or_default();
                assert!(
                    errors.first().is_some_and(|e| e.starts_with(&prefix)),
                    "{input:?}: {errors:?}"
                );
            }
        }
    }
}

#[test]
fn rename_by_default_names_unrenamed_entries_shared() {
    let got = resources(
        "renameByDefault: true\nresources:\n- {name: gpu, replicas: 4}\n- {name: mig-1g.10gb, replicas: 2, rename: small}\n",
    );
    let want = vec![
        rr("nvidia.com/gpu", Some("nvidia.com/gpu.shared"), 4),
        rr("nvidia.com/mig-1g.10gb", Some("nvidia.com/small"), 2),
    ];
    assert_eq!(got.map(|r| r.resources), Ok(want));
}

#[test]
fn replicated_resources_keys_are_case_sensitive() {
    // `RenameByDefault` is an unknown key to NVIDIA's custom decoder.
    let got = resources("RenameByDefault: true\nresources: [{name: gpu, replicas: 2}]");
    assert_eq!(got.map(|r| r.rename_by_default), Ok(false));
    assert_eq!(
        resources("Resources: [{name: gpu, replicas: 2}]"),
        Err(vec!["no resources specified".into()])
    );
}

#[test]
fn every_bad_entry_is_reported() {
    let got = resources("resources:\n- {name: gpu}\n- {replicas: 2}\n- {name: x, replicas: 1}\n");
    let want = [
        "no replicas specified",
        "no resource name specified",
        "number of replicas must be >= 2",
    ];
    assert_eq!(got, Err(want.map(String::from).to_vec()));
}

fn sharing(text: &str) -> Result<Sharing, Vec<String>> {
    fragment(text, |ctx, node| {
        let mut s = Sharing::default();
        s.decode(ctx, node);
        Some(s)
    })
    .map_err(|e| e.iter().map(|e| e.message.clone()).collect())
}

#[test]
fn present_time_slicing_must_be_valid_but_null_mps_is_absent() {
    assert_eq!(
        sharing("timeSlicing:"),
        Err(vec!["no resources specified".into()])
    );
    assert_eq!(sharing("mps:"), Ok(Sharing::default()));
    assert_eq!(
        sharing("TIMESLICING: {}"),
        Err(vec!["no resources specified".into()])
    );
}

#[test]
fn strategy_prefers_mps_and_active_resources_follow() {
    let ts = "timeSlicing: {resources: [{name: gpu, replicas: 2}]}";
    let mps = "mps: {resources: [{name: gpu, replicas: 3}]}";
    let cases = [
        ("{}".to_string(), SharingStrategy::None, None),
        (format!("{{{ts}}}"), SharingStrategy::TimeSlicing, Some(2)),
        (format!("{{{mps}}}"), SharingStrategy::Mps, Some(3)),
        (format!("{{{ts}, {mps}}}"), SharingStrategy::Mps, Some(3)),
    ];
    for (input, strategy, replicas) in cases {
        let s = sharing(&input).unwrap();
        assert_eq!(s.strategy(), strategy, "{input}");
        let active = s
            .replicated_resources()
            .and_then(|r| r.resources.first())
            .map(|r| r.replicas);
        assert_eq!(active, replicas, "{input}");
    }
}
