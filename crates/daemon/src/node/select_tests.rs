//! Table tests of `node::select`: the config-manager's order, fallbacks,
//! error texts, and which directory entries are configs.
use super::*;

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn rules(default: Option<&str>, fallbacks: &str) -> Rules {
    Rules {
        label: "nvidia.com/device-plugin.config".into(),
        default: default.map(str::to_string),
        fallbacks: parse_fallbacks(fallbacks).unwrap(),
    }
}

fn named(n: &str) -> Result<Selected, SelectError> {
    Ok(Selected::Named(n.into()))
}

type Case<'a> = (
    &'a str,
    Option<&'a str>,
    &'a BTreeSet<String>,
    Rules,
    Result<Selected, SelectError>,
);

#[test]
fn selection_follows_the_config_managers_order() {
    let two = set(&["a100", "time-sliced"]);
    let with_default = set(&["default", "time-sliced"]);
    let one = set(&["only"]);
    let none = BTreeSet::new();
    let cases: Vec<Case> = vec![
        (
            "label picks its file",
            Some("time-sliced"),
            &two,
            rules(Some("a100"), "named,single"),
            named("time-sliced"),
        ),
        (
            "no label: the default",
            None,
            &two,
            rules(Some("a100"), "named,single"),
            named("a100"),
        ),
        (
            "empty label is no label",
            Some(""),
            &two,
            rules(Some("a100"), ""),
            named("a100"),
        ),
        (
            "named fallback",
            None,
            &with_default,
            rules(None, "named,single"),
            named("default"),
        ),
        (
            "single fallback",
            None,
            &one,
            rules(None, "named,single"),
            named("only"),
        ),
        (
            "single needs exactly one",
            None,
            &two,
            rules(None, "single"),
            Err(SelectError::NoneApplies),
        ),
        (
            "empty fallback",
            None,
            &two,
            rules(None, "named,single,empty"),
            Ok(Selected::Empty),
        ),
        (
            "fallbacks in order",
            None,
            &with_default,
            rules(None, "empty,named"),
            Ok(Selected::Empty),
        ),
        (
            "no fallback applies",
            None,
            &two,
            rules(None, "named"),
            Err(SelectError::NoneApplies),
        ),
        (
            "no fallbacks at all",
            None,
            &two,
            rules(None, ""),
            Err(SelectError::NoneApplies),
        ),
        (
            "no files",
            Some("a100"),
            &none,
            rules(None, "empty"),
            Err(SelectError::NoFiles),
        ),
    ];
    for (what, label, available, rules, want) in cases {
        assert_eq!(select(label, available, &rules), want, "{what}");
    }
}

#[test]
fn an_unknown_label_is_an_error_naming_it_and_the_choices() {
    let err = select(Some("nope"), &set(&["a", "b"]), &rules(Some("a"), "empty")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "specified config nope does not exist (label nvidia.com/device-plugin.config); available: a, b"
    );
}

#[test]
fn a_path_in_the_label_is_only_an_unknown_name() {
    let got = select(
        Some("../../etc/passwd"),
        &set(&["a"]),
        &rules(None, "empty"),
    );
    assert!(matches!(got, Err(SelectError::UnknownLabel(..))), "{got:?}");
}

#[test]
fn an_unknown_default_names_the_default_not_the_label() {
    let err = select(None, &set(&["a"]), &rules(Some("gone"), "")).unwrap_err();
    assert_eq!(err, SelectError::UnknownDefault("gone".into(), "a".into()));
}

#[test]
fn fallbacks_parse_trimmed_and_reject_unknown_names() {
    assert_eq!(
        parse_fallbacks(" named , empty").unwrap(),
        vec![Fallback::Named, Fallback::Empty]
    );
    assert_eq!(parse_fallbacks("").unwrap(), vec![]);
    assert_eq!(
        parse_fallbacks("named,bogus"),
        Err(SelectError::UnknownFallback("bogus".into()))
    );
}

#[test]
fn configmap_internals_and_directories_are_not_candidates() {
    let got = candidates([
        ("..data", false),
        ("..2026_12_03_08_00_00.1", true),
        ("a100", false),
        ("sub", true),
        (".hidden", false),
    ]);
    assert_eq!(got, set(&[".hidden", "a100"]));
}

#[test]
fn read_candidates_lists_a_configmap_volume_by_key() {
    let dir = tempfile::tempdir().unwrap();
    let ts = dir.path().join("..ts1");
    std::fs::create_dir(&ts).unwrap();
    std::fs::write(ts.join("a100"), "version: v1\n").unwrap();
    std::os::unix::fs::symlink("..ts1", dir.path().join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/a100", dir.path().join("a100")).unwrap();
    assert_eq!(read_candidates(dir.path()), set(&["a100"]));
}
