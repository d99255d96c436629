//! Time-sliced replicas of the built-in node's GPUs for the large-device
//! figures, planned through the real config path (a `sharing.timeSlicing`
//! config, `<uuid>::<n>` IDs).

use super::BenchError;
use gpu_device_plugin::config::{Overrides, Settings, v1};
use gpu_device_plugin::daemon::prepare;
use gpu_device_plugin::gpu::Backend;
use gpu_device_plugin::gpu::simulated::Simulated;
use gpu_device_plugin::plugin::Snapshot;

/// The resource every bench figure uses.
pub const GPU: &str = "nvidia.com/gpu";

/// A time-slicing config giving every GPU `replicas` replicas.
pub fn time_slicing_config(replicas: u32) -> String {
    format!(
        "version: v1\nsharing:\n  timeSlicing:\n    resources:\n    - name: {GPU}\n      replicas: {replicas}\n"
    )
}

/// `nvidia.com/gpu` of the built-in node with each GPU replicated `replicas` times.
pub fn replicated(replicas: u32) -> Result<Snapshot, BenchError> {
    let setup = |e: &dyn std::fmt::Display| BenchError::Setup(e.to_string());
    let inventory = Simulated::builtin().inventory().map_err(|e| setup(&e))?;
    let config = v1::parse(&time_slicing_config(replicas)).map_err(|e| setup(&e))?;
    let settings = Settings::resolve(&Overrides::default(), &config).map_err(|e| setup(&e))?;
    let prepared =
        prepare(&inventory, &settings, &config, &[], &|_| true).map_err(|e| setup(&e))?;
    prepared
        .snapshots(&|_, _| true)
        .remove(GPU)
        .ok_or_else(|| BenchError::Setup(format!("the built-in node plans no {GPU}")))
}
