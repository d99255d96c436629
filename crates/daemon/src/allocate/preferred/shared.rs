//! Replica and MIG preferred allocation: NVIDIA's greedy `distributed` and
//! `packed` policies (reference §4.1) over physical GPUs, kept on one NUMA node
//! where possible.
//!
//! Devices are grouped by physical GPU (`Device::gpu_uuid`). For MIG devices
//! NVIDIA groups by the MIG UUID itself; we deliberately group by the parent GPU
//! so that `distributed` spreads a request over GPUs, not over slices of one GPU.
//! A group's "allocated" count is its devices known to the resource minus those
//! offered as candidates (so `must_include` devices count as allocated), and
//! grows by one with each pick.
//!
//! - `distributed`: fewest picks from the group in this request first (a
//!   request spreads over distinct GPUs), then fewest allocated.
//! - `packed`: most allocated first, then fewest picks in this request.
//!
//! Both first prefer the target NUMA node: the node of the `must_include`
//! devices, else the node that can hold the whole request and holds the group
//! the policy ranks best. Remaining ties go to the lowest GPU index, and within
//! a group devices are taken in resource order.

use std::cmp::Reverse;
use std::collections::HashMap;

use super::SharedPolicy;
use crate::resources::Device;

/// Devices grouped by physical GPU, groups ordered by GPU index then UUID.
#[derive(Debug, Clone)]
pub(super) struct Groups {
    /// Group of each device, by device position.
    group_of: Vec<usize>,
    /// Device positions of each group, in resource order.
    members: Vec<Vec<usize>>,
    /// NUMA node of each group.
    numa: Vec<Option<u32>>,
}

impl Groups {
    pub(super) fn new(devices: &[Device]) -> Self {
        let mut keys: Vec<(u32, &str)> = devices
            .iter()
            .map(|d| (d.gpu_index, d.gpu_uuid.as_str()))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let index: HashMap<(u32, &str), usize> =
            keys.iter().enumerate().map(|(g, k)| (*k, g)).collect();
        let mut members = vec![Vec::new(); keys.len()];
        let mut numa = vec![None; keys.len()];
        let mut group_of = Vec::with_capacity(devices.len());
        for (i, d) in devices.iter().enumerate() {
            let g = index
                .get(&(d.gpu_index, d.gpu_uuid.as_str()))
                .copied()
                .unwrap_or(0);
            group_of.push(g);
            if let Some(list) = members.get_mut(g) {
                list.push(i);
            }
            if let Some(n) = numa.get_mut(g) {
                *n = n.or(d.numa_node);
            }
        }
        Groups {
            group_of,
            members,
            numa,
        }
    }

    /// Picks `picks` of `candidates` (device positions, disjoint from
    /// `required`, more of them than `picks`); returns them in pick order.
    pub(super) fn choose(
        &self,
        policy: SharedPolicy,
        candidates: &[usize],
        required: &[usize],
        picks: usize,
    ) -> Vec<usize> {
        let groups = self.members.len();
        let mut is_candidate = vec![false; self.group_of.len()];
        let mut free = vec![0usize; groups];
        for &c in candidates {
            if let Some(flag) = is_candidate.get_mut(c) {
                *flag = true;
            }
            if let Some(f) = self.group_of.get(c).and_then(|&g| free.get_mut(g)) {
                *f += 1;
            }
        }
        let mut state = State {
            allocated: self
                .members
                .iter()
                .zip(&free)
                .map(|(m, f)| m.len().saturating_sub(*f))
                .collect(),
            free,
            picked: vec![0; groups],
            cursor: vec![0; groups],
        };
        let target = self.target(policy, &state, required, picks);
        let mut chosen = Vec::with_capacity(picks);
        while chosen.len() < picks {
            let Some(g) = self.best_group(policy, &state, target) else {
                break;
            };
            let Some(device) = self.take(g, &mut state, &is_candidate) else {
                break;
            };
            chosen.push(device);
        }
        chosen
    }

    /// The NUMA node to fill first, if any.
    fn target(
        &self,
        policy: SharedPolicy,
        state: &State,
        required: &[usize],
        picks: usize,
    ) -> Option<u32> {
        let mut counts: Vec<(u32, usize)> = Vec::new();
        for node in required
            .iter()
            .filter_map(|&r| self.group_of.get(r))
            .filter_map(|&g| self.numa.get(g).copied().flatten())
        {
            match counts.iter_mut().find(|(n, _)| *n == node) {
                Some(e) => e.1 += 1,
                None => counts.push((node, 1)),
            }
        }
        if let Some((node, _)) = counts.iter().max_by_key(|(n, c)| (*c, Reverse(*n))) {
            return Some(*node);
        }
        // The node that can hold the whole request, holding the best-ranked group.
        let mut capacity: Vec<(u32, usize)> = Vec::new();
        for (g, f) in state.free.iter().enumerate() {
            if let Some(node) = self.numa.get(g).copied().flatten() {
                match capacity.iter_mut().find(|(n, _)| *n == node) {
                    Some(e) => e.1 += f,
                    None => capacity.push((node, *f)),
                }
            }
        }
        (0..self.members.len())
            .filter(|&g| state.free.get(g).is_some_and(|&f| f > 0))
            .filter_map(|g| self.numa.get(g).copied().flatten().map(|n| (g, n)))
            .filter(|(_, n)| capacity.iter().any(|(c, f)| c == n && *f >= picks))
            .min_by_key(|&(g, _)| self.key(policy, state, None, g))
            .map(|(_, n)| n)
    }

    fn key(
        &self,
        policy: SharedPolicy,
        state: &State,
        target: Option<u32>,
        g: usize,
    ) -> (bool, usize, usize, usize) {
        let off_target = target.is_some_and(|t| self.numa.get(g).copied().flatten() != Some(t));
        let picked = state.picked.get(g).copied().unwrap_or(0);
        let allocated = state.allocated.get(g).copied().unwrap_or(0);
        match policy {
            SharedPolicy::Distributed => (off_target, picked, allocated, g),
            SharedPolicy::Packed => (off_target, usize::MAX - allocated, picked, g),
        }
    }

    fn best_group(
        &self,
        policy: SharedPolicy,
        state: &State,
        target: Option<u32>,
    ) -> Option<usize> {
        (0..self.members.len())
            .filter(|&g| state.free.get(g).is_some_and(|&f| f > 0))
            .min_by_key(|&g| self.key(policy, state, target, g))
    }

    /// Takes the group's next candidate device in resource order.
    fn take(&self, g: usize, state: &mut State, is_candidate: &[bool]) -> Option<usize> {
        let members = self.members.get(g)?;
        let cursor = state.cursor.get_mut(g)?;
        while let Some(&device) = members.get(*cursor) {
            *cursor += 1;
            if is_candidate.get(device).copied().unwrap_or(false) {
                if let Some(f) = state.free.get_mut(g) {
                    *f = f.saturating_sub(1);
                }
                for counter in [&mut state.allocated, &mut state.picked] {
                    if let Some(c) = counter.get_mut(g) {
                        *c += 1;
                    }
                }
                return Some(device);
            }
        }
        None
    }
}

/// Per-request counters, by group.
struct State {
    free: Vec<usize>,
    allocated: Vec<usize>,
    picked: Vec<usize>,
    cursor: Vec<usize>,
}

#[cfg(test)]
#[path = "shared_tests.rs"]
mod tests;
