//! Preferred allocation (interim: must-include first, then one NUMA node).
use crate::gpu::Inventory;
use crate::resources::Resource;

/// Placement policy for replicas and MIG devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SharedPolicy {
    #[default]
    Distributed,
    Packed,
}

impl SharedPolicy {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "distributed" => Some(Self::Distributed),
            "packed" => Some(Self::Packed),
            _ => None,
        }
    }
}

/// Chooses devices for a request.
pub struct Preferrer {
    ids: Vec<(String, Option<u32>)>,
}

impl Preferrer {
    pub fn new(resource: &Resource, _inventory: &Inventory, _policy: SharedPolicy) -> Self {
        Preferrer {
            ids: resource
                .devices
                .iter()
                .map(|d| (d.id.clone(), d.numa_node))
                .collect(),
        }
    }

    pub fn choose(
        &self,
        available: &[String],
        must_include: &[String],
        size: usize,
    ) -> Vec<String> {
        let mut out: Vec<String> = must_include.iter().take(size).cloned().collect();
        let numa_of = |id: &str| self.ids.iter().find(|(i, _)| i == id).and_then(|(_, n)| *n);
        let want = out.first().and_then(|id| numa_of(id));
        let mut rest: Vec<&String> = available.iter().filter(|id| !out.contains(id)).collect();
        rest.sort_by_key(|id| numa_of(id) != want);
        for id in rest {
            if out.len() >= size {
                break;
            }
            out.push(id.clone());
        }
        out
    }
}
