//! An independent reading of a node file: the devices a kubelet should see per
//! resource for a MIG strategy, written from NVIDIA's rules (not from the
//! plugin's code).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

/// Resource → [(device ID, NUMA node)], in node order.
pub type Expected = BTreeMap<String, Vec<(String, Option<i64>)>>;

pub fn expected(node: &Path, mig_strategy: &str) -> Expected {
    let text = std::fs::read_to_string(node).expect("node file");
    let doc: Value = serde_saphyr::from_str(&text).expect("node yaml");
    let mut out = Expected::new();
    for gpu in doc["gpus"].as_array().expect("gpus") {
        let numa = gpu["numaNode"].as_i64().filter(|n| *n >= 0);
        let mig = gpu["migEnabled"].as_bool().unwrap_or(false) && mig_strategy != "none";
        if !mig {
            let uuid = gpu["uuid"].as_str().expect("uuid").to_string();
            out.entry("nvidia.com/gpu".into())
                .or_default()
                .push((uuid, numa));
            continue;
        }
        for m in gpu["migDevices"].as_array().into_iter().flatten() {
            let profile = m["profile"].as_str().expect("profile");
            let name = if mig_strategy == "single" {
                "nvidia.com/gpu".to_string()
            } else {
                format!("nvidia.com/mig-{}", profile.replace('+', "."))
            };
            out.entry(name)
                .or_default()
                .push((m["uuid"].as_str().expect("uuid").into(), numa));
        }
    }
    out
}

/// Waits until the kubelet sees exactly the resources of `want` with their
/// device counts, then checks every device's ID and NUMA node.
pub async fn assert_sees(
    k: &super::kubelet::FakeKubelet,
    plugin: &super::process::Plugin,
    want: &Expected,
    context: &str,
) -> devkit::kubelet::KubeletView {
    let view = k
        .get()
        .wait_for(super::WAIT, |v| {
            v.resources.len() == want.len()
                && want.iter().all(|(name, devs)| {
                    v.resources
                        .get(name)
                        .is_some_and(|r| r.devices.len() == devs.len())
                })
        })
        .await
        .unwrap_or_else(|e| panic!("{context}: {e}; log:\n{}", plugin.log()));
    for (name, devs) in want {
        let mut got: Vec<(String, Option<i64>)> = view.resources[name]
            .devices
            .iter()
            .map(|d| {
                let nodes = d
                    .topology
                    .as_ref()
                    .map(|t| t.nodes.clone())
                    .unwrap_or_default();
                assert!(
                    nodes.len() <= 1,
                    "{context}: at most one NUMA node per device"
                );
                (d.id.clone(), nodes.first().map(|n| n.id))
            })
            .collect();
        let mut want = devs.clone();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{context}/{name}");
    }
    view
}
