//! Table tests of the ResourceSlice builder on the example nodes.

use super::*;
use crate::gpu::simulated::parse_node;

fn node(text: &str) -> Inventory {
    parse_node(text, "test").unwrap().inventory
}

fn dgx() -> Inventory {
    node(include_str!("../../../../config/nodes/dgx-a100.yaml"))
}

fn h100() -> Inventory {
    node(include_str!("../../../../config/nodes/h100-mig.yaml"))
}

fn input(inventory: Inventory) -> SliceInput {
    SliceInput {
        node: "node-1".into(),
        owned: DraDeviceSel::all(&inventory),
        inventory,
        ..SliceInput::default()
    }
}

struct DraDeviceSel;
impl DraDeviceSel {
    fn all(inventory: &Inventory) -> BTreeSet<String> {
        inventory.gpus.iter().map(|g| g.uuid.clone()).collect()
    }
}

fn names(devices: &[Value]) -> Vec<String> {
    devices
        .iter()
        .map(|d| d["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_whole_gpu_has_nvidias_name_attributes_and_memory() {
    let mut i = input(dgx());
    i.pcie_roots
        .insert("0000:07:00.0".into(), "pci0000:00".into());
    let devices = pool_devices(&i, true);
    assert_eq!(devices.len(), 8);
    let d = &devices[0];
    assert_eq!(d["name"], "gpu-0");
    let a = &d["attributes"];
    assert_eq!(a["type"]["string"], "gpu");
    assert_eq!(
        a["uuid"]["string"],
        "GPU-bd73a270-54aa-3a74-1e01-362282297cd1"
    );
    assert_eq!(a["productName"]["string"], "NVIDIA A100-SXM4-80GB");
    assert_eq!(a["architecture"]["string"], "Ampere");
    assert_eq!(a["cudaComputeCapability"]["version"], "8.0.0");
    assert_eq!(a["driverVersion"]["version"], "550.54.15");
    assert_eq!(a["cudaDriverVersion"]["version"], "12.4.0");
    assert_eq!(a["pcieBusID"]["string"], "0000:07:00.0");
    assert_eq!(a["numa"]["int"], 0);
    assert_eq!(a[PCIE_ROOT_ATTRIBUTE]["string"], "pci0000:00");
    assert_eq!(d["capacity"]["memory"]["value"], "81920Mi");
    assert!(d.get("taints").is_none());
    // GPU 1 has no known PCIe root: no attribute.
    assert!(devices[1]["attributes"].get(PCIE_ROOT_ATTRIBUTE).is_none());
    assert_eq!(devices[4]["attributes"]["numa"]["int"], 1);
}

#[test]
fn a_mig_gpu_is_published_as_its_mig_devices_with_profile_and_parent() {
    let inv = h100();
    let devices = pool_devices(&input(inv.clone()), true);
    let n = names(&devices);
    // GPUs 0-2 are in MIG mode (4 + 7 + 1 MIG devices), GPU 3 in MIG mode
    // without instances, GPUs 4-7 whole.
    assert_eq!(devices.len(), 4 + 7 + 1 + 4);
    assert!(!n.contains(&"gpu-0".to_string()));
    assert!(!n.iter().any(|x| x.starts_with("gpu-3")));
    let first = &devices[0];
    assert_eq!(first["name"], "gpu-0-mig-2-0");
    let a = &first["attributes"];
    assert_eq!(a["type"]["string"], "mig");
    assert_eq!(a["profile"]["string"], "3g.40gb");
    assert_eq!(a["parentUUID"]["string"], inv.gpus[0].uuid);
    assert_eq!(a["uuid"]["string"], inv.gpus[0].mig_devices[0].uuid);
    assert_eq!(a["architecture"]["string"], "Hopper");
    assert_eq!(first["capacity"]["memory"]["value"], "40192Mi");
    assert!(n.contains(&"gpu-4".to_string()));
}

#[test]
fn an_unhealthy_device_is_tainted_or_withdrawn() {
    let inv = dgx();
    let mut i = input(inv.clone());
    i.unhealthy
        .insert(inv.gpus[2].uuid.clone(), "xid 79".into());
    let tainted = pool_devices(&i, true);
    assert_eq!(tainted.len(), 8);
    assert_eq!(
        tainted[2]["taints"],
        json!([{ "key": UNHEALTHY_TAINT, "effect": "NoSchedule" }])
    );
    assert!(tainted[1].get("taints").is_none());
    let withdrawn = pool_devices(&i, false);
    assert_eq!(withdrawn.len(), 7);
    assert!(!names(&withdrawn).contains(&"gpu-2".to_string()));
    assert!(withdrawn.iter().all(|d| d.get("taints").is_none()));
}

#[test]
fn only_owned_gpus_are_published() {
    let inv = dgx();
    let mut i = input(inv.clone());
    i.owned = [inv.gpus[5].uuid.clone()].into_iter().collect();
    assert_eq!(names(&pool_devices(&i, true)), vec!["gpu-5"]);
}

#[test]
fn the_pool_is_the_node_with_its_generation_and_slice_count() {
    let devices = pool_devices(&input(dgx()), true);
    let specs = slice_specs("node-1", 7, &devices);
    assert_eq!(specs.len(), 1);
    let (name, spec) = &specs[0];
    assert_eq!(name, "node-1-gpu.nvidia.com");
    assert_eq!(spec["driver"], DRIVER);
    assert_eq!(spec["nodeName"], "node-1");
    assert_eq!(
        spec["pool"],
        json!({ "name": "node-1", "generation": 7, "resourceSliceCount": 1 })
    );
    assert_eq!(spec["devices"].as_array().unwrap().len(), 8);
    // An empty pool is one empty slice.
    let empty = slice_specs("node-1", 1, &[]);
    assert_eq!(empty.len(), 1);
    assert_eq!(empty[0].1["devices"], json!([]));
}

#[test]
fn more_than_128_devices_split_into_slices_of_one_pool() {
    let devices: Vec<Value> = (0..300)
        .map(|i| json!({ "name": format!("d{i}") }))
        .collect();
    let specs = slice_specs("n", 2, &devices);
    let sizes: Vec<usize> = specs
        .iter()
        .map(|(_, s)| s["devices"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, vec![128, 128, 44]);
    assert!(
        specs
            .iter()
            .all(|(_, s)| s["pool"]["resourceSliceCount"] == 3)
    );
    assert_eq!(specs[2].0, "n-gpu.nvidia.com-2");
}

#[test]
fn v1beta1_moves_attributes_capacity_and_taints_under_basic() {
    let spec = json!({ "devices": [{ "name": "gpu-0", "attributes": {"a": 1}, "capacity": {"c": 2}, "taints": [] }] });
    assert_eq!(
        to_v1beta1(&spec),
        json!({ "devices": [{ "name": "gpu-0", "basic": { "attributes": {"a": 1}, "capacity": {"c": 2}, "taints": [] } }] })
    );
}

#[test]
fn versions_and_architectures() {
    let cases = [
        ("8.0", Some("8.0.0")),
        ("550.54.15", Some("550.54.15")),
        ("550.054", Some("550.54.0")),
        ("12", Some("12.0.0")),
        ("x.1", None),
        ("1.2.3.4", None),
    ];
    for (v, want) in cases {
        assert_eq!(semver(v).as_deref(), want, "{v}");
    }
    let archs = [
        ("7.0", Some("Volta")),
        ("7.5", Some("Turing")),
        ("8.6", Some("Ampere")),
        ("8.9", Some("Ada Lovelace")),
        ("9.0", Some("Hopper")),
        ("10.0", Some("Blackwell")),
        ("2.0", None),
    ];
    for (cc, want) in archs {
        assert_eq!(architecture(cc), want, "{cc}");
    }
}
