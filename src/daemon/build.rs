//! From inventory + settings + config file to the snapshots to serve. Pure
//! apart from `control_nodes`, which looks at /dev once per plan.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::allocate::preferred::Preferrer;
use crate::allocate::response::{AllocateOptions, CONTROL_NODES};
use crate::config::{DeviceListStrategy, Settings, v1};
use crate::gpu::Inventory;
use crate::plugin::Snapshot;
use crate::resources::{PlanError, PlanOptions, plan};

/// What the daemon should serve.
pub struct Desired {
    pub settings: Settings,
    pub snapshots: BTreeMap<String, Snapshot>,
}

/// The NVIDIA control device nodes present in this container.
pub fn control_nodes() -> Vec<String> {
    CONTROL_NODES
        .iter()
        .filter(|p| std::path::Path::new(p).exists())
        .map(|p| p.to_string())
        .collect()
}

/// Plans the resources and prepares a snapshot for each.
pub fn build_desired(
    inventory: &Inventory,
    settings: &Settings,
    _file: &v1::Config,
    control_nodes: &[String],
) -> Result<Desired, PlanError> {
    let options = PlanOptions {
        mig_strategy: settings.mig_strategy,
        ..Default::default()
    };
    let plan = plan(inventory, &options)?;
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
        mps: None,
    });
    let snapshots = plan
        .into_iter()
        .map(|(name, resource)| {
            let preferrer = Arc::new(Preferrer::new(&resource, inventory, settings.shared_policy));
            let healthy = vec![true; resource.devices.len()];
            (
                name,
                Snapshot::new(resource, healthy, allocate.clone(), preferrer),
            )
        })
        .collect();
    Ok(Desired {
        settings: settings.clone(),
        snapshots,
    })
}
