//! MPS client limits: an MPS server accepts at most 48 clients per device on
//! compute capability 7.5 and later, 16 before (NVIDIA's mps-control-daemon,
//! reference Appendix A). More MPS replicas than that would be advertised but
//! could never all run, so the plan refuses them.

use std::collections::BTreeMap;

use super::{Plan, PlanError, SharingKind};
use crate::gpu::Inventory;

/// Most MPS clients a device of compute capability `cc` (`"7.5"`, `"v7.5"`)
/// accepts; `None` when `cc` cannot be read.
pub fn max_clients(cc: &str) -> Option<u32> {
    let cc = cc.strip_prefix('v').unwrap_or(cc);
    let (major, minor) = cc.split_once('.')?;
    let version = (major.parse::<u32>().ok()?, minor.parse::<u32>().ok()?);
    Some(if version >= (7, 5) { 48 } else { 16 })
}

/// Refuses MPS resources with more replicas per device than MPS allows.
pub fn check_clients(plan: &Plan, inventory: &Inventory) -> Result<(), PlanError> {
    for resource in plan.values() {
        if resource.sharing.as_ref().map(|s| s.kind) != Some(SharingKind::Mps) {
            continue;
        }
        let mut per_device: BTreeMap<&str, (u32, u32)> = BTreeMap::new();
        for d in &resource.devices {
            per_device
                .entry(d.uuid.as_str())
                .or_insert((d.gpu_index, 0))
                .1 += 1;
        }
        for (uuid, (gpu_index, replicas)) in per_device {
            let cc = inventory
                .gpus
                .iter()
                .find(|g| g.index == gpu_index)
                .and_then(|g| g.compute_capability.as_deref());
            let Some(max) = cc.and_then(max_clients) else {
                continue;
            };
            if replicas > max {
                return Err(PlanError::MpsClients {
                    resource: resource.name.clone(),
                    device: uuid.to_string(),
                    replicas,
                    max,
                    cc: cc.unwrap_or_default().to_string(),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::simulated::parse_node;
    use crate::resources::replicas::DeviceSelector;
    use crate::resources::{PlanOptions, ReplicaRule, SharingOptions, plan};

    #[test]
    fn max_clients_by_compute_capability() {
        let cases = [
            ("7.5", Some(48)),
            ("v7.5", Some(48)),
            ("9.0", Some(48)),
            ("7.0", Some(16)),
            ("x", None),
            ("", None),
        ];
        for (cc, want) in cases {
            assert_eq!(max_clients(cc), want, "{cc}");
        }
    }

    fn mps_plan(cc: &str, replicas: u32) -> Result<Plan, PlanError> {
        let node = format!(
            "gpus:\n  - {{index: 0, uuid: GPU-0, name: V, memoryMiB: 1, pciBusId: \"0000:01:00.0\", computeCapability: \"{cc}\"}}\n"
        );
        let inventory = parse_node(&node, "test").unwrap().inventory;
        let options = PlanOptions {
            sharing: Some(SharingOptions {
                kind: SharingKind::Mps,
                fail_requests_greater_than_one: true,
                rules: vec![ReplicaRule {
                    name: "nvidia.com/gpu".into(),
                    rename: None,
                    devices: DeviceSelector::All,
                    replicas,
                }],
            }),
            ..Default::default()
        };
        plan(&inventory, &options)
    }

    #[test]
    fn mps_replicas_beyond_the_client_limit_are_refused() {
        // NVIDIA's vectors: 29 on 7.0 fails, 16 passes; 49 on 9.0 fails, 48 passes.
        let cases = [
            ("7.0", 29, false),
            ("7.0", 16, true),
            ("9.0", 49, false),
            ("9.0", 48, true),
        ];
        for (cc, replicas, ok) in cases {
            assert_eq!(mps_plan(cc, replicas).is_ok(), ok, "{cc} x{replicas}");
        }
        assert_eq!(
            mps_plan("7.0", 29).unwrap_err().to_string(),
            "nvidia.com/gpu: MPS accepts at most 16 clients per device of compute capability 7.0, \
             but device GPU-0 has 29 replicas; lower `replicas`"
        );
    }
}
