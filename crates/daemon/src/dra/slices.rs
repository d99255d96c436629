//! The ResourceSlices of this node as a pure function of the inventory, the
//! health of each device and what the server supports: one pool named after
//! the node for driver `gpu.nvidia.com`, a device per GPU (`gpu-<minor>`)
//! and per MIG device (`gpu-<minor>-mig-<gi>-<ci>`), attributed as NVIDIA's
//! DRA driver does. An unhealthy device carries a `NoSchedule` taint when
//! the server keeps device taints, and is left out of the slice otherwise.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use super::DRIVER;
use crate::gpu::{Gpu, Inventory, MigDevice};

/// The most devices one ResourceSlice may hold (resource.k8s.io/v1).
pub const MAX_DEVICES_PER_SLICE: usize = 128;
/// The taint key of a device the health model marks unhealthy.
pub const UNHEALTHY_TAINT: &str = "gpu.nvidia.com/unhealthy";
/// The standard PCIe root attribute (`k8s.io/dynamic-resource-allocation/deviceattribute`).
pub const PCIE_ROOT_ATTRIBUTE: &str = "resource.kubernetes.io/pcieRoot";

/// One device this driver publishes, with what prepare needs to find it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DraDevice {
    /// The device name in the slice.
    pub name: String,
    /// GPU or MIG UUID.
    pub uuid: String,
    /// NVML index of the physical GPU.
    pub gpu_index: u32,
    /// The physical GPU's UUID.
    pub gpu_uuid: String,
    /// `(gpu instance, compute instance)` of a MIG device.
    pub mig: Option<(u32, u32)>,
}

/// NVIDIA's name of a whole GPU.
pub fn gpu_device_name(gpu: &Gpu) -> String {
    format!("gpu-{}", gpu.minor)
}

/// The name of a MIG device: NVIDIA uses `gpu-<minor>-mig-<profile id>-<start>-<size>`;
/// the inventory holds no placement, so the GPU and compute instance ids
/// stand in for it (unique on the GPU, stable across restarts).
pub fn mig_device_name(gpu: &Gpu, mig: &MigDevice) -> String {
    format!(
        "gpu-{}-mig-{}-{}",
        gpu.minor, mig.gpu_instance_id, mig.compute_instance_id
    )
}

/// The devices of `inventory` that DRA owns (`owned` holds GPU UUIDs): a
/// GPU in MIG mode is published as its MIG devices only, as NVIDIA does.
pub fn dra_devices(inventory: &Inventory, owned: &BTreeSet<String>) -> Vec<DraDevice> {
    let mut out = Vec::new();
    for gpu in inventory.gpus.iter().filter(|g| owned.contains(&g.uuid)) {
        if !gpu.mig_enabled {
            out.push(DraDevice {
                name: gpu_device_name(gpu),
                uuid: gpu.uuid.clone(),
                gpu_index: gpu.index,
                gpu_uuid: gpu.uuid.clone(),
                mig: None,
            });
        }
        for mig in &gpu.mig_devices {
            out.push(DraDevice {
                name: mig_device_name(gpu, mig),
                uuid: mig.uuid.clone(),
                gpu_index: gpu.index,
                gpu_uuid: gpu.uuid.clone(),
                mig: Some((mig.gpu_instance_id, mig.compute_instance_id)),
            });
        }
    }
    out
}

/// What the slices are built from.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SliceInput {
    pub node: String,
    pub inventory: Inventory,
    /// GPU UUIDs that DRA owns.
    pub owned: BTreeSet<String>,
    /// Unhealthy devices (GPU or MIG UUID) with why.
    pub unhealthy: BTreeMap<String, String>,
    /// PCIe root (`pci<domain>:<bus>`) per GPU PCI bus id, where known.
    pub pcie_roots: BTreeMap<String, String>,
}

/// NVIDIA's architecture name of a CUDA compute capability.
pub fn architecture(compute_capability: &str) -> Option<&'static str> {
    let (major, minor) = compute_capability.split_once('.')?;
    let arch = match (major, minor) {
        ("3", _) => "Kepler",
        ("5", _) => "Maxwell",
        ("6", _) => "Pascal",
        ("7", "0") | ("7", "2") => "Volta",
        ("7", "5") => "Turing",
        ("8", "9") => "Ada Lovelace",
        ("8", _) => "Ampere",
        ("9", _) => "Hopper",
        ("10", _) | ("12", _) => "Blackwell",
        _ => return None,
    };
    Some(arch)
}

/// A version as semver (`8.0` → `8.0.0`, `550.54.15` as is), `None` when it
/// is not one to three dot-separated numbers.
pub fn semver(version: &str) -> Option<String> {
    let parts: Vec<u64> = version
        .split('.')
        .map(|p| p.parse::<u64>().ok())
        .collect::<Option<_>>()?;
    if parts.is_empty() || parts.len() > 3 {
        return None;
    }
    let mut parts = parts;
    parts.resize(3, 0);
    Some(format!("{}.{}.{}", parts[0], parts[1], parts[2]))
}

fn string(v: &str) -> Value {
    json!({ "string": v })
}

fn common_attributes(gpu: &Gpu, inventory: &Inventory, input: &SliceInput) -> Map<String, Value> {
    let mut a = Map::new();
    a.insert("productName".into(), string(&gpu.name));
    a.insert("index".into(), json!({ "int": gpu.index }));
    a.insert("minor".into(), json!({ "int": gpu.minor }));
    a.insert("pcieBusID".into(), string(&gpu.pci_bus_id));
    if let Some(cc) = &gpu.compute_capability {
        if let Some(arch) = architecture(cc) {
            a.insert("architecture".into(), string(arch));
        }
        if let Some(v) = semver(cc) {
            a.insert("cudaComputeCapability".into(), json!({ "version": v }));
        }
    }
    if let Some(v) = inventory.driver_version.as_deref().and_then(semver) {
        a.insert("driverVersion".into(), json!({ "version": v }));
    }
    if let Some(v) = inventory.cuda_driver_version {
        // NVML's 12040 is CUDA 12.4, as a semantic version.
        let version = format!("{}.{}.0", v / 1000, (v % 1000) / 10);
        a.insert("cudaDriverVersion".into(), json!({ "version": version }));
    }
    if let Some(numa) = gpu.numa_node {
        a.insert("numa".into(), json!({ "int": numa }));
    }
    if let Some(root) = input.pcie_roots.get(&gpu.pci_bus_id) {
        a.insert(PCIE_ROOT_ATTRIBUTE.into(), string(root));
    }
    a
}

fn memory(mib: u64) -> Value {
    json!({ "memory": { "value": format!("{mib}Mi") } })
}

/// One device in `resource.k8s.io/v1` shape (`None` for a device not in
/// the inventory), tainted when unhealthy and `taints` is on.
fn device_json(device: &DraDevice, input: &SliceInput, taints: bool) -> Option<Value> {
    let gpu = input
        .inventory
        .gpus
        .iter()
        .find(|g| g.uuid == device.gpu_uuid)?;
    let mut attributes = common_attributes(gpu, &input.inventory, input);
    attributes.insert("uuid".into(), string(&device.uuid));
    let capacity = match device.mig {
        None => {
            attributes.insert("type".into(), string("gpu"));
            memory(gpu.memory_mib)
        }
        Some((gi, ci)) => {
            let mig = gpu
                .mig_devices
                .iter()
                .find(|m| m.gpu_instance_id == gi && m.compute_instance_id == ci)?;
            attributes.insert("type".into(), string("mig"));
            attributes.insert("profile".into(), string(&mig.profile));
            attributes.insert("parentUUID".into(), string(&gpu.uuid));
            attributes.insert("parentIndex".into(), json!({ "int": gpu.index }));
            memory(mig.memory_mib)
        }
    };
    let mut out = json!({
        "name": device.name,
        "attributes": attributes,
        "capacity": capacity,
    });
    if taints && input.unhealthy.contains_key(&device.uuid) {
        out["taints"] = json!([{ "key": UNHEALTHY_TAINT, "effect": "NoSchedule" }]);
    }
    Some(out)
}

/// The devices of the pool, v1 shape, in slice order. With `taints` off an
/// unhealthy device is withdrawn.
pub fn pool_devices(input: &SliceInput, taints: bool) -> Vec<Value> {
    dra_devices(&input.inventory, &input.owned)
        .iter()
        .filter(|d| taints || !input.unhealthy.contains_key(&d.uuid))
        .filter_map(|d| device_json(d, input, taints))
        .collect()
}

/// The slice object name of chunk `i`: `<node>-gpu.nvidia.com[-<i>]`.
pub fn slice_name(node: &str, i: usize) -> String {
    match i {
        0 => format!("{node}-{DRIVER}"),
        i => format!("{node}-{DRIVER}-{i}"),
    }
}

/// The specs of the pool's slices (v1 shape): at most
/// [`MAX_DEVICES_PER_SLICE`] devices each, at least one slice (an empty
/// pool says "no devices" rather than "not published").
pub fn slice_specs(node: &str, generation: i64, devices: &[Value]) -> Vec<(String, Value)> {
    let chunks: Vec<&[Value]> = if devices.is_empty() {
        vec![&[]]
    } else {
        devices.chunks(MAX_DEVICES_PER_SLICE).collect()
    };
    let count = chunks.len();
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, chunk)| {
            let spec = json!({
                "driver": DRIVER,
                "nodeName": node,
                "pool": { "name": node, "generation": generation, "resourceSliceCount": count },
                "devices": chunk,
            });
            (slice_name(node, i), spec)
        })
        .collect()
}

/// A v1 (and v1beta2) slice spec in v1beta1 shape: each device's
/// attributes, capacity and taints go under `basic`.
pub fn to_v1beta1(spec: &Value) -> Value {
    let mut out = spec.clone();
    if let Some(devices) = out.get_mut("devices").and_then(Value::as_array_mut) {
        for d in devices.iter_mut() {
            let Some(obj) = d.as_object_mut() else {
                continue;
            };
            let mut basic = Map::new();
            for key in ["attributes", "capacity", "taints"] {
                if let Some(v) = obj.remove(key) {
                    basic.insert(key.into(), v);
                }
            }
            obj.insert("basic".into(), Value::Object(basic));
        }
    }
    out
}

#[cfg(test)]
#[path = "slices_tests.rs"]
mod tests;
