//! `gpu-device-plugin cdi generate`: writes the node's CDI specs once (the
//! `--simulate` node, or NVML) and prints their paths.

use std::path::{Path, PathBuf};

use gpu_device_plugin::config::{Overrides, Settings};
use gpu_device_plugin::daemon::{BackendChoice, make_backend, read_config_file};

/// Generates into `output` (default `--cdi-root`). Run on a host, the driver
/// root is searched where it is: `--driver-root` unless `--driver-root-ctr-path`.
pub fn generate(
    backend: BackendChoice,
    config_file: Option<&Path>,
    mut overrides: Overrides,
    output: Option<PathBuf>,
) -> anyhow::Result<()> {
    if overrides.container_driver_root.is_none() {
        overrides.container_driver_root = Some(overrides.driver_root.clone().unwrap_or("/".into()));
    }
    if let Some(dir) = output {
        overrides.cdi_root = Some(dir.display().to_string());
    }
    let (file, _) = read_config_file(config_file)?;
    let settings = Settings::resolve(&overrides, &file)?;
    let inventory = make_backend(&backend, &settings)?.inventory()?;
    let written = gpu_device_plugin::cdi::write_specs(&inventory, &settings)?;
    for path in &written.paths {
        println!("{}", path.display());
    }
    Ok(())
}
