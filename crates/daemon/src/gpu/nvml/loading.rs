//! Where `libnvidia-ml.so.1` is loaded from, as NVIDIA's plugin finds it
//! (`cmd/nvidia-device-plugin/root.go`): under the container's driver root
//! when that is not `/`, else by bare name through the dynamic loader.

use std::path::{Component, Path, PathBuf};

/// The NVML library's soname.
pub const LIB_NAME: &str = "libnvidia-ml.so.1";

/// Library directories searched under the driver root, in order.
pub const SEARCH_DIRS: [&str; 6] = [
    "/usr/lib64",
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/lib64",
    "/lib/x86_64-linux-gnu",
    "/lib/aarch64-linux-gnu",
];

/// Symlink hops followed before giving up (the kernel's own limit).
const MAX_HOPS: usize = 40;

/// The path to hand to the dynamic loader: `explicit` if set; else the first
/// `libnvidia-ml.so.1` found under `driver_root` with its symlinks resolved
/// inside that root; else the bare library name.
pub fn library_path(driver_root: &Path, explicit: Option<&Path>) -> PathBuf {
    if let Some(path) = explicit {
        return path.to_path_buf();
    }
    if driver_root.as_os_str().is_empty() || driver_root == Path::new("/") {
        return PathBuf::from(LIB_NAME);
    }
    SEARCH_DIRS
        .iter()
        .find_map(|dir| resolve_in_root(driver_root, &Path::new(dir).join(LIB_NAME)))
        .unwrap_or_else(|| PathBuf::from(LIB_NAME))
}

/// Resolves `path` (absolute, as seen from inside `root`) to an existing
/// regular file on this filesystem, following symlinks; absolute link targets
/// are taken relative to `root`, as they would be after a chroot.
fn resolve_in_root(root: &Path, path: &Path) -> Option<PathBuf> {
    let mut inner = path.to_path_buf();
    for _ in 0..MAX_HOPS {
        let outer = join_inside(root, &inner);
        let meta = std::fs::symlink_metadata(&outer).ok()?;
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&outer).ok()?;
            inner = if target.is_absolute() {
                target
            } else {
                inner.parent().unwrap_or(Path::new("/")).join(target)
            };
            continue;
        }
        return meta.is_file().then_some(outer);
    }
    None
}

/// `root` joined with `inner`, with `..` clamped at `root`.
fn join_inside(root: &Path, inner: &Path) -> PathBuf {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for component in inner.components() {
        match component {
            Component::Normal(part) => parts.push(part),
            Component::ParentDir => {
                parts.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    parts.iter().fold(root.to_path_buf(), |acc, p| acc.join(p))
}

#[cfg(test)]
#[path = "loading_tests.rs"]
mod tests;
