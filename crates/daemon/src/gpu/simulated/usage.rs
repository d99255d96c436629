//! The optional `usage:` map of a GPU or MIG device entry in the simulated
//! node file: what NVML would report for it right now. Every key is
//! optional; a key that is absent means NVML does not support that value on
//! that device (`NOT_SUPPORTED`), so it is absent from the metrics too.
//!
//! ```yaml
//! usage: {gpuUtil: 85, memoryUtil: 40, memoryUsedMiB: 20480, temperatureC: 61, powerW: 312.5, smClockMHz: 1410}
//! ```

use serde::Deserialize;

use crate::gpu::usage::{MIB, Usage};

/// The `usage:` map as written in the file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UsageEntry {
    /// Percent, 0-100.
    #[serde(default)]
    pub gpu_util: Option<u32>,
    /// Percent, 0-100.
    #[serde(default)]
    pub memory_util: Option<u32>,
    #[serde(default, rename = "memoryUsedMiB")]
    pub memory_used_mib: Option<u64>,
    #[serde(default, rename = "temperatureC")]
    pub temperature_c: Option<u32>,
    /// Watts (fractions allowed: NVML reports milliwatts).
    #[serde(default, rename = "powerW")]
    pub power_w: Option<f64>,
    #[serde(default, rename = "smClockMHz")]
    pub sm_clock_mhz: Option<u32>,
}

impl UsageEntry {
    /// Checks the values a driver could report; `what` names the entry.
    pub fn validate(&self, what: &str, memory_mib: u64) -> Result<(), String> {
        for (key, value) in [("gpuUtil", self.gpu_util), ("memoryUtil", self.memory_util)] {
            if value.is_some_and(|v| v > 100) {
                return Err(format!("{what}: usage.{key} is a percentage (0-100)"));
            }
        }
        if self.memory_used_mib.is_some_and(|m| m > memory_mib) {
            return Err(format!(
                "{what}: usage.memoryUsedMiB is more than its memoryMiB ({memory_mib})"
            ));
        }
        if self
            .power_w
            .is_some_and(|w| !w.is_finite() || !(0.0..=1_000_000.0).contains(&w))
        {
            return Err(format!(
                "{what}: usage.powerW must be between 0 and 1000000"
            ));
        }
        Ok(())
    }

    /// What NVML answers for a device with `memory_mib` MiB and this entry.
    pub fn usage(&self, memory_mib: u64) -> Usage {
        let used = self.memory_used_mib.map(|m| m * MIB);
        Usage {
            gpu_util_percent: self.gpu_util,
            memory_util_percent: self.memory_util,
            memory_used_bytes: used,
            memory_free_bytes: used.map(|u| (memory_mib * MIB).saturating_sub(u)),
            temperature_c: self.temperature_c,
            // Bounded by validate; NVML reports whole milliwatts.
            power_mw: self.power_w.map(|w| (w * 1000.0).round() as u32),
            sm_clock_mhz: self.sm_clock_mhz,
        }
    }
}
