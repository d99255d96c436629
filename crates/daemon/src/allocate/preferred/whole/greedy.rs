//! Greedy search for nodes with more candidates than the exact search takes.

use super::{Rank, Search};

impl Search<'_> {
    /// Greedy growth from `required`, or from each candidate in turn when
    /// nothing is required; the best grown set wins.
    pub(super) fn greedy(&self) -> Vec<usize> {
        let mut best: Option<(Rank, Vec<usize>)> = None;
        let seeds: Vec<Option<usize>> = if self.base_mask == 0 {
            (0..self.candidates.len()).map(Some).collect()
        } else {
            vec![None]
        };
        for seed in seeds {
            let (rank, set) = self.grow(seed);
            let better = match &best {
                None => true,
                Some((b, s)) => rank.better_than(b) || (rank == *b && set < *s),
            };
            if better {
                best = Some((rank, set));
            }
        }
        best.map(|(_, set)| set).unwrap_or_default()
    }

    fn grow(&self, seed: Option<usize>) -> (Rank, Vec<usize>) {
        let m = self.candidates.len();
        let mut gain = self.required_gain.clone();
        let mut taken = vec![false; m];
        let mut chosen = Vec::with_capacity(self.picks);
        let (mut mask, mut internal, mut reach) =
            (self.base_mask, self.base_internal, self.base_reach);
        let mut next = seed;
        while chosen.len() < self.picks {
            let pick = next.take().or_else(|| {
                (0..m)
                    .filter(|&p| !taken.get(p).copied().unwrap_or(true))
                    .min_by_key(|&p| {
                        let g = gain.get(p).copied().unwrap_or(0);
                        let r = self.reach.get(p).copied().unwrap_or(0);
                        (
                            (mask | self.slot_bucket(p)).count_ones(),
                            u64::MAX - g,
                            r,
                            p,
                        )
                    })
            });
            let Some(p) = pick else { break };
            if let Some(t) = taken.get_mut(p) {
                *t = true;
            }
            mask |= self.slot_bucket(p);
            internal += gain.get(p).copied().unwrap_or(0);
            reach += self.reach.get(p).copied().unwrap_or(0);
            for (q, g) in gain.iter_mut().enumerate() {
                *g += self.pair(p, q);
            }
            chosen.push(p);
        }
        chosen.sort_unstable();
        (self.rank(mask, internal, reach), chosen)
    }
}
