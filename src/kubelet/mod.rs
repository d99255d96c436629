//! The kubelet side: registering a resource over `kubelet.sock`, and watching
//! the socket directory to notice kubelet restarts and deleted sockets.

mod connect;
pub mod local;
mod register;
mod socket;
mod watch;

pub use connect::unix_channel;
pub use register::{RegisterError, register};
pub use socket::{SocketId, socket_id};
pub use watch::{DirEvent, watch_dir};

/// The kubelet's registration socket file name.
pub const KUBELET_SOCKET_NAME: &str = "kubelet.sock";
/// Default kubelet socket path.
pub const DEFAULT_KUBELET_SOCKET: &str = "/var/lib/kubelet/device-plugins/kubelet.sock";
/// The only API version the kubelet supports.
pub const API_VERSION: &str = "v1beta1";
