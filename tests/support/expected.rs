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
