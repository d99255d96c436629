//! The kubelet side: registering a resource over `kubelet.sock`, dialling
//! unix sockets, and telling one socket file from its replacement.

pub mod authority;
mod connect;
mod register;
mod socket;

pub use connect::unix_channel;
pub use register::{RegisterError, register};
pub use socket::{SocketId, socket_id};

/// The kubelet's registration socket file name.
pub const KUBELET_SOCKET_NAME: &str = "kubelet.sock";
/// Default kubelet socket path.
pub const DEFAULT_KUBELET_SOCKET: &str = "/var/lib/kubelet/device-plugins/kubelet.sock";
/// The only API version the kubelet supports.
pub const API_VERSION: &str = "v1beta1";
