//! Building the plan: GPUs and MIG devices → resources, per MIG strategy
//! (NVIDIA's rules and error texts, reference §3).

use std::collections::{BTreeMap, HashSet};

use super::{
    Device, MAX_DEVICE_ID_LEN, MigPlacement, MigStrategy, NamedPattern, Plan, PlanError,
    RESOURCE_PREFIX, Resource,
};
use crate::gpu::{Gpu, Inventory, MigDevice, is_display_device};

/// What the operator asked for that shapes the plan.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlanOptions {
    pub mig_strategy: MigStrategy,
    /// `resources.gpus` from the config; the default `*` → `nvidia.com/gpu` is appended.
    pub gpu_patterns: Vec<NamedPattern>,
    /// `resources.mig` from the config; the strategy's defaults are appended.
    pub mig_patterns: Vec<NamedPattern>,
    /// Time-slicing or MPS replicas, applied last.
    pub sharing: Option<super::SharingOptions>,
}

/// Computes the resources to advertise on a node.
pub fn plan(inventory: &Inventory, options: &PlanOptions) -> Result<Plan, PlanError> {
    let gpus: Vec<&Gpu> = inventory
        .gpus
        .iter()
        .filter(|g| !is_display_device(&g.name))
        .collect();
    if options.mig_strategy == MigStrategy::Single {
        validate_single(&gpus)?;
    }
    let gpu_patterns = with_default_gpu_pattern(&options.gpu_patterns);
    let mig_patterns =
        with_default_mig_patterns(&options.mig_patterns, options.mig_strategy, &gpus);

    let mut plan: Plan = BTreeMap::new();
    for gpu in &gpus {
        let use_mig = gpu.mig_enabled && options.mig_strategy != MigStrategy::None;
        if !use_mig {
            let name = first_match(&gpu_patterns, &gpu.name)
                .ok_or_else(|| PlanError::UnmatchedGpu(gpu.name.clone()))?;
            push(&mut plan, name, whole_gpu(gpu));
            continue;
        }
        if gpu.mig_devices.is_empty() {
            tracing::warn!(
                gpu = gpu.index,
                "MIG is enabled on this GPU but it has no MIG devices"
            );
        }
        for (slot, mig) in gpu.mig_devices.iter().enumerate() {
            let name = first_match(&mig_patterns, &mig.profile)
                .ok_or_else(|| PlanError::UnmatchedMigProfile(mig.profile.clone()))?;
            push(&mut plan, name, mig_device(gpu, slot, mig));
        }
    }
    let plan = super::replicas::apply(plan, options.sharing.as_ref())?;
    super::mps::check_clients(&plan, inventory)?;
    for resource in plan.values() {
        check_ids(resource)?;
    }
    Ok(plan)
}

fn push(plan: &mut Plan, name: &str, device: Device) {
    plan.entry(name.to_string())
        .or_insert_with(|| Resource {
            name: name.to_string(),
            devices: Vec::new(),
            sharing: None,
        })
        .devices
        .push(device);
}

fn first_match<'a>(patterns: &'a [NamedPattern], s: &str) -> Option<&'a str> {
    patterns
        .iter()
        .find(|p| p.matches(s))
        .map(|p| p.name.as_str())
}

fn with_default_gpu_pattern(user: &[NamedPattern]) -> Vec<NamedPattern> {
    let mut all = user.to_vec();
    all.push(NamedPattern::new("*", format!("{RESOURCE_PREFIX}gpu")));
    all
}

/// NVIDIA's defaults: under `single` every MIG device is `nvidia.com/gpu`; under
/// `mixed` each profile whose compute slices equal its GPU slices gets
/// `nvidia.com/mig-<profile>` with `+` replaced by `.`.
fn with_default_mig_patterns(
    user: &[NamedPattern],
    strategy: MigStrategy,
    gpus: &[&Gpu],
) -> Vec<NamedPattern> {
    let mut all = user.to_vec();
    match strategy {
        MigStrategy::None => {}
        MigStrategy::Single => all.push(NamedPattern::new("*", format!("{RESOURCE_PREFIX}gpu"))),
        MigStrategy::Mixed => {
            let mut seen = HashSet::new();
            for mig in gpus.iter().flat_map(|g| &g.mig_devices) {
                if is_full_compute_profile(&mig.profile) && seen.insert(mig.profile.as_str()) {
                    let name = format!("{RESOURCE_PREFIX}mig-{}", mig.profile.replace('+', "."));
                    all.push(NamedPattern::new(mig.profile.clone(), name));
                }
            }
        }
    }
    all
}

/// A profile is `<G>g.<GB>gb[suffix]` when compute slices equal GPU slices, and
/// `<C>c.<G>g.<GB>gb[suffix]` otherwise.
fn is_full_compute_profile(profile: &str) -> bool {
    let head = profile.split('.').next().unwrap_or("");
    !head.ends_with('c')
}

fn validate_single(gpus: &[&Gpu]) -> Result<(), PlanError> {
    if let Some(gpu) = gpus
        .iter()
        .find(|g| g.mig_enabled && g.mig_devices.is_empty())
    {
        return Err(PlanError::NoMigDevices(gpu.index));
    }
    let enabled = gpus.iter().filter(|g| g.mig_enabled).count();
    if enabled != 0 && enabled != gpus.len() {
        return Err(PlanError::MixedMigEnabled);
    }
    let mut kinds = gpus
        .iter()
        .flat_map(|g| &g.mig_devices)
        .map(|m| (m.profile.as_str(), m.memory_mib));
    if let Some(first) = kinds.next()
        && kinds.any(|k| k != first)
    {
        return Err(PlanError::MixedMigTypes);
    }
    Ok(())
}

fn whole_gpu(gpu: &Gpu) -> Device {
    Device {
        id: gpu.uuid.clone(),
        uuid: gpu.uuid.clone(),
        index: gpu.index.to_string(),
        gpu_uuid: gpu.uuid.clone(),
        gpu_index: gpu.index,
        mig: None,
        replica: None,
        numa_node: gpu.numa_node,
        paths: vec![format!("/dev/nvidia{}", gpu.minor)],
    }
}

fn mig_device(gpu: &Gpu, slot: usize, mig: &MigDevice) -> Device {
    let mut paths = Vec::with_capacity(1 + mig.cap_paths.len());
    paths.push(format!("/dev/nvidia{}", gpu.minor));
    paths.extend(mig.cap_paths.iter().cloned());
    Device {
        id: mig.uuid.clone(),
        uuid: mig.uuid.clone(),
        index: format!("{}:{slot}", gpu.index),
        gpu_uuid: gpu.uuid.clone(),
        gpu_index: gpu.index,
        mig: Some(MigPlacement {
            gpu_instance_id: mig.gpu_instance_id,
            compute_instance_id: mig.compute_instance_id,
        }),
        replica: None,
        numa_node: gpu.numa_node,
        paths,
    }
}

/// Every device ID is unique within its resource and at most 63 characters.
pub(crate) fn check_ids(resource: &Resource) -> Result<(), PlanError> {
    let mut seen = HashSet::with_capacity(resource.devices.len());
    for d in &resource.devices {
        if d.id.len() > MAX_DEVICE_ID_LEN {
            return Err(PlanError::IdTooLong {
                resource: resource.name.clone(),
                id: d.id.clone(),
                len: d.id.len(),
            });
        }
        if !seen.insert(d.id.as_str()) {
            return Err(PlanError::DuplicateId {
                resource: resource.name.clone(),
                id: d.id.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
