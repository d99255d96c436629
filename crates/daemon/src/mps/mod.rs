//! `gpu-device-plugin mps-control-daemon`: one `nvidia-cuda-mps-control -d`
//! per resource shared with MPS, configured with NVIDIA's limits, announced
//! to the plugin by the `.started` marker, watched, restarted with backoff
//! when it dies, reconfigured on config changes, and stopped on SIGTERM.

mod control;
mod plan;
mod run;

pub use control::resolve;

pub use control::Control;
pub use plan::{Changes, DaemonGpu, DaemonSpec, Layout, diff, plan_daemons};
pub use run::{MpsOptions, run, run_on_node};

use crate::resources::PlanError;

/// Why the control daemon cannot do what the config asks.
#[derive(Debug, thiserror::Error)]
pub enum MpsError {
    #[error(transparent)]
    Daemon(#[from] crate::daemon::DaemonError),
    #[error(transparent)]
    Node(#[from] crate::node::NodeError),
    #[error("error starting MPS daemons: {0}")]
    Plan(PlanError),
    #[error(
        "invalid MPS configuration: invalid device maximum allowed replicas exceeded: {replicas} > {max}"
    )]
    TooManyClients { replicas: u32, max: u32 },
    #[error("cannot read the GPUs: {0}")]
    Inventory(String),
    #[error("{bin} not found on PATH: install it, or point {flag} at it")]
    NotFound { bin: String, flag: &'static str },
    #[error("cannot run {bin}: {source}")]
    Spawn {
        bin: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} did not finish within {secs} s")]
    Timeout { what: String, secs: u64 },
    #[error("failed to send command to MPS daemon: {command}: exit status {status}{output}")]
    Command {
        command: String,
        status: String,
        output: String,
    },
    #[error(
        "error setting compute mode {mode}: error running nvidia-smi: exit status {status}{output}"
    )]
    ComputeMode {
        mode: &'static str,
        status: String,
        output: String,
    },
    #[error("cannot create {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot watch {path}: {source}")]
    Watch {
        path: String,
        #[source]
        source: notify::Error,
    },
    #[error("cannot install signal handler: {0}")]
    Signal(#[source] std::io::Error),
}
