//! Latency summaries (nearest-rank percentiles) and `/proc` readings, as
//! plain functions over data.

use std::time::Duration;

use serde_json::{Value, json};

/// Percentiles of a set of latency samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub n: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

/// Nearest-rank percentile `p` (0 < p ≤ 1) of sorted samples.
fn rank(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let n = sorted.len();
    // ceil(p·n) - 1, clamped into the slice.
    let idx = ((p * n as f64).ceil() as usize).clamp(1, n) - 1;
    sorted.get(idx).copied().unwrap_or(Duration::ZERO)
}

/// Summarizes samples (sorted in place).
pub fn summarize(samples: &mut [Duration]) -> Summary {
    samples.sort_unstable();
    Summary {
        n: samples.len(),
        p50: rank(samples, 0.50),
        p99: rank(samples, 0.99),
        max: samples.last().copied().unwrap_or(Duration::ZERO),
    }
}

fn us(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e7).round() / 10.0
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e4).round() / 10.0
}

impl Summary {
    /// `{"n", "p50_us", "p99_us", "max_us"}` merged into `fields`.
    pub fn json_us(&self, mut fields: Value) -> Value {
        if let Some(map) = fields.as_object_mut() {
            map.insert("n".into(), json!(self.n));
            map.insert("p50_us".into(), json!(us(self.p50)));
            map.insert("p99_us".into(), json!(us(self.p99)));
            map.insert("max_us".into(), json!(us(self.max)));
        }
        fields
    }

    /// `{"n", "p50_ms", "max_ms"}` merged into `fields`.
    pub fn json_ms(&self, mut fields: Value) -> Value {
        if let Some(map) = fields.as_object_mut() {
            map.insert("n".into(), json!(self.n));
            map.insert("p50_ms".into(), json!(ms(self.p50)));
            map.insert("max_ms".into(), json!(ms(self.max)));
        }
        fields
    }
}

/// utime + stime (clock ticks) from the text of `/proc/<pid>/stat`.
pub fn cpu_ticks(stat: &str) -> Option<u64> {
    // Fields after the command name, which is in parentheses and may hold spaces.
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime and stime are fields 14 and 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// A `kB` value such as `VmRSS` from the text of `/proc/<pid>/status`.
pub fn status_kib(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        if k != key {
            return None;
        }
        v.split_whitespace().next()?.parse().ok()
    })
}

#[cfg(test)]
#[path = "stats_tests.rs"]
mod tests;
