//! Tests of `config::v1::devices` (tables of cases).
use super::*;
use crate::config::v1::test_support::fragment;

fn devices(text: &str) -> Result<ReplicatedDevices, Vec<String>> {
    fragment(text, ReplicatedDevices::decode)
        .map_err(|e| e.iter().map(|e| e.message.clone()).collect())
}

#[test]
fn device_refs_are_classified_like_nvidia() {
    // (input, gpu index, mig index, uuid) — replicas_test.go TestReplicatedDeviceRef
    let cases = [
        ("0", true, false, false),
        ("0:0", false, true, false),
        (
            "GPU-4cf8db2d-06c0-7d70-1a51-e59b25b2c16c",
            false,
            false,
            true,
        ),
        (
            "MIG-3eb87630-93d5-b2b6-b8ff-9b359caf4ee2",
            false,
            false,
            true,
        ),
        (
            "MIG-GPU-662077db-fa3f-0d8f-9502-21ab0ef058a2/10/0",
            false,
            false,
            true,
        ),
    ];
    for (input, gpu, mig, uuid) in cases {
        assert_eq!(
            (is_gpu_index(input), is_mig_index(input), is_uuid(input)),
            (gpu, mig, uuid),
            "{input}"
        );
    }
}

#[test]
fn malformed_refs_are_not_refs() {
    let cases = [
        "",
        "-1",
        "+1",
        "0:",
        ":0",
        "0:0:0",
        "GPU-UUID",
        "MIG-UUID",
        "invalid-UUID",
        "MIG-GPU-4cf8db2d-06c0-7d70-1a51-e59b25b2c16c",
        "MIG-GPU-4cf8db2d-06c0-7d70-1a51-e59b25b2c16c/0",
        "GPU-4cf8db2d-06c0-7d70-1a51-e59b25b2c16",
        "GPU-4cf8db2d-06c0-7d70-1a51xe59b25b2c16c",
    ];
    for input in cases {
        assert!(!is_device_ref(input), "{input:?}");
    }
}

#[test]
fn uuid_spellings_google_uuid_accepts() {
    let cases = [
        "GPU-4cf8db2d06c07d701a51e59b25b2c16c",
        "GPU-{4cf8db2d-06c0-7d70-1a51-e59b25b2c16c}",
        "GPU-urn:uuid:4cf8db2d-06c0-7d70-1a51-e59b25b2c16c",
        "GPU-4CF8DB2D-06C0-7D70-1A51-E59B25B2C16C",
    ];
    for input in cases {
        assert!(is_uuid(input), "{input}");
    }
}

#[test]
fn unmarshal_replicated_devices_vectors() {
    let gpu = "GPU-4cf8db2d-06c0-7d70-1a51-e59b25b2c16c";
    let list = |v: &[&str]| {
        Ok(ReplicatedDevices::List(
            v.iter().map(|s| s.to_string()).collect(),
        ))
    };
    let cases: Vec<(String, Result<ReplicatedDevices, ()>)> = vec![
        (String::new(), Err(())),
        (r#""not-all""#.into(), Err(())),
        ("-2".into(), Err(())),
        ("2.0".into(), Err(())),
        ("[-1]".into(), Err(())),
        (r#"["-1"]"#.into(), Err(())),
        (r#"["invalid-UUID"]"#.into(), Err(())),
        (r#"["GPU-UUID"]"#.into(), Err(())),
        (r#"["MIG-UUID"]"#.into(), Err(())),
        (
            r#"["MIG-GPU-4cf8db2d-06c0-7d70-1a51-e59b25b2c16c"]"#.into(),
            Err(()),
        ),
        (r#""all""#.into(), Ok(ReplicatedDevices::All)),
        ("2".into(), Ok(ReplicatedDevices::Count(2))),
        ("[0]".into(), list(&["0"])),
        (r#"["0"]"#.into(), list(&["0"])),
        (r#"["0:0"]"#.into(), list(&["0:0"])),
        (format!(r#"["{gpu}"]"#), list(&[gpu])),
        (
            r#"["MIG-4cf8db2d-06c0-7d70-1a51-e59b25b2c16c"]"#.into(),
            list(&["MIG-4cf8db2d-06c0-7d70-1a51-e59b25b2c16c"]),
        ),
        (
            r#"["MIG-GPU-4cf8db2d-06c0-7d70-1a51-e59b25b2c16c/0/0"]"#.into(),
            list(&["MIG-GPU-4cf8db2d-06c0-7d70-1a51-e59b25b2c16c/0/0"]),
        ),
        (format!(r#"[0, "0:0", "{gpu}"]"#), list(&["0", "0:0", gpu])),
        (
            format!(r#"["0", "0:0", "{gpu}"]"#),
            list(&["0", "0:0", gpu]),
        ),
    ];
    for (input, want) in cases {
        let got = devices(&input).map_err(|_| ());
        assert_eq!(got, want, "{input:?}");
    }
}

#[test]
fn replicated_devices_error_texts() {
    let cases = [
        (
            r#""not-all""#,
            "devices set as 'not-all' but the only valid string input is 'all'",
        ),
        (
            "-2",
            "devices set as '-2' but a count of devices must be > 0",
        ),
        ("0", "devices set as '0' but a count of devices must be > 0"),
        ("2.0", "unrecognized type for devices spec: 2.0"),
        ("{a: 1}", r#"unrecognized type for devices spec: {"a":1}"#),
        ("true", "unrecognized type for devices spec: true"),
        (
            "[-1]",
            "unsupported type for device in devices list: , string",
        ),
        (
            r#"["-1"]"#,
            "unsupported type for device in devices list: -1, string",
        ),
        (
            "~",
            "devices set as '' but the only valid string input is 'all'",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(devices(input), Err(vec![want.to_string()]), "{input}");
    }
}

#[test]
fn marshal_replicated_devices_vectors() {
    let gpu = "GPU-4cf8db2d-06c0-7d70-1a51-e59b25b2c16c";
    let cases = [
        (ReplicatedDevices::All, serde_json::json!("all")),
        (ReplicatedDevices::Count(2), serde_json::json!(2)),
        (
            ReplicatedDevices::List(vec!["0".into(), "0:0".into(), gpu.into()]),
            serde_json::json!(["0", "0:0", gpu]),
        ),
    ];
    for (input, want) in cases {
        assert_eq!(input.to_json(), want);
    }
}
