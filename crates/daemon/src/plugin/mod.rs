//! The DevicePlugin gRPC service for one resource, its Unix-socket server, and
//! the snapshot of devices it serves from.

mod server;
pub mod service;
mod snapshot;

pub use server::{RunningServer, ServeError};
pub use service::PluginService;
pub use snapshot::Snapshot;

/// Health strings the kubelet understands.
pub const HEALTHY: &str = "Healthy";
pub const UNHEALTHY: &str = "Unhealthy";
