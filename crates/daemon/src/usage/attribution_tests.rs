use super::*;
use crate::resources::MigPlacement;

fn device(id: &str, uuid: &str, replica: Option<u32>, mig: bool) -> Device {
    Device {
        id: id.into(),
        uuid: uuid.into(),
        index: "0".into(),
        gpu_uuid: "GPU-p".into(),
        gpu_index: 0,
        mig: mig.then_some(MigPlacement {
            gpu_instance_id: 1,
            compute_instance_id: 0,
        }),
        replica,
        numa_node: None,
        paths: vec![],
    }
}

fn resources(list: Vec<(&str, Vec<Device>)>) -> BTreeMap<String, Arc<Resource>> {
    list.into_iter()
        .map(|(name, devices)| {
            (
                name.to_string(),
                Arc::new(Resource {
                    name: name.into(),
                    devices,
                    sharing: None,
                }),
            )
        })
        .collect()
}

fn held(resource: &str, id: &str, pod: &str) -> Assignment {
    Assignment {
        resource: resource.into(),
        device_id: id.into(),
        pod: pod.into(),
        namespace: "ns".into(),
        container: "main".into(),
    }
}

fn holder(pod: &str) -> Holder {
    Holder {
        pod: pod.into(),
        namespace: "ns".into(),
        container: "main".into(),
    }
}

#[test]
fn replicas_of_one_gpu_attribute_it_to_every_pod() {
    let plan = resources(vec![(
        "nvidia.com/gpu",
        vec![
            device("GPU-1::0", "GPU-1", Some(0), false),
            device("GPU-1::1", "GPU-1", Some(1), false),
            device("GPU-1::2", "GPU-1", Some(2), false),
        ],
    )]);
    let got = attribute(
        &plan,
        &[
            held("nvidia.com/gpu", "GPU-1::0", "a"),
            held("nvidia.com/gpu", "GPU-1::1", "b"),
            held("nvidia.com/gpu", "GPU-1::2", "c"),
        ],
    );
    let want: BTreeSet<Holder> = ["a", "b", "c"].into_iter().map(holder).collect();
    assert_eq!(got.holders["GPU-1"], want);
    let devices: BTreeSet<&str> = got.allocated.iter().map(|a| a.device.as_str()).collect();
    assert_eq!(devices, BTreeSet::from(["GPU-1"]));
    assert_eq!(got.allocated.len(), 3);
}

#[test]
fn two_replicas_in_one_container_are_one_row() {
    let plan = resources(vec![(
        "nvidia.com/gpu",
        vec![
            device("GPU-1::0", "GPU-1", Some(0), false),
            device("GPU-1::1", "GPU-1", Some(1), false),
        ],
    )]);
    let got = attribute(
        &plan,
        &[
            held("nvidia.com/gpu", "GPU-1::0", "a"),
            held("nvidia.com/gpu", "GPU-1::1", "a"),
        ],
    );
    assert_eq!(got.allocated.len(), 1);
    assert_eq!(got.holders["GPU-1"].len(), 1);
}

#[test]
fn foreign_resources_and_unknown_ids_are_left_out() {
    let plan = resources(vec![(
        "nvidia.com/gpu",
        vec![device("GPU-1", "GPU-1", None, false)],
    )]);
    let got = attribute(
        &plan,
        &[
            held("example.com/fpga", "GPU-1", "a"),
            held("nvidia.com/gpu", "GPU-9", "b"),
        ],
    );
    assert_eq!(got, Attribution::default());
}

#[test]
fn a_mig_device_is_attributed_by_its_own_uuid() {
    let plan = resources(vec![(
        "nvidia.com/mig-1g.10gb",
        vec![device("MIG-1", "MIG-1", None, true)],
    )]);
    let got = attribute(&plan, &[held("nvidia.com/mig-1g.10gb", "MIG-1", "a")]);
    assert_eq!(got.holders.keys().collect::<Vec<_>>(), ["MIG-1"]);
}

#[test]
fn device_label_drops_only_a_replica_suffix() {
    assert_eq!(
        device_label(&device("GPU-1::3", "GPU-1", Some(3), false)),
        "GPU-1"
    );
    assert_eq!(device_label(&device("0::1", "GPU-1", Some(1), false)), "0");
    assert_eq!(
        device_label(&device("GPU-1", "GPU-1", None, false)),
        "GPU-1"
    );
}
