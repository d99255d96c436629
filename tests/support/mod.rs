//! Test support: a fake kubelet over real Unix sockets, the real kubelet's
//! device manager (`kubeletharness`) as a child process, the plugin binary as a
//! child process, and an independent reading of node files into the devices a
//! kubelet should see.
#![allow(dead_code)]

pub mod apiserver;
pub mod cdi;
pub mod dra;
pub mod expected;
pub mod harness;
pub mod harness_output;
pub mod http;
pub mod kubelet;
pub mod nodeapi;
pub mod podman;
pub mod podresources;
pub mod process;
pub mod prometheus;

use std::time::Duration;

/// Upper bound for anything the tests wait on; generous for slow CI machines.
pub const WAIT: Duration = Duration::from_secs(10);

/// Absolute path of a file under the repository's `config/`.
pub fn repo_file(rel: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Replaces `path` atomically (write a sibling, rename over), as editors and
/// ConfigMap updates do.
pub fn write_atomic(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write temp file");
    std::fs::rename(&tmp, path).expect("rename over target");
}
