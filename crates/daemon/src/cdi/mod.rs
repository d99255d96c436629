//! CDI (Container Device Interface) support: the spec files NVIDIA's plugin
//! writes for the `cdi-annotations` and `cdi-cri` device-list strategies
//! (reference `cdi-and-mps.md` §A), generated as a pure function
//! (`generate`) of the inventory and the driver files found on disk
//! (`discover`, with the `ldcache` parser), and written atomically (`write`).

pub mod discover;
pub mod gated;
pub mod generate;
pub mod ldcache;
pub mod node;
pub mod roots;
pub mod spec;
pub mod write;

pub use discover::discover;
pub use generate::{
    CdiOptions, DriverFiles, Drm, FoundNode, NodeInfo, device_name, gpu_spec, wanted_nodes,
};
pub use node::{Written, write_specs};
pub use roots::{Roots, container_dev_root};
pub use spec::Spec;
pub use write::{DEFAULT_CDI_ROOT, write_spec};

/// The vendor of every spec the plugin writes.
pub const VENDOR: &str = "k8s.device-plugin.nvidia.com";
/// The class of the GPU spec.
pub const CLASS: &str = "gpu";
/// `<vendor>/<class>` of the GPU spec.
pub const KIND: &str = "k8s.device-plugin.nvidia.com/gpu";
/// The device that holds every device of the spec.
pub const ALL_DEVICE: &str = "all";
/// NVIDIA's default `--nvidia-cdi-hook-path`.
pub const DEFAULT_HOOK_PATH: &str = "/usr/bin/nvidia-ctk";
/// NVIDIA's default `--cdi-annotation-prefix`.
pub const DEFAULT_ANNOTATION_PREFIX: &str = "cdi.k8s.io/";

/// The file name NVIDIA gives the spec of `class`: `<vendor>-<class>.json`.
pub fn spec_file_name(class: &str) -> String {
    format!("{VENDOR}-{class}.json")
}

/// The qualified name of a GPU spec device: `k8s.device-plugin.nvidia.com/gpu=<name>`.
pub fn qualified_name(name: &str) -> String {
    format!("{KIND}={name}")
}

/// Why a spec could not be generated or written.
#[derive(Debug, thiserror::Error)]
pub enum CdiError {
    #[error("invalid spec, no devices: the node has no GPU or MIG device to put in the CDI spec")]
    NoDevices,
    #[error(
        "invalid CDI device name {0:?}: a name starts and ends with a letter or digit and holds only letters, digits, '_', '.', ':' and '-' (legacy MIG UUIDs with '/' cannot be CDI names; use --device-id-strategy index)"
    )]
    InvalidName(String),
    #[error("invalid spec: device name {0:?} appears twice")]
    DuplicateName(String),
    #[error(
        "failed to locate the driver's libraries under {root}: no libcuda.so.* found there or in its etc/ld.so.cache; mount the host's driver root there (--driver-root-ctr-path) and set --driver-root"
    )]
    NoDriver { root: String },
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    LdCache {
        path: String,
        #[source]
        source: ldcache::LdCacheError,
    },
    #[error("unable to write the CDI spec {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// CDI's device-name rule (reference §A10.2).
pub fn check_name(name: &str) -> Result<(), CdiError> {
    let bytes = name.as_bytes();
    let edge = |c: u8| c.is_ascii_alphanumeric();
    let middle = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b':' | b'-');
    let ok = match bytes {
        [] => false,
        [only] => edge(*only),
        [first, mid @ .., last] => edge(*first) && edge(*last) && mid.iter().all(|c| middle(*c)),
    };
    if ok {
        Ok(())
    } else {
        Err(CdiError::InvalidName(name.to_string()))
    }
}
