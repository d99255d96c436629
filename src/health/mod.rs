//! Health policy (pure): which XIDs count, which advertised devices an event
//! hits, and when an unhealthy device recovers.

pub mod policy;
pub mod recovery;
pub mod tracker;

pub use policy::{IGNORED_XIDS, XidPolicy, affected_devices, parse_xid_list};
pub use tracker::HealthTracker;
