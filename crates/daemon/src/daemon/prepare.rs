//! Preparing a plan for serving: the plan (`resources::plan`) of inventory +
//! settings + config file, each resource with its index and preferred-allocation
//! tables, and the Allocate options; snapshots are cut from it with each
//! health change. Pure apart from `control_nodes`, which looks at /dev once
//! per plan.
//!
//! Words: a *plan* is which resources carry which devices; *prepared* is a
//! plan ready to serve; a *snapshot* is a prepared resource with its health.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::allocate::preferred::Preferrer;
use crate::allocate::response::{AllocateOptions, CONTROL_NODES, CdiAllocate, MpsPaths};
use crate::config::{DeviceListStrategy, Settings, v1};
use crate::gpu::Inventory;
use crate::plugin::Snapshot;
use crate::resources::{Device, PlanError, PlanOptions, Resource, SharingKind, device_index, plan};

/// A resource of the plan with its precomputed preferred-allocation tables; the
/// resource and its index are shared (`Arc`) with every snapshot served.
pub struct PreparedResource {
    pub resource: Arc<Resource>,
    pub preferrer: Arc<Preferrer>,
}

/// A plan ready to serve: what the daemon serves, before health is applied.
pub struct Prepared {
    pub inventory: Inventory,
    pub resources: BTreeMap<String, PreparedResource>,
    pub options: Arc<AllocateOptions>,
    /// MPS resources held back until their control daemon has started.
    pub pending_mps: Vec<String>,
}

impl Prepared {
    /// Snapshots to serve, each device's health given by `healthy`.
    pub fn snapshots(&self, healthy: &dyn Fn(&str, &Device) -> bool) -> BTreeMap<String, Snapshot> {
        self.resources
            .iter()
            .map(|(name, planned)| {
                let health = planned
                    .resource
                    .devices
                    .iter()
                    .map(|d| healthy(name, d))
                    .collect();
                let snapshot =
                    Snapshot::new(health, self.options.clone(), planned.preferrer.clone());
                (name.clone(), snapshot)
            })
            .collect()
    }

    /// UUIDs of the physical GPUs on the node.
    pub fn gpu_uuids(&self) -> Vec<String> {
        self.inventory.gpus.iter().map(|g| g.uuid.clone()).collect()
    }
}

/// Marker file the MPS control daemon writes once it serves a resource.
pub fn mps_started_marker(mps_root: &str, resource: &str) -> std::path::PathBuf {
    std::path::Path::new(mps_root)
        .join(resource)
        .join(".started")
}

/// The NVIDIA control device nodes present in this container.
pub fn control_nodes() -> Vec<String> {
    CONTROL_NODES
        .iter()
        .filter(|p| std::path::Path::new(p).exists())
        .map(|p| p.to_string())
        .collect()
}

/// Plans the resources and prepares each one for serving.
/// `mps_ready` says whether an MPS resource's daemon has started (checked
/// by the caller, so this stays pure).
pub fn prepare(
    inventory: &Inventory,
    settings: &Settings,
    file: &v1::Config,
    control_nodes: &[String],
    mps_ready: &dyn Fn(&str) -> bool,
) -> Result<Prepared, PlanError> {
    let options = PlanOptions {
        mig_strategy: settings.mig_strategy,
        gpu_patterns: file.resources.gpus.clone(),
        mig_patterns: file.resources.mig.clone(),
        sharing: file.sharing_options(),
    };
    let mut plan = plan(inventory, &options)?;
    let mps_active = file.sharing_strategy() == v1::SharingStrategy::Mps;
    let mut pending_mps = Vec::new();
    if mps_active {
        plan.retain(|name, resource| {
            let shared = resource
                .sharing
                .as_ref()
                .is_some_and(|s| s.kind == SharingKind::Mps);
            let ready = !shared || mps_ready(name);
            if !ready {
                pending_mps.push(name.clone());
            }
            ready
        });
    }
    let allocate = Arc::new(AllocateOptions {
        envvar: settings
            .device_list_strategies
            .contains(&DeviceListStrategy::Envvar),
        volume_mounts: settings
            .device_list_strategies
            .contains(&DeviceListStrategy::VolumeMounts),
        id_strategy: settings.device_id_strategy,
        pass_device_specs: settings.pass_device_specs,
        dev_root: settings.dev_root.clone(),
        control_nodes: control_nodes.to_vec(),
        extra_envs: settings.extra_envs(),
        mps: settings
            .mps_root
            .as_ref()
            .filter(|_| mps_active)
            .map(|root| MpsPaths { root: root.clone() }),
        cdi: settings.uses_cdi().then(|| CdiAllocate {
            annotations: settings
                .device_list_strategies
                .contains(&DeviceListStrategy::CdiAnnotations),
            cri: settings
                .device_list_strategies
                .contains(&DeviceListStrategy::CdiCri),
            annotation_prefix: settings.cdi.annotation_prefix.clone(),
            // Filled in once the gated specs are written.
            gated: Vec::new(),
        }),
    });
    let resources = plan
        .into_iter()
        .map(|(name, resource)| {
            let resource = Arc::new(resource);
            let index = Arc::new(device_index(&resource));
            let preferrer = Arc::new(Preferrer::shared(
                resource.clone(),
                index,
                inventory,
                settings.shared_policy,
            ));
            (
                name,
                PreparedResource {
                    resource,
                    preferrer,
                },
            )
        })
        .collect();
    Ok(Prepared {
        inventory: inventory.clone(),
        resources,
        options: allocate,
        pending_mps,
    })
}
