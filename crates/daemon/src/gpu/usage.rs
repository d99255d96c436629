//! What a GPU or MIG device is doing right now: the usage values the
//! sampler reads through [`super::Backend::usage`]. `None` in a field means
//! the driver or the device cannot answer that question (NVML
//! `NOT_SUPPORTED`, e.g. utilization on a MIG device, power on some boards):
//! such a value is absent from the metrics, never zero.

/// One usage reading of one device (a GPU, or a MIG device by its own UUID).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Usage {
    /// `nvmlDeviceGetUtilizationRates().gpu`: percent of the sample period a kernel ran.
    pub gpu_util_percent: Option<u32>,
    /// `nvmlDeviceGetUtilizationRates().memory`: percent of time memory was read or written.
    pub memory_util_percent: Option<u32>,
    /// `nvmlDeviceGetMemoryInfo().used`, bytes.
    pub memory_used_bytes: Option<u64>,
    /// `nvmlDeviceGetMemoryInfo().free`, bytes.
    pub memory_free_bytes: Option<u64>,
    /// `nvmlDeviceGetTemperature(NVML_TEMPERATURE_GPU)`, degrees Celsius.
    pub temperature_c: Option<u32>,
    /// `nvmlDeviceGetPowerUsage`, milliwatts.
    pub power_mw: Option<u32>,
    /// `nvmlDeviceGetClockInfo(NVML_CLOCK_SM)`, MHz.
    pub sm_clock_mhz: Option<u32>,
}

/// Bytes in a MiB, the unit of the node file and of DCGM's framebuffer fields.
pub const MIB: u64 = 1024 * 1024;
