//! Writing this node's specs: the settings turned into generation options
//! (one `stat` for the dev root), discovery on disk, generation, and the
//! atomic writes: the `gpu` spec always, each gated spec whose switch is on
//! and whose nodes exist. Blocking file I/O: the daemon calls it off its loop.

use std::path::PathBuf;

use super::discover::discover_gated;
use super::gated::{GATED, gated_spec};
use super::{CdiError, CdiOptions, Roots, discover, gpu_spec, spec_file_name, write_spec};
use crate::config::Settings;
use crate::gpu::Inventory;

/// Where DRM nodes are looked up (the plugin's own sysfs).
const SYSFS: &str = "/sys";

/// What a write put on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The files written, the `gpu` spec first.
    pub paths: Vec<PathBuf>,
    /// The gated classes written (switch on, nodes present), in [`GATED`] order.
    pub gated: Vec<String>,
}

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
        no_additional_gids: has_flag(settings, "no-additional-gids-for-device-nodes"),
    }
}

fn has_flag(settings: &Settings, flag: &str) -> bool {
    settings.cdi.feature_flags.iter().any(|f| f == flag)
}

/// Generates and writes the specs into `settings.cdi.root`:
/// `k8s.device-plugin.nvidia.com-gpu.json`, and `…-<class>.json` for each
/// gated class that is enabled and found (an empty one is skipped, as NVIDIA
/// does; a file left from earlier is not removed, as NVIDIA does neither).
pub fn write_specs(inventory: &Inventory, settings: &Settings) -> Result<Written, CdiError> {
    let opts = options(settings);
    let mut files = discover(inventory, &opts.roots, std::path::Path::new(SYSFS))?;
    if has_flag(settings, "disable-ipc-discoverer") {
        files.ipc_sockets.clear();
    }
    let gpu = gpu_spec(inventory, &files, &opts)?;
    let mut written = Written {
        paths: vec![write_spec(
            &settings.cdi.root,
            &spec_file_name(super::CLASS),
            &gpu,
        )?],
        gated: Vec::new(),
    };
    let enabled = [
        settings.gdrcopy_enabled,
        settings.gds_enabled,
        settings.mofed_enabled,
    ];
    for (class, on) in GATED.iter().zip(enabled) {
        if !on {
            continue;
        }
        let Some(spec) = gated_spec(class, &discover_gated(class, &opts.roots), &opts) else {
            tracing::debug!(
                class,
                "no device nodes for this CDI class: its spec is not written"
            );
            continue;
        };
        written.paths.push(write_spec(
            &settings.cdi.root,
            &spec_file_name(class),
            &spec,
        )?);
        written.gated.push(class.to_string());
    }
    Ok(written)
}
