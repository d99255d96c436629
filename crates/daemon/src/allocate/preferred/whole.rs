//! Whole-GPU preferred allocation: the set of GPUs with the best pair affinity,
//! on as few NUMA nodes as possible.
//!
//! Pair scores follow NVIDIA's go-gpuallocator (reference §4.1): the sum of the
//! pair's links, 100 per NVLink plus the PCI relation. We know the PCI relation
//! only through NUMA nodes: same node scores as SameCPU (20), a different or
//! unknown node as CrossCPU (10). A set is ranked by, in order: fewest NUMA
//! nodes spanned, highest total pair score inside the set, lowest score towards
//! the available GPUs left behind (keeps good sets whole for later requests),
//! then lowest device positions. Exhaustive up to [`EXACT_LIMIT`] candidates,
//! greedy beyond.

mod exact;
mod greedy;

use std::collections::HashMap;

use crate::gpu::{Gpu, Inventory};
use crate::resources::Device;

const NVLINK_SCORE: u64 = 100;
const SAME_CPU_SCORE: u64 = 20;
const CROSS_CPU_SCORE: u64 = 10;
/// Up to this many candidates the search is exhaustive; beyond it, greedy.
pub(super) const EXACT_LIMIT: usize = 16;
/// NUMA nodes are bits of a `u64`; a 65th distinct node shares the last bit.
const MAX_BUCKET: usize = 63;

/// Pair scores and NUMA buckets of a resource's whole GPUs, by device position.
#[derive(Debug, Clone)]
pub(super) struct Affinity {
    n: usize,
    /// `n × n` pair scores, 0 on the diagonal.
    scores: Vec<u64>,
    /// One bit per distinct NUMA node (unknown is a node of its own).
    buckets: Vec<u64>,
}

impl Affinity {
    pub(super) fn new(devices: &[Device], inventory: &Inventory) -> Self {
        let by_uuid: HashMap<&str, &Gpu> = inventory
            .gpus
            .iter()
            .map(|g| (g.uuid.as_str(), g))
            .collect();
        let gpus: Vec<Option<&Gpu>> = devices
            .iter()
            .map(|d| by_uuid.get(d.gpu_uuid.as_str()).copied())
            .collect();
        let mut nodes: Vec<Option<u32>> = Vec::new();
        let buckets = devices
            .iter()
            .map(|d| {
                let pos = nodes
                    .iter()
                    .position(|n| *n == d.numa_node)
                    .unwrap_or_else(|| {
                        nodes.push(d.numa_node);
                        nodes.len() - 1
                    });
                1u64 << pos.min(MAX_BUCKET)
            })
            .collect();
        let n = devices.len();
        let mut scores = vec![0; n * n];
        for (i, (a, ga)) in devices.iter().zip(&gpus).enumerate() {
            for (j, (b, gb)) in devices.iter().zip(&gpus).enumerate() {
                if i == j {
                    continue;
                }
                let links = nvlinks(*ga, *gb).max(nvlinks(*gb, *ga));
                let pci = match (a.numa_node, b.numa_node) {
                    (Some(x), Some(y)) if x == y => SAME_CPU_SCORE,
                    _ => CROSS_CPU_SCORE,
                };
                if let Some(s) = scores.get_mut(i * n + j) {
                    *s = NVLINK_SCORE * links + pci;
                }
            }
        }
        Affinity { n, scores, buckets }
    }

    fn score(&self, i: usize, j: usize) -> u64 {
        self.scores.get(i * self.n + j).copied().unwrap_or(0)
    }

    fn bucket(&self, i: usize) -> u64 {
        self.buckets.get(i).copied().unwrap_or(1 << MAX_BUCKET)
    }

    /// Picks `picks` of `candidates` (ascending positions, disjoint from
    /// `required`, more of them than `picks`) to join `required`; returns them
    /// ascending.
    pub(super) fn choose(
        &self,
        required: &[usize],
        candidates: &[usize],
        picks: usize,
    ) -> Vec<usize> {
        let search = Search::new(self, required, candidates, picks);
        let chosen = if candidates.len() <= EXACT_LIMIT {
            search.exact()
        } else {
            search.greedy()
        };
        chosen
            .iter()
            .filter_map(|&p| candidates.get(p).copied())
            .collect()
    }
}

/// Active NVLinks from `a` to `b`.
fn nvlinks(a: Option<&Gpu>, b: Option<&Gpu>) -> u64 {
    match (a, b) {
        (Some(a), Some(b)) => a
            .nvlinks
            .iter()
            .filter(|l| l.peer == b.index)
            .map(|l| u64::from(l.links))
            .sum(),
        _ => 0,
    }
}

/// Rank of a complete set; see the module comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rank {
    numa: u32,
    internal: u64,
    external: u64,
}

impl Rank {
    fn better_than(&self, other: &Rank) -> bool {
        (self.numa, other.internal, self.external) < (other.numa, self.internal, other.external)
    }
}

/// One request's view of the affinity, by candidate slot (index into `candidates`).
struct Search<'a> {
    affinity: &'a Affinity,
    candidates: &'a [usize],
    picks: usize,
    /// NUMA nodes of `required`, and the least number of nodes any answer spans.
    base_mask: u64,
    numa_limit: u32,
    /// Pair score inside `required`, and their scores towards everyone else.
    base_internal: u64,
    base_reach: u64,
    /// Per candidate slot: score towards `required`, and towards all of
    /// `required` ∪ `candidates`.
    required_gain: Vec<u64>,
    reach: Vec<u64>,
    min_reach: u64,
}

impl<'a> Search<'a> {
    fn new(
        affinity: &'a Affinity,
        required: &[usize],
        candidates: &'a [usize],
        picks: usize,
    ) -> Self {
        let t = affinity;
        let reach_of = |x: usize| -> u64 {
            required
                .iter()
                .chain(candidates)
                .map(|&y| t.score(x, y))
                .sum()
        };
        let base_mask = required.iter().fold(0, |m, &r| m | t.bucket(r));
        let mut base_internal = 0;
        for (k, &a) in required.iter().enumerate() {
            for &b in required.iter().skip(k + 1) {
                base_internal += t.score(a, b);
            }
        }
        let base_reach = required.iter().map(|&r| reach_of(r)).sum();
        let required_gain: Vec<u64> = candidates
            .iter()
            .map(|&c| required.iter().map(|&r| t.score(r, c)).sum())
            .collect();
        let reach: Vec<u64> = candidates.iter().map(|&c| reach_of(c)).collect();
        let numa_limit = min_numa_nodes(t, base_mask, candidates, picks);
        Search {
            affinity,
            candidates,
            picks,
            base_mask,
            numa_limit,
            base_internal,
            base_reach,
            required_gain,
            min_reach: reach.iter().copied().min().unwrap_or(0),
            reach,
        }
    }

    fn pair(&self, p: usize, q: usize) -> u64 {
        match (self.candidates.get(p), self.candidates.get(q)) {
            (Some(&a), Some(&b)) => self.affinity.score(a, b),
            _ => 0,
        }
    }

    fn slot_bucket(&self, p: usize) -> u64 {
        self.candidates
            .get(p)
            .map_or(0, |&c| self.affinity.bucket(c))
    }

    fn rank(&self, mask: u64, internal: u64, reach: u64) -> Rank {
        Rank {
            numa: mask.count_ones(),
            internal,
            external: reach.saturating_sub(2 * internal),
        }
    }
}

/// The fewest NUMA nodes a set of `required` plus `picks` candidates can span:
/// the required nodes, then the nodes with the most candidates.
fn min_numa_nodes(t: &Affinity, base_mask: u64, candidates: &[usize], picks: usize) -> u32 {
    let mut inside = 0;
    let mut others: Vec<(u64, usize)> = Vec::new();
    for &c in candidates {
        let b = t.bucket(c);
        if base_mask & b != 0 {
            inside += 1;
        } else if let Some(e) = others.iter_mut().find(|(m, _)| *m == b) {
            e.1 += 1;
        } else {
            others.push((b, 1));
        }
    }
    others.sort_unstable_by_key(|&(_, count)| std::cmp::Reverse(count));
    let mut nodes = base_mask.count_ones();
    let mut covered = inside;
    for (_, count) in others {
        if covered >= picks {
            break;
        }
        covered += count;
        nodes += 1;
    }
    nodes
}

#[cfg(test)]
#[path = "whole_tests.rs"]
mod tests;
