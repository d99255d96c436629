use std::collections::{BTreeSet, HashMap};

use super::*;
use crate::gpu::simulated::parse_node;
use crate::resources::{PlanOptions, plan};
use crate::usage::attribution::{Assignment, attribute};

const NODE: &str = r#"
driverVersion: "550.54.15"
gpus:
  - {index: 0, uuid: GPU-a, name: Model X, memoryMiB: 1000, pciBusId: "0000:07:00.0",
     usage: {gpuUtil: 50, memoryUsedMiB: 250, powerW: 10.5}}
  - {index: 1, uuid: GPU-b, name: Model X, memoryMiB: 1000, pciBusId: "0000:08:00.0"}
"#;

fn scene(assignments: &[Assignment], dcgm: bool) -> String {
    let node = parse_node(NODE, "test").unwrap();
    let resources: BTreeMap<String, Arc<Resource>> = plan(&node.inventory, &PlanOptions::default())
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, Arc::new(v)))
        .collect();
    let samples: HashMap<String, Usage> = node.usage.clone();
    let xids = HashMap::from([("GPU-b".to_string(), XidCount { count: 2, last: 79 })]);
    let attribution = attribute(&resources, assignments);
    render(&View {
        inventory: &node.inventory,
        resources: &resources,
        samples: &samples,
        xids: &xids,
        attribution: &attribution,
        dcgm,
    })
}

fn held(id: &str, pod: &str) -> Assignment {
    Assignment {
        resource: "nvidia.com/gpu".into(),
        device_id: id.into(),
        pod: pod.into(),
        namespace: "ns".into(),
        container: "c".into(),
    }
}

fn lines(text: &str) -> BTreeSet<&str> {
    text.lines().filter(|l| !l.starts_with('#')).collect()
}

#[test]
fn supported_values_render_and_unsupported_ones_are_absent() {
    let text = scene(&[], false);
    let a = r#"resource="nvidia.com/gpu",device="GPU-a",uuid="GPU-a",gpu="0",model="Model X""#;
    let b = r#"resource="nvidia.com/gpu",device="GPU-b",uuid="GPU-b",gpu="1",model="Model X""#;
    let want: BTreeSet<String> = [
        format!("gpu_device_plugin_gpu_utilization_ratio{{{a}}} 0.5"),
        format!("gpu_device_plugin_memory_used_bytes{{{a}}} 262144000"),
        format!("gpu_device_plugin_memory_total_bytes{{{a}}} 1048576000"),
        format!("gpu_device_plugin_memory_total_bytes{{{b}}} 1048576000"),
        format!("gpu_device_plugin_power_watts{{{a}}} 10.5"),
        r#"gpu_device_plugin_xid_errors_total{uuid="GPU-a",gpu="0",model="Model X"} 0"#.into(),
        r#"gpu_device_plugin_xid_errors_total{uuid="GPU-b",gpu="1",model="Model X"} 2"#.into(),
    ]
    .into_iter()
    .collect();
    let got: BTreeSet<String> = lines(&text).into_iter().map(String::from).collect();
    assert_eq!(got, want, "{text}");
    assert!(text.contains("# UNIT gpu_device_plugin_power_watts watts"));
    assert!(text.contains("# TYPE gpu_device_plugin_xid_errors counter"));
}

#[test]
fn dcgm_series_repeat_per_holder_and_stay_single_when_unheld() {
    let text = scene(&[held("GPU-a", "p1"), held("GPU-a", "p2")], true);
    let util: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("DCGM_FI_DEV_GPU_UTIL{"))
        .collect();
    assert_eq!(util.len(), 2, "{text}");
    assert!(
        util[0].ends_with(r#"container="c",namespace="ns",pod="p1"} 50"#),
        "{util:?}"
    );
    assert!(util[1].ends_with(r#"pod="p2"} 50"#), "{util:?}");
    let xid: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("DCGM_FI_DEV_XID_ERRORS{"))
        .collect();
    assert_eq!(xid.len(), 3, "{text}");
    assert!(
        xid.contains(&r#"DCGM_FI_DEV_XID_ERRORS{gpu="1",UUID="GPU-b",pci_bus_id="00000000:08:00.0",device="nvidia1",modelName="Model X",DCGM_FI_DRIVER_VERSION="550.54.15"} 79"#),
        "{xid:?}"
    );
    // FB free from used and size: 1000 - 250 MiB.
    assert!(
        text.lines()
            .any(|l| l.starts_with("DCGM_FI_DEV_FB_FREE{") && l.ends_with("pod=\"p1\"} 750"))
    );
}

#[test]
fn label_values_are_escaped() {
    let mut s = String::new();
    label(&mut s, "pod", "a\"b\\c\nd");
    assert_eq!(s, r#"pod="a\"b\\c\nd""#);
}
