//! Writing this node's `gpu` spec: the settings turned into generation
//! options (one `stat` for the dev root), discovery on disk, generation, and
//! the atomic write. Blocking file I/O: the daemon calls it off its loop.

use std::path::PathBuf;

use super::{CdiError, CdiOptions, Roots, Spec, discover, gpu_spec, spec_file_name, write_spec};
use crate::config::Settings;
use crate::gpu::Inventory;

/// The generation options of `settings` (looks whether the container driver
/// root has a `dev` directory).
pub fn options(settings: &Settings) -> CdiOptions {
    let ctr = settings.container_driver_root.to_string_lossy().to_string();
    CdiOptions {
        roots: Roots {
            container_dev_root: super::container_dev_root(&ctr),
            container_driver_root: ctr,
            host_driver_root: settings.driver_root.clone(),
            host_dev_root: settings.dev_root.clone(),
        },
        hook_path: settings.cdi.hook_path.clone(),
        id_strategy: settings.device_id_strategy,
        mig_strategy: settings.mig_strategy,
        disabled_hooks: settings.cdi.disabled_hooks.clone(),
    }
}

/// The spec of `inventory` as it is on disk now (not written).
pub fn build(inventory: &Inventory, settings: &Settings) -> Result<Spec, CdiError> {
    let opts = options(settings);
    let files = discover(inventory, &opts.roots)?;
    gpu_spec(inventory, &files, &opts)
}

/// Generates and writes `<cdi root>/k8s.device-plugin.nvidia.com-gpu.json`;
/// returns its path and the spec written.
pub fn write_gpu_spec(
    inventory: &Inventory,
    settings: &Settings,
) -> Result<(PathBuf, Spec), CdiError> {
    let spec = build(inventory, settings)?;
    let path = write_spec(&settings.cdi.root, &spec_file_name(super::CLASS), &spec)?;
    Ok((path, spec))
}
