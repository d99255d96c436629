//! Allocation: the Allocate response for a request, and the preferred
//! allocation policy. Pure functions over the planned devices; no NVML and no
//! file I/O here (this runs on the kubelet's admission path, which has no timeout).

pub mod cdi;
pub mod preferred;
pub mod response;
