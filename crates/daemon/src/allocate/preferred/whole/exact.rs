//! Exhaustive branch-and-bound search (up to `EXACT_LIMIT` candidates).
//!
//! Sets are visited in lexicographic order of candidate slots, so among equal
//! sets the first wins. A branch is cut when even its best completion cannot
//! beat the best set so far. The pair score it can still gain is bounded twice,
//! and the smaller bound is used: (a) the largest gains of the remaining
//! candidates towards the set so far plus the largest pair scores among all
//! candidates; (b) the largest per-candidate sums of its gain and half its best
//! row scores (each pair among new picks is counted from both ends). On a
//! possible tie, the score towards the GPUs left behind is bounded below by
//! the smallest reach.

use super::{Rank, Search};

/// Mutable state of the walk.
struct Walk {
    /// Chosen candidate slots, ascending.
    chosen: Vec<usize>,
    /// Per slot: pair score towards `required` ∪ `chosen`.
    gain: Vec<u64>,
    best: Option<(Rank, Vec<usize>)>,
    /// `rows[q * m + r]`: sum of the `r` largest pair scores of slot `q`.
    rows: Vec<u64>,
    /// `pair_prefix[k]`: sum of the `k` largest pair scores among candidates.
    pair_prefix: Vec<u64>,
    /// Scratch for the largest values.
    top: Vec<u64>,
}

/// Sum of the `k` largest `values`, using `top` as scratch.
fn top_sum(values: impl Iterator<Item = u64>, k: usize, top: &mut Vec<u64>) -> u64 {
    top.clear();
    for v in values {
        if top.len() < k {
            let at = top.partition_point(|&x| x >= v);
            top.insert(at, v);
        } else if top.last().is_some_and(|&min| v > min) {
            top.pop();
            let at = top.partition_point(|&x| x >= v);
            top.insert(at, v);
        }
    }
    top.iter().sum()
}

impl Search<'_> {
    pub(super) fn exact(&self) -> Vec<usize> {
        let m = self.candidates.len();
        let mut rows = Vec::with_capacity(m * m);
        let mut row = Vec::with_capacity(m);
        for q in 0..m {
            row.clear();
            row.extend((0..m).map(|o| self.pair(q, o)));
            row.sort_unstable_by(|a, b| b.cmp(a));
            let mut sum = 0;
            rows.push(0);
            for s in row.iter().take(m - 1) {
                sum += s;
                rows.push(sum);
            }
        }
        let mut pairs = Vec::with_capacity(m * m / 2);
        for p in 0..m {
            pairs.extend((p + 1..m).map(|q| self.pair(p, q)));
        }
        pairs.sort_unstable_by(|a, b| b.cmp(a));
        let mut pair_prefix = Vec::with_capacity(pairs.len() + 1);
        pair_prefix.push(0);
        for s in pairs {
            pair_prefix.push(pair_prefix.last().copied().unwrap_or(0) + s);
        }
        let mut walk = Walk {
            chosen: Vec::with_capacity(self.picks),
            gain: self.required_gain.clone(),
            best: None,
            rows,
            pair_prefix,
            top: Vec::with_capacity(self.picks + 1),
        };
        let state = (self.base_mask, self.base_internal, self.base_reach);
        self.descend(0, state, &mut walk);
        walk.best.map(|(_, set)| set).unwrap_or_default()
    }

    fn descend(&self, start: usize, (mask, internal, reach): (u64, u64, u64), walk: &mut Walk) {
        let left = self.picks - walk.chosen.len();
        if left == 0 {
            let rank = self.rank(mask, internal, reach);
            if walk.best.as_ref().is_none_or(|(b, _)| rank.better_than(b)) {
                walk.best = Some((rank, walk.chosen.clone()));
            }
            return;
        }
        if let Some(best) = walk.best.as_ref().map(|(rank, _)| *rank)
            && self.cannot_beat(&best, start, left, (internal, reach), walk)
        {
            return;
        }
        let end = self.candidates.len() + 1 - left;
        for p in start..end {
            let next_mask = mask | self.slot_bucket(p);
            // Every complete set must span at most `numa_limit` nodes, the least possible.
            if next_mask.count_ones() > self.numa_limit {
                continue;
            }
            let next_internal = internal + walk.gain.get(p).copied().unwrap_or(0);
            let next_reach = reach + self.reach.get(p).copied().unwrap_or(0);
            self.shift_gains(p, walk, true);
            walk.chosen.push(p);
            self.descend(p + 1, (next_mask, next_internal, next_reach), walk);
            walk.chosen.pop();
            self.shift_gains(p, walk, false);
        }
    }

    /// Adds (or removes) candidate `p`'s pair scores to every slot's gain.
    fn shift_gains(&self, p: usize, walk: &mut Walk, add: bool) {
        for (q, g) in walk.gain.iter_mut().enumerate() {
            let s = self.pair(p, q);
            *g = if add { *g + s } else { g.saturating_sub(s) };
        }
    }

    /// Whether no completion of the current set with `left` slots from
    /// `start` on can rank strictly better than `best`. Every complete set
    /// spans exactly `numa_limit` nodes, so only the scores matter.
    fn cannot_beat(
        &self,
        best: &Rank,
        start: usize,
        left: usize,
        (internal, reach): (u64, u64),
        walk: &mut Walk,
    ) -> bool {
        let m = self.candidates.len();
        let pairs = left * left.saturating_sub(1) / 2;
        let Walk {
            gain,
            rows,
            pair_prefix,
            top,
            ..
        } = walk;
        let among = pair_prefix
            .get(pairs)
            .or(pair_prefix.last())
            .copied()
            .unwrap_or(0);
        let bound_a = 2 * (top_sum(gain.iter().skip(start).copied(), left, top) + among);
        // Unreachable fallback; large enough never to cut, small enough not to overflow.
        let row_of = |q: usize| {
            rows.get(q * m + (left - 1))
                .copied()
                .unwrap_or(u64::MAX / 64)
        };
        let doubled = (start..m).map(|q| 2 * gain.get(q).copied().unwrap_or(0) + row_of(q));
        let bound_b = top_sum(doubled, left, top);
        // Compare doubled scores: bound (b) counts each new pair twice.
        let top_internal = 2 * internal + bound_a.min(bound_b);
        let best_internal = 2 * best.internal;
        if top_internal != best_internal {
            return top_internal < best_internal;
        }
        reach + left as u64 * self.min_reach >= best.external + 2 * best.internal
    }
}
