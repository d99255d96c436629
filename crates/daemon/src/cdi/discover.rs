//! Finding the driver's files and device nodes under the roots, the way
//! nvcdi finds them (reference §A5.3): libcuda by a search of the standard
//! library directories under the container driver root, else through that
//! root's `etc/ld.so.cache`; then every `*.so.<version>` of the driver's
//! directories, the binaries, GSP firmware, IPC sockets, and a `stat` of
//! each device node the inventory needs. All reads are bounded; symlinks are
//! followed inside the root (an absolute target is taken under the root).

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::CdiError;
use super::gated::GatedFiles;
use super::generate::{DriverFiles, Drm, FoundNode, NodeInfo, wanted_nodes};
use super::ldcache;
use super::roots::{Roots, clean};
use crate::gpu::Inventory;

/// Library directories searched under the root, in nvcdi's order.
const LIB_DIRS: [&str; 10] = [
    "/",
    "/usr/lib64",
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu/nvidia/current",
    "/usr/lib/aarch64-linux-gnu/nvidia/current",
    "/lib64",
    "/lib/x86_64-linux-gnu",
    "/lib/aarch64-linux-gnu",
    "/lib/x86_64-linux-gnu/nvidia/current",
];
/// Binaries mounted when found.
const BINARIES: [&str; 7] = [
    "nvidia-smi",
    "nvidia-debugdump",
    "nvidia-persistenced",
    "nvidia-cuda-mps-control",
    "nvidia-cuda-mps-server",
    "nvidia-imex",
    "nvidia-imex-ctl",
];
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Directory entries read per directory, at most.
const MAX_DIR_ENTRIES: usize = 20_000;
/// Symlink hops followed, at most (Linux's own limit).
const MAX_LINK_HOPS: usize = 40;
/// Largest small text file read (firmware path parameter, osrelease).
const MAX_TEXT: u64 = 4096;

/// `root` + absolute `p`.
fn under(root: &str, p: &str) -> String {
    clean(&format!("{}/{p}", root.trim_end_matches('/')))
}

/// Follows symlinks of `p` (a path under `root`) inside `root`; `None` when
/// it does not exist or loops.
fn resolve(root: &str, p: &str) -> Option<String> {
    let mut current = PathBuf::from(p);
    for _ in 0..MAX_LINK_HOPS {
        let meta = std::fs::symlink_metadata(&current).ok()?;
        if !meta.file_type().is_symlink() {
            return Some(clean(&current.to_string_lossy()));
        }
        let target = std::fs::read_link(&current).ok()?;
        current = if target.is_absolute() {
            PathBuf::from(under(root, &target.to_string_lossy()))
        } else {
            current.parent().unwrap_or(Path::new("/")).join(target)
        };
        current = PathBuf::from(clean(&current.to_string_lossy()));
    }
    None
}

/// File names in `dir`, sorted (glob order), at most [`MAX_DIR_ENTRIES`].
fn names(dir: &str) -> Vec<String> {
    let Ok(read) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<String> = read
        .take(MAX_DIR_ENTRIES)
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    out.sort();
    out
}

fn read_small(path: &str) -> Option<String> {
    let mut text = String::new();
    std::fs::File::open(path)
        .ok()?
        .take(MAX_TEXT)
        .read_to_string(&mut text)
        .ok()?;
    Some(text.trim().to_string())
}

/// The first real file `libcuda.so.<a>.<b>...` in the standard directories.
fn find_libcuda(root: &str) -> Option<String> {
    LIB_DIRS.iter().find_map(|dir| {
        let dir = under(root, dir);
        names(&dir)
            .into_iter()
            .filter(|n| {
                n.strip_prefix("libcuda.so.")
                    .is_some_and(|v| v.contains('.'))
            })
            .find_map(|n| resolve(root, &format!("{dir}/{n}")))
    })
}

/// libcuda through the root's `etc/ld.so.cache` (64-bit entries only).
fn libcuda_from_ldcache(root: &str) -> Result<Option<String>, CdiError> {
    let path = under(root, "/etc/ld.so.cache");
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(CdiError::Read { path, source }),
    };
    let mut bytes = Vec::new();
    file.take(ldcache::MAX_CACHE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| CdiError::Read {
            path: path.clone(),
            source,
        })?;
    let entries = ldcache::parse(&bytes).map_err(|source| CdiError::LdCache { path, source })?;
    Ok(entries
        .iter()
        .filter(|e| e.is_64bit() && e.key.starts_with("libcuda.so"))
        .find_map(|e| resolve(root, &under(root, &e.path))))
}

fn parent(p: &str) -> String {
    p.rsplit_once('/').map_or(
        "/".into(),
        |(d, _)| if d.is_empty() { "/".into() } else { d.into() },
    )
}

fn file_name(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// Symlinks in `dir` that point at one of `libs` (by file name), as
/// `(target as written, link path)`: the links the `create-symlinks` hook
/// recreates in the container.
fn links_to(dir: &str, libs: &[String]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for name in names(dir) {
        let link = format!("{dir}/{name}");
        let Ok(target) = std::fs::read_link(&link) else {
            continue;
        };
        let target = target.to_string_lossy().to_string();
        if libs.iter().any(|l| file_name(l) == file_name(&target))
            || libs.iter().any(|l| {
                // A `.so` link to a SONAME link of a library (libcuda.so -> libcuda.so.1).
                std::fs::read_link(format!("{dir}/{}", file_name(&target)))
                    .is_ok_and(|t| file_name(&t.to_string_lossy()) == file_name(l))
            })
        {
            out.push((target, link));
        }
    }
    out
}

fn executable(p: &str) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn binaries(root: &str) -> Vec<String> {
    let path = std::env::var("PATH").unwrap_or_default();
    let dirs: Vec<&str> = path
        .split(':')
        .chain(DEFAULT_PATH.split(':'))
        .filter(|d| d.starts_with('/'))
        .collect();
    BINARIES
        .iter()
        .filter_map(|bin| {
            dirs.iter()
                .map(|d| under(root, &format!("{d}/{bin}")))
                .find(|p| executable(p))
                .and_then(|p| resolve(root, &p))
        })
        .collect()
}

fn firmware(root: &str, version: &str) -> Vec<String> {
    let release = read_small("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut dirs: Vec<String> = Vec::new();
    if let Some(custom) =
        read_small("/sys/module/firmware_class/parameters/path").filter(|p| p.starts_with('/'))
    {
        dirs.push(custom);
    }
    for d in [
        "/lib/firmware/updates/{r}",
        "/lib/firmware/updates",
        "/lib/firmware/{r}",
        "/lib/firmware",
    ] {
        dirs.push(d.replace("{r}", &release));
    }
    let mut out = Vec::new();
    for d in dirs {
        let dir = under(root, &format!("{d}/nvidia/{version}"));
        for n in names(&dir)
            .into_iter()
            .filter(|n| n.starts_with("gsp") && n.ends_with(".bin"))
        {
            if let Some(p) = resolve(root, &format!("{dir}/{n}")).filter(|p| !out.contains(p)) {
                out.push(p);
            }
        }
    }
    out
}

fn ipc_sockets(root: &str) -> Vec<String> {
    let mut out = Vec::new();
    for name in ["nvidia-persistenced/socket", "nvidia-fabricmanager/socket"] {
        let found = ["/run", "/var/run"]
            .iter()
            .map(|d| under(root, &format!("{d}/{name}")))
            .find(|p| std::fs::metadata(p).is_ok_and(|m| m.file_type().is_socket()));
        out.extend(found);
    }
    let mps = under(root, "/tmp/nvidia-mps");
    if std::fs::metadata(&mps).is_ok_and(|m| m.is_file()) {
        out.push(mps);
    }
    out
}

/// `stat` of a device node: `None` unless it is a character device.
pub fn node_info(found: &str) -> Option<NodeInfo> {
    let meta = std::fs::symlink_metadata(found).ok()?;
    if !meta.file_type().is_char_device() {
        return None;
    }
    let dev = meta.rdev();
    Some(NodeInfo {
        major: (((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff)) as u32,
        minor: ((dev & 0xff) | ((dev >> 12) & !0xff)) as u32,
        mode: meta.mode() & 0o7777,
        gid: meta.gid(),
    })
}

/// A GPU's DRM nodes from `<sysfs>/bus/pci/devices/<bus id>/drm/` (read
/// where the plugin runs, as nvcdi does) and its by-path links under the dev root.
pub fn drm(sysfs: &Path, roots: &Roots, pci_bus_id: &str) -> Drm {
    let dir = sysfs.join("bus/pci/devices").join(pci_bus_id).join("drm");
    let nodes: Vec<String> = names(&dir.to_string_lossy())
        .into_iter()
        .filter(|n| n.starts_with("card") || n.starts_with("renderD"))
        .map(|n| format!("/dev/dri/{n}"))
        .collect();
    let mut links = Vec::new();
    for kind in ["card", "render"] {
        let link = under(
            &roots.container_dev_root,
            &format!("/dev/dri/by-path/pci-{pci_bus_id}-{kind}"),
        );
        let Ok(target) = std::fs::read_link(&link) else {
            continue;
        };
        let target = target.to_string_lossy().to_string();
        if nodes.iter().any(|n| file_name(n) == file_name(&target)) {
            links.push((target, link));
        }
    }
    Drm { nodes, links }
}

/// Everything the `gpu` spec needs from disk for this inventory; DRM
/// nodes are looked up in `sysfs` (`/sys` where the plugin runs).
pub fn discover(
    inventory: &Inventory,
    roots: &Roots,
    sysfs: &Path,
) -> Result<DriverFiles, CdiError> {
    let root = roots.container_driver_root.as_str();
    let libcuda = match find_libcuda(root) {
        Some(p) => p,
        None => libcuda_from_ldcache(root)?.ok_or_else(|| CdiError::NoDriver {
            root: root.to_string(),
        })?,
    };
    let version = inventory.driver_version.clone().unwrap_or_else(|| {
        file_name(&libcuda)
            .trim_start_matches("libcuda.so.")
            .to_string()
    });
    let suffix = format!(".so.{version}");
    let mut candidates: Vec<String> = vec![parent(&libcuda)];
    candidates.extend(LIB_DIRS.iter().map(|d| under(root, d)));
    let mut lib_dirs: Vec<String> = Vec::new();
    for dir in candidates {
        if !lib_dirs.contains(&dir)
            && names(&dir)
                .iter()
                .any(|n| n.starts_with("lib") && n.ends_with(&suffix))
        {
            lib_dirs.push(dir);
        }
    }
    let mut libraries: Vec<String> = Vec::new();
    for dir in &lib_dirs {
        for d in [dir.clone(), format!("{dir}/vdpau")] {
            for n in names(&d) {
                let driver_lib = n.ends_with(&suffix) || n.starts_with("libnvidia-nvvm70.so.");
                let p = format!("{d}/{n}");
                if driver_lib
                    && std::fs::metadata(&p).is_ok_and(|m| m.is_file())
                    && let Some(real) = resolve(root, &p).filter(|r| !libraries.contains(r))
                {
                    libraries.push(real);
                }
            }
        }
    }
    let mut links: Vec<(String, String)> = Vec::new();
    for dir in &lib_dirs {
        for l in links_to(dir, &libraries) {
            if !links.contains(&l) {
                links.push(l);
            }
        }
    }
    let drm: BTreeMap<String, Drm> = inventory
        .gpus
        .iter()
        .map(|g| (g.pci_bus_id.clone(), drm(sysfs, roots, &g.pci_bus_id)))
        .collect();
    let mut nodes = BTreeMap::new();
    let drm_nodes = drm.values().flat_map(|d| d.nodes.iter().cloned());
    for path in wanted_nodes(inventory).into_iter().chain(drm_nodes) {
        let found = under(&roots.container_dev_root, &path);
        let info = node_info(&found);
        nodes.insert(path, FoundNode { found, info });
    }
    Ok(DriverFiles {
        firmware: firmware(root, &version),
        binaries: binaries(root),
        ipc_sockets: ipc_sockets(root),
        version,
        lib_dirs,
        libraries,
        links,
        nodes,
        drm,
    })
}

/// Character devices in `<dev root>/<dir>` whose names start with one of
/// `prefixes`, by container path.
fn nodes_named(roots: &Roots, dir: &str, prefixes: &[&str]) -> BTreeMap<String, FoundNode> {
    let found_dir = under(&roots.container_dev_root, dir);
    names(&found_dir)
        .into_iter()
        .filter(|n| prefixes.iter().any(|p| n.starts_with(p)))
        .map(|n| {
            let found = format!("{found_dir}/{n}");
            let info = node_info(&found);
            (format!("{dir}/{n}"), FoundNode { found, info })
        })
        .collect()
}

/// What the gated `class` (gdrcopy, gds, mofed) finds under the roots.
pub fn discover_gated(class: &str, roots: &Roots) -> GatedFiles {
    let root = roots.container_driver_root.as_str();
    match class {
        "gdrcopy" => GatedFiles {
            nodes: nodes_named(roots, "/dev", &["gdrdrv"]),
            mounts: Vec::new(),
        },
        "gds" => {
            let nodes = nodes_named(roots, "/dev", &["nvidia-fs"]);
            // The mounts come only with a node (nvcdi's gds discoverer).
            let mounts = if nodes.values().any(|n| n.info.is_some()) {
                ["/run/udev", "/etc/cufile.json"]
                    .iter()
                    .map(|p| under(root, p))
                    .filter(|p| Path::new(p).exists())
                    .collect()
            } else {
                Vec::new()
            };
            GatedFiles { nodes, mounts }
        }
        "mofed" => GatedFiles {
            nodes: nodes_named(roots, "/dev/infiniband", &["uverbs", "rdma_cm"]),
            mounts: Vec::new(),
        },
        _ => GatedFiles::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drm_nodes_come_from_sysfs_and_links_from_the_dev_root() {
        let sysfs = tempfile::tempdir().unwrap();
        let dev = tempfile::tempdir().unwrap();
        let bus = "0000:07:00.0";
        let drm_dir = sysfs.path().join("bus/pci/devices").join(bus).join("drm");
        for n in ["card1", "renderD128", "controlD64"] {
            std::fs::create_dir_all(drm_dir.join(n)).unwrap();
        }
        let by_path = dev.path().join("dev/dri/by-path");
        std::fs::create_dir_all(&by_path).unwrap();
        std::os::unix::fs::symlink("../card1", by_path.join(format!("pci-{bus}-card"))).unwrap();
        // A link to another GPU's node is not this GPU's.
        std::os::unix::fs::symlink("../renderD129", by_path.join(format!("pci-{bus}-render")))
            .unwrap();
        let root = dev.path().display().to_string();
        let roots = Roots {
            container_driver_root: root.clone(),
            container_dev_root: root.clone(),
            host_driver_root: "/".into(),
            host_dev_root: "/".into(),
        };
        let got = drm(sysfs.path(), &roots, bus);
        assert_eq!(got.nodes, ["/dev/dri/card1", "/dev/dri/renderD128"]);
        assert_eq!(
            got.links,
            [(
                "../card1".to_string(),
                format!("{root}/dev/dri/by-path/pci-{bus}-card")
            )]
        );
        assert_eq!(drm(sysfs.path(), &roots, "0000:99:00.0"), Drm::default());
    }
}
