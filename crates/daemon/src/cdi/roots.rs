//! The roots of spec generation and the rewrite of found paths into host
//! paths, exactly as NVIDIA's plugin does (reference §A6): files are
//! searched under the container driver root, device nodes under the
//! container dev root, and the spec names host paths.

use std::path::Path;

/// Where things are searched and what they are on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roots {
    /// Where the host driver root is seen while searching (`--driver-root-ctr-path`).
    pub container_driver_root: String,
    /// Where device nodes are searched: the container driver root when it
    /// has a `dev` directory, else `/` (see [`container_dev_root`]).
    pub container_dev_root: String,
    /// The driver root on the host (`--driver-root`).
    pub host_driver_root: String,
    /// The device root on the host (`--dev-root`, defaults to the driver root).
    pub host_dev_root: String,
}

/// NVIDIA's `getDevRoot`: the container driver root if `<root>/dev` is a
/// directory, else `/` (one `stat`; the caller does it once per write).
pub fn container_dev_root(container_driver_root: &str) -> String {
    if Path::new(container_driver_root).join("dev").is_dir() {
        container_driver_root.to_string()
    } else {
        "/".to_string()
    }
}

/// Go's `filepath.Clean` for absolute paths: no `//`, no trailing `/`, `.`
/// and `..` resolved lexically.
pub fn clean(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}

/// `p` relative to `root` as a container path: the root string-trimmed, with
/// a leading `/` (nvcdi's container path of a found file).
pub fn strip_root(p: &str, root: &str) -> String {
    let root = root.trim_end_matches('/');
    clean(p.strip_prefix(root).unwrap_or(p))
}

/// One rewrite: paths under `root` (a plain string prefix, as nvcdi
/// compares) are moved under `target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transformer {
    root: String,
    target: String,
}

impl Transformer {
    fn is_noop(&self) -> bool {
        self.root == self.target
    }

    fn apply(&self, p: &str) -> String {
        if self.is_noop() {
            return p.to_string();
        }
        match p.strip_prefix(self.root.as_str()) {
            Some(rest) => clean(&format!("{}/{rest}", self.target)),
            None => p.to_string(),
        }
    }
}

/// `clean(p)` with a trailing `/dev` stripped and `/dev` put back.
fn ensure_dev(p: &str) -> String {
    let c = clean(p);
    let base = c.strip_suffix("/dev").unwrap_or(&c);
    clean(&format!("{base}/dev"))
}

impl Roots {
    /// The rewrites, in order: driver root, then (only when the dev root is
    /// not the driver root) the dev root.
    pub fn transformers(&self) -> Vec<Transformer> {
        let mut out = vec![Transformer {
            root: clean(&self.container_driver_root),
            target: clean(&self.host_driver_root),
        }];
        let dev = &self.container_dev_root;
        if !dev.is_empty() && clean(dev) != clean(&self.container_driver_root) {
            out.push(Transformer {
                root: ensure_dev(dev),
                target: ensure_dev(&self.host_dev_root),
            });
        }
        out
    }

    /// The host path of a found file or hook binary.
    pub fn host_path(&self, found: &str) -> String {
        self.transformers()
            .iter()
            .fold(found.to_string(), |p, t| t.apply(&p))
    }

    /// The `hostPath` of a device node found at `found` whose container path
    /// is `path`: empty when equal to `path` and nothing is rewritten; each
    /// rewrite that is not a no-op first fills an empty one with `path`.
    pub fn node_host_path(&self, path: &str, found: &str) -> String {
        let mut host = if found == path {
            String::new()
        } else {
            found.to_string()
        };
        for t in self.transformers() {
            if t.is_noop() {
                continue;
            }
            if host.is_empty() {
                host = path.to_string();
            }
            host = t.apply(&host);
        }
        host
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roots(ctr: &str, ctr_dev: &str, host: &str, host_dev: &str) -> Roots {
        Roots {
            container_driver_root: ctr.into(),
            container_dev_root: ctr_dev.into(),
            host_driver_root: host.into(),
            host_dev_root: host_dev.into(),
        }
    }

    /// The worked examples of reference §A6, plus the host-run `cdi generate`.
    #[test]
    fn paths_are_rewritten_as_the_reference_examples_say() {
        let lib = "/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.15";
        // (roots, found library, want lib host path, found node, want node hostPath)
        let cases = [
            (
                "helm nvidiaDriverRoot=/",
                roots("/driver-root", "/driver-root", "/", "/"),
                format!("/driver-root{lib}"),
                lib.to_string(),
                "/driver-root/dev/nvidia0",
                "/dev/nvidia0",
            ),
            (
                "driver container with /dev",
                roots(
                    "/driver-root",
                    "/driver-root",
                    "/run/nvidia/driver",
                    "/run/nvidia/driver",
                ),
                format!("/driver-root{lib}"),
                format!("/run/nvidia/driver{lib}"),
                "/driver-root/dev/nvidia0",
                "/run/nvidia/driver/dev/nvidia0",
            ),
            (
                "driver container without /dev",
                roots(
                    "/driver-root",
                    "/",
                    "/run/nvidia/driver",
                    "/run/nvidia/driver",
                ),
                format!("/driver-root{lib}"),
                format!("/run/nvidia/driver{lib}"),
                "/dev/nvidia0",
                "/run/nvidia/driver/dev/nvidia0",
            ),
            (
                "same, nvidiaDevRoot=/",
                roots("/driver-root", "/", "/run/nvidia/driver", "/"),
                format!("/driver-root{lib}"),
                format!("/run/nvidia/driver{lib}"),
                "/dev/nvidia0",
                "/dev/nvidia0",
            ),
            (
                "on the host, driver root searched where it is",
                roots("/tmp/root", "/tmp/root", "/tmp/root", "/tmp/root"),
                format!("/tmp/root{lib}"),
                format!("/tmp/root{lib}"),
                "/tmp/root/dev/nvidia0",
                "/tmp/root/dev/nvidia0",
            ),
            (
                "on the host, plain /",
                roots("/", "/", "/", "/"),
                lib.to_string(),
                lib.to_string(),
                "/dev/nvidia0",
                "",
            ),
        ];
        for (name, r, found_lib, want_lib, found_node, want_node) in cases {
            assert_eq!(r.host_path(&found_lib), want_lib, "{name}: library");
            assert_eq!(
                r.node_host_path("/dev/nvidia0", found_node),
                want_node,
                "{name}: node"
            );
        }
    }

    #[test]
    fn the_root_prefix_is_a_plain_string_prefix_as_in_nvcdi() {
        let r = roots("/driver-root", "/driver-root", "/host", "/host");
        assert_eq!(r.host_path("/driver-rootfs/x"), "/host/fs/x");
        assert_eq!(r.host_path("/usr/bin/nvidia-ctk"), "/usr/bin/nvidia-ctk");
    }

    #[test]
    fn container_paths_drop_the_root() {
        assert_eq!(
            strip_root("/driver-root/usr/lib/libcuda.so", "/driver-root"),
            "/usr/lib/libcuda.so"
        );
        assert_eq!(
            strip_root("/usr/lib/libcuda.so", "/"),
            "/usr/lib/libcuda.so"
        );
        assert_eq!(strip_root("/r/dev/nvidia0", "/r/"), "/dev/nvidia0");
        assert_eq!(ensure_dev("/"), "/dev");
        assert_eq!(ensure_dev("/x/dev/"), "/x/dev");
    }
}
