//! Tests of `config::v1::imex` (tables of cases).
use super::*;
use crate::config::v1::test_support::fragment;

fn imex(text: &str) -> Result<Imex, Vec<ConfigError>> {
    fragment(text, |ctx, node| {
        let mut i = Imex::default();
        i.decode(ctx, node);
        Some(i)
    })
}

#[test]
fn imex_unmarshal_vectors() {
    let cases: [(&str, Option<Vec<i64>>, bool); 6] = [
        ("{}", None, true),
        (r#"{"channelIDs": null}"#, None, true),
        (r#"{"channelIDs": []}"#, Some(vec![]), true),
        (r#"{"channelIDs": [0]}"#, Some(vec![0]), true),
        (r#"{"CHANNELIDS": [0]}"#, Some(vec![0]), true),
        (r#"{"channelIDs": [2]}"#, Some(vec![2]), false),
    ];
    for (input, ids, valid) in cases {
        let got = imex(input).unwrap();
        assert_eq!(got.channel_ids, ids, "{input}");
        assert_eq!(got.validate().is_ok(), valid, "{input}");
    }
}

#[test]
fn invalid_channel_ids_use_nvidia_text() {
    let got = imex("channelIDs: [1, 2]\nrequired: true").unwrap();
    assert!(got.required);
    assert_eq!(
        got.validate().map_err(|e| e.to_string()),
        Err("invalid IMEX channel IDs: invalid IMEX config: channelIDs must be [] or [0]; found [1 2]".to_string())
    );
}

#[test]
fn channel_ids_must_be_integers() {
    let errors = imex("channelIDs: [a]").unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0].message,
        "json: cannot unmarshal string into Go struct field imex.channelIDs of type int"
    );
}
