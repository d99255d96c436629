//! Health (pure): which XIDs count, which advertised devices an event hits,
//! when a GPU is fit again after one, and the health of every device over time.

pub mod model;
pub mod policy;
pub mod recovery;

pub use model::HealthModel;
pub use policy::{IGNORED_XIDS, XidPolicy, affected_devices, parse_xid_list};
