//! Table tests of reading a claim's allocation and opaque config.

use serde_json::json;

use super::*;

fn claim(results: Value, config: Value) -> Value {
    json!({
        "metadata": { "name": "c", "uid": "u1" },
        "status": { "allocation": { "devices": { "results": results, "config": config } } }
    })
}

fn result(request: &str, device: &str, driver: &str) -> Value {
    json!({ "request": request, "driver": driver, "pool": "node-1", "device": device })
}

#[test]
fn results_of_this_driver_are_read_and_others_skipped() {
    let c = claim(
        json!([
            result("gpu", "gpu-0", DRIVER),
            result("nic", "eth0", "net.example.com"),
            result("gpu", "gpu-1", DRIVER),
        ]),
        json!([]),
    );
    let got = allocated(&c, "c", "u1").unwrap();
    let devices: Vec<&str> = got.iter().map(|a| a.device.as_str()).collect();
    assert_eq!(devices, ["gpu-0", "gpu-1"]);
    assert_eq!(got[0].requests, ["gpu"]);
    assert_eq!(got[0].pool, "node-1");
}

#[test]
fn one_device_serving_two_requests_is_one_entry() {
    let c = claim(
        json!([result("a", "gpu-0", DRIVER), result("b", "gpu-0", DRIVER)]),
        json!([]),
    );
    let got = allocated(&c, "c", "u1").unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].requests, ["a", "b"]);
}

#[test]
fn the_wrong_claim_or_no_allocation_is_an_error() {
    let c = claim(json!([]), json!([]));
    assert!(matches!(
        allocated(&c, "c", "other"),
        Err(ClaimError::WrongUid { .. })
    ));
    let unallocated = json!({ "metadata": { "uid": "u1" }, "status": {} });
    assert_eq!(
        allocated(&unallocated, "c", "u1"),
        Err(ClaimError::NotAllocated("c".into()))
    );
    let bad = claim(
        json!([{ "driver": DRIVER, "pool": "p", "device": "d" }]),
        json!([]),
    );
    assert!(matches!(
        allocated(&bad, "c", "u1"),
        Err(ClaimError::BadResult {
            field: "request",
            ..
        })
    ));
}

fn opaque(driver: &str, parameters: Value) -> Value {
    json!([{ "source": "FromClaim", "opaque": { "driver": driver, "parameters": parameters } }])
}

#[test]
fn opaque_config_is_validated() {
    let cases: &[(Value, Option<&str>)] = &[
        (
            json!({ "apiVersion": CONFIG_API_VERSION, "kind": "GpuConfig" }),
            None,
        ),
        (
            json!({ "apiVersion": CONFIG_API_VERSION, "kind": "MigDeviceConfig" }),
            None,
        ),
        (
            json!({ "apiVersion": CONFIG_API_VERSION, "kind": "Nope" }),
            Some("unknown kind \"Nope\""),
        ),
        (
            json!({ "apiVersion": "x/v1", "kind": "GpuConfig" }),
            Some("unknown apiVersion \"x/v1\""),
        ),
        (
            json!({ "kind": "GpuConfig" }),
            Some("apiVersion is missing"),
        ),
        (
            json!({ "apiVersion": CONFIG_API_VERSION, "kind": "GpuConfig", "color": 1 }),
            Some("unknown field \"color\""),
        ),
        (
            json!({ "apiVersion": CONFIG_API_VERSION, "kind": "GpuConfig", "sharing": {} }),
            Some("not supported"),
        ),
        (json!("text"), Some("must be an object")),
    ];
    for (parameters, want) in cases {
        let c = claim(
            json!([result("gpu", "gpu-0", DRIVER)]),
            opaque(DRIVER, parameters.clone()),
        );
        let got = allocated(&c, "c", "u1");
        match want {
            None => assert!(got.is_ok(), "{parameters}: {got:?}"),
            Some(text) => {
                let err = got.unwrap_err().to_string();
                assert!(err.contains(text), "{parameters}: {err}");
                assert!(
                    err.starts_with("claim c: opaque config for gpu.nvidia.com"),
                    "{err}"
                );
            }
        }
    }
}

#[test]
fn opaque_config_of_another_driver_is_not_ours_to_judge() {
    let c = claim(
        json!([result("gpu", "gpu-0", DRIVER)]),
        opaque("net.example.com", json!({ "anything": true })),
    );
    assert!(allocated(&c, "c", "u1").is_ok());
}

#[test]
fn uids_that_could_leave_the_cdi_root_are_refused() {
    assert!(check_uid("6f0f2a1e-3c4b-4d5e-8f90-123456789abc").is_ok());
    for bad in ["", "../etc", "a/b", "a.b", "-a", &"x".repeat(129)] {
        assert!(
            matches!(check_uid(bad), Err(ClaimError::BadUid(_))),
            "{bad:?}"
        );
    }
}
