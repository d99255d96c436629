//! Tests of `config::v1::resources` (tables of cases).
use super::*;
use crate::config::v1::test_support::fragment;

const RFC1123: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

#[test]
fn resource_names_get_the_prefix_and_are_checked() {
    let long = "a".repeat(52); // 11 + 52 = 63
    let too_long = "a".repeat(53);
    let cases: Vec<(String, Result<String, String>)> = vec![
        ("gpu".into(), Ok("nvidia.com/gpu".into())),
        ("nvidia.com/gpu".into(), Ok("nvidia.com/gpu".into())),
        ("gpu.shared".into(), Ok("nvidia.com/gpu.shared".into())),
        ("mig-1g.10gb".into(), Ok("nvidia.com/mig-1g.10gb".into())),
        (long.clone(), Ok(format!("nvidia.com/{long}"))),
        (
            too_long.clone(),
            Err(format!(
                "fully-qualified resource name must be 63 characters or less: nvidia.com/{too_long}"
            )),
        ),
        (
            "$invalid$".into(),
            Err(format!(
                "incorrect format for resource name 'nvidia.com/$invalid$': [{RFC1123}]"
            )),
        ),
        (
            "foo.com/x".into(),
            Err(format!(
                "incorrect format for resource name 'nvidia.com/foo.com/x': [{RFC1123}]"
            )),
        ),
        (
            "GPU".into(),
            Err(format!(
                "incorrect format for resource name 'nvidia.com/GPU': [{RFC1123}]"
            )),
        ),
        (
            "".into(),
            Err(format!(
                "incorrect format for resource name 'nvidia.com/': [{RFC1123}]"
            )),
        ),
        (
            "-gpu".into(),
            Err(format!(
                "incorrect format for resource name 'nvidia.com/-gpu': [{RFC1123}]"
            )),
        ),
        (
            "gpu..x".into(),
            Err(format!(
                "incorrect format for resource name 'nvidia.com/gpu..x': [{RFC1123}]"
            )),
        ),
    ];
    for (input, want) in cases {
        assert_eq!(resource_name(&input), want, "{input}");
    }
}

fn resources(text: &str) -> Result<Resources, Vec<String>> {
    fragment(text, |ctx, node| {
        let mut r = Resources::default();
        r.decode(ctx, node);
        Some(r)
    })
    .map_err(|e| e.iter().map(|e| e.message.clone()).collect())
}

#[test]
fn resources_section_decodes_patterns_and_names() {
    let got = resources(
        "gpus:\n- pattern: '*A100*'\n  name: a100\nmig:\n- {pattern: 1g.10gb, name: mig-small}\n",
    );
    assert_eq!(
        got,
        Ok(Resources {
            gpus: vec![NamedPattern::new("*A100*", "nvidia.com/a100")],
            mig: vec![NamedPattern::new("1g.10gb", "nvidia.com/mig-small")],
        })
    );
}

#[test]
fn resource_entries_need_both_keys_with_exact_case() {
    let cases = [
        (
            "gpus: [{name: a}]",
            "resources must have a 'pattern' field set",
        ),
        (
            "gpus: [{pattern: a}]",
            "resources must have a 'name' field set",
        ),
        (
            "gpus: [{Pattern: a, name: b}]",
            "resources must have a 'pattern' field set",
        ),
        ("gpus: [null]", "resources must have a 'pattern' field set"),
        (
            "gpus: [{pattern: a, name: B}]",
            "incorrect format for resource name 'nvidia.com/B'",
        ),
    ];
    for (input, want) in cases {
        let errors = resources(input).err().unwrap_or_default();
        assert_eq!(errors.len(), 1, "{input}: {errors:?}");
        assert!(errors[0].starts_with(want), "{input}: {errors:?}");
    }
}

#[test]
fn resources_keys_are_case_insensitive() {
    let got = resources("GPUS: [{pattern: x, name: big}]");
    assert_eq!(
        got.map(|r| r.gpus),
        Ok(vec![NamedPattern::new("x", "nvidia.com/big")])
    );
}
