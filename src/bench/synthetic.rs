//! Time-sliced replicas of the built-in node's GPUs, built directly as a
//! snapshot (`<uuid>::<n>` IDs, as NVIDIA names replicas), for the
//! large-device figures. The config schema for `sharing` is not in this
//! branch, so the daemon cannot plan replicas itself yet.

use std::sync::Arc;

use super::BenchError;
use crate::allocate::preferred::{Preferrer, SharedPolicy};
use crate::config::{Overrides, Settings, v1};
use crate::daemon::build_desired;
use crate::gpu::Backend;
use crate::gpu::simulated::Simulated;
use crate::plugin::Snapshot;
use crate::resources::{Device, Resource, Sharing, SharingKind};

/// The resource every bench figure uses.
pub const GPU: &str = "nvidia.com/gpu";

/// `nvidia.com/gpu` of the built-in node with each GPU replicated `replicas` times.
pub fn replicated(replicas: u32) -> Result<Snapshot, BenchError> {
    let setup = |e: &dyn std::fmt::Display| BenchError::Setup(e.to_string());
    let inventory = Simulated::builtin().inventory().map_err(|e| setup(&e))?;
    let settings =
        Settings::resolve(&Overrides::default(), &v1::Flags::default()).map_err(|e| setup(&e))?;
    let mut desired =
        build_desired(&inventory, &settings, &v1::Config::default(), &[]).map_err(|e| setup(&e))?;
    let base = desired
        .snapshots
        .remove(GPU)
        .ok_or_else(|| BenchError::Setup(format!("the built-in node plans no {GPU}")))?;
    let devices: Vec<Device> = base
        .resource
        .devices
        .iter()
        .flat_map(|d| {
            (0..replicas).map(move |n| Device {
                id: format!("{}::{n}", d.uuid),
                replica: Some(n),
                ..d.clone()
            })
        })
        .collect();
    let resource = Resource {
        name: GPU.to_string(),
        devices,
        sharing: Some(Sharing {
            kind: SharingKind::TimeSlicing,
            fail_requests_greater_than_one: false,
        }),
    };
    let preferrer = Arc::new(Preferrer::new(
        &resource,
        &inventory,
        SharedPolicy::Distributed,
    ));
    let healthy = vec![true; resource.devices.len()];
    Ok(Snapshot::new(
        resource,
        healthy,
        base.options.clone(),
        preferrer,
    ))
}
