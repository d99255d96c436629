//! The `gpu` spec as a pure function of the inventory, the driver files and
//! device nodes found under the roots, and the settings (reference §A2–§A5):
//! one device per GPU or MIG device named by the device-ID strategy, plus
//! `all`; the driver's libraries, binaries, firmware and IPC sockets, the
//! control nodes and nvcdi's hooks in the spec-level edits.

use std::collections::BTreeMap;

use super::roots::{Roots, strip_root};
use super::spec::{ContainerEdits, Device, DeviceNode, Hook, Mount, Spec};
use super::{ALL_DEVICE, CdiError, KIND};
use crate::allocate::response::DeviceIdStrategy;
use crate::gpu::Inventory;
use crate::resources::MigStrategy;

/// Control nodes nvcdi puts in the spec-level edits, when present.
pub const CONTROL_NODES: [&str; 4] = [
    "/dev/nvidia-modeset",
    "/dev/nvidia-uvm-tools",
    "/dev/nvidia-uvm",
    "/dev/nvidiactl",
];

/// Mount options of libraries, binaries and firmware.
pub(super) const RO_OPTIONS: [&str; 5] = ["ro", "nosuid", "nodev", "rbind", "rprivate"];
/// Mount options of IPC sockets (not read-only).
const IPC_OPTIONS: [&str; 5] = ["nosuid", "nodev", "rbind", "rprivate", "noexec"];
/// The hook names `--cdi-disable-hooks` knows, in nvcdi's emission order.
pub const HOOKS: [&str; 5] = [
    "create-symlinks",
    "enable-cuda-compat",
    "update-ldcache",
    "disable-device-node-modification",
    "update-application-profile",
];

/// What `stat` says about a device node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeInfo {
    pub major: u32,
    pub minor: u32,
    /// Permission bits only (`mode &^ S_IFMT`).
    pub mode: u32,
    pub gid: u32,
}

/// A device node looked for under the container dev root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundNode {
    /// Where it was looked for (container dev root + container path).
    pub found: String,
    /// `None` when it is missing or not a character device.
    pub info: Option<NodeInfo>,
}

/// The driver's files found under the container driver root; every path is
/// where it was found (under that root), symlinks resolved.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DriverFiles {
    /// The driver version (`libcuda.so.<version>`).
    pub version: String,
    /// Directories of `lib*.so.<version>`, first-seen order.
    pub lib_dirs: Vec<String>,
    /// Driver libraries, discovery order.
    pub libraries: Vec<String>,
    /// `(target, link)` symlinks for the `create-symlinks` hook; `link` is found-path form.
    pub links: Vec<(String, String)>,
    pub binaries: Vec<String>,
    pub firmware: Vec<String>,
    pub ipc_sockets: Vec<String>,
    /// Device nodes by container path (`/dev/nvidia0`, `/dev/nvidiactl`, ...).
    pub nodes: BTreeMap<String, FoundNode>,
    /// Each GPU's DRM nodes and by-path links, by PCI bus id.
    pub drm: BTreeMap<String, Drm>,
}

/// A GPU's DRM nodes (`/dev/dri/card1`, `/dev/dri/renderD128`: the entries
/// of its sysfs `drm` directory) and its `/dev/dri/by-path` links, which the
/// device's `create-symlinks` hook recreates.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Drm {
    /// Container paths.
    pub nodes: Vec<String>,
    /// `(target as written, link path under the container dev root)`.
    pub links: Vec<(String, String)>,
}

/// The settings spec generation depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdiOptions {
    pub roots: Roots,
    /// The hook binary on the host (`--nvidia-cdi-hook-path`, default `/usr/bin/nvidia-ctk`).
    pub hook_path: String,
    pub id_strategy: DeviceIdStrategy,
    pub mig_strategy: MigStrategy,
    /// `--cdi-disable-hooks` names; `all` disables every hook.
    pub disabled_hooks: Vec<String>,
    /// `no-additional-gids-for-device-nodes`: no `additionalGids`.
    pub no_additional_gids: bool,
}

/// The CDI device name of a GPU or MIG device under the ID strategy.
pub fn device_name(strategy: DeviceIdStrategy, uuid: &str, index: &str) -> String {
    match strategy {
        DeviceIdStrategy::Uuid => uuid.to_string(),
        DeviceIdStrategy::Index => index.to_string(),
    }
}

/// The device nodes the inventory needs, by container path: each GPU's
/// `/dev/nvidia<minor>`, each MIG device's capability nodes, and the control nodes.
pub fn wanted_nodes(inventory: &Inventory) -> Vec<String> {
    let mut out: Vec<String> = CONTROL_NODES.iter().map(|s| s.to_string()).collect();
    for gpu in &inventory.gpus {
        out.push(format!("/dev/nvidia{}", gpu.minor));
        for mig in &gpu.mig_devices {
            out.extend(mig.cap_paths.iter().cloned());
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Device names in byte order (nvcdi's sorter): `"0","1","10","2"`.
fn sort_devices(devices: &mut [Device]) {
    devices.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
}

/// Paths sorted by depth, then lexically (nvcdi's simplifier).
fn depth_key(p: &str) -> (usize, String) {
    (p.matches('/').count(), p.to_string())
}

pub(super) struct Builder<'a> {
    pub(super) files: &'a DriverFiles,
    pub(super) opts: &'a CdiOptions,
}

impl Builder<'_> {
    fn node(&self, path: &str, gids: &mut Vec<u32>) -> DeviceNode {
        let roots = &self.opts.roots;
        let found = self.files.nodes.get(path).map_or_else(
            || format!("{}{path}", roots.container_dev_root.trim_end_matches('/')),
            |n| n.found.clone(),
        );
        let info = self.files.nodes.get(path).and_then(|n| n.info);
        let host_path = roots.node_host_path(path, &found);
        let mut node = DeviceNode {
            path: path.to_string(),
            host_path,
            major: None,
            minor: None,
            file_mode: None,
            permissions: "rwm".into(),
            gid: None,
        };
        if let Some(info) = info {
            node.major = Some(i64::from(info.major));
            node.minor = Some(i64::from(info.minor));
            node.file_mode = (info.mode != 0).then_some(info.mode);
            node.gid = (info.gid != 0).then_some(info.gid);
            if info.gid != 0 && info.mode & 0o006 != 0o006 && !self.opts.no_additional_gids {
                gids.push(info.gid);
            }
        }
        node
    }

    pub(super) fn edits(&self, paths: &[String]) -> ContainerEdits {
        let mut gids = Vec::new();
        let mut nodes: Vec<DeviceNode> = paths.iter().map(|p| self.node(p, &mut gids)).collect();
        nodes.sort_by_key(|n| depth_key(&n.path));
        nodes.dedup();
        gids.sort_unstable();
        gids.dedup();
        ContainerEdits {
            device_nodes: nodes,
            additional_gids: gids,
            ..ContainerEdits::default()
        }
    }

    pub(super) fn mount(&self, found: &str, options: &[&str]) -> Mount {
        let roots = &self.opts.roots;
        Mount {
            host_path: roots.host_path(found),
            container_path: strip_root(found, &roots.container_driver_root),
            options: options.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Device edits: its nodes and, for its DRM by-path links, a
    /// `create-symlinks` hook (the link keeps the dev-root prefix, as nvcdi's).
    fn device_edits(&self, paths: &[String], links: &[(String, String)]) -> ContainerEdits {
        let mut edits = self.edits(paths);
        if !links.is_empty() && self.hook_enabled("create-symlinks") {
            let args = links
                .iter()
                .flat_map(|(target, link)| ["--link".to_string(), format!("{target}::{link}")])
                .collect();
            edits.hooks.push(self.hook("create-symlinks", args));
        }
        edits
    }

    fn hook_enabled(&self, name: &str) -> bool {
        !self
            .opts
            .disabled_hooks
            .iter()
            .any(|d| d == name || d == "all")
    }

    fn hook(&self, name: &str, args: Vec<String>) -> Hook {
        let path = &self.opts.hook_path;
        let base = path.rsplit('/').next().unwrap_or(path).to_string();
        let mut argv = if base == "nvidia-ctk" {
            vec![base, "hook".into(), name.into()]
        } else {
            vec![base, name.into()]
        };
        argv.extend(args);
        Hook {
            hook_name: "createContainer".into(),
            path: self.opts.roots.host_path(path),
            args: argv,
            env: vec!["NVIDIA_CTK_DEBUG=false".into()],
        }
    }

    fn common(&self) -> ContainerEdits {
        let f = self.files;
        let root = &self.opts.roots.container_driver_root;
        let control: Vec<String> = CONTROL_NODES
            .iter()
            .filter(|p| f.nodes.get(**p).is_some_and(|n| n.info.is_some()))
            .map(|p| p.to_string())
            .collect();
        let mut edits = self.edits(&control);
        let lib_dirs: Vec<String> = f.lib_dirs.iter().map(|d| strip_root(d, root)).collect();
        edits.env = vec![
            format!("NVIDIA_CTK_LIBCUDA_DIR={}", lib_dirs.join(":")),
            "NVIDIA_VISIBLE_DEVICES=void".into(),
        ];
        let mut mounts: Vec<Mount> = Vec::new();
        for p in f.libraries.iter().chain(&f.binaries).chain(&f.firmware) {
            mounts.push(self.mount(p, &RO_OPTIONS));
        }
        for p in &f.ipc_sockets {
            mounts.push(self.mount(p, &IPC_OPTIONS));
        }
        mounts.sort_by_key(|m| depth_key(&m.container_path));
        mounts.dedup();
        edits.mounts = mounts;

        let mut hooks = Vec::new();
        let links: Vec<String> = f
            .links
            .iter()
            .map(|(target, link)| format!("{target}::{}", strip_root(link, root)))
            .collect();
        if !links.is_empty() && self.hook_enabled("create-symlinks") {
            let args = links
                .into_iter()
                .flat_map(|l| ["--link".to_string(), l])
                .collect();
            hooks.push(self.hook("create-symlinks", args));
        }
        if self.hook_enabled("enable-cuda-compat") {
            let arg = format!("--host-driver-version={}", f.version);
            hooks.push(self.hook("enable-cuda-compat", vec![arg]));
        }
        let mut folders: Vec<String> = Vec::new();
        for lib in &f.libraries {
            let c = strip_root(lib, root);
            let dir = c
                .rsplit_once('/')
                .map_or("/", |(d, _)| if d.is_empty() { "/" } else { d })
                .to_string();
            if !folders.contains(&dir) {
                folders.push(dir);
            }
        }
        if !folders.is_empty() && self.hook_enabled("update-ldcache") {
            let args = folders
                .into_iter()
                .flat_map(|d| ["--folder".to_string(), d])
                .collect();
            hooks.push(self.hook("update-ldcache", args));
        }
        for name in [
            "disable-device-node-modification",
            "update-application-profile",
        ] {
            if self.hook_enabled(name) {
                hooks.push(self.hook(name, Vec::new()));
            }
        }
        edits.hooks = hooks;
        edits
    }
}

/// The `k8s.device-plugin.nvidia.com/gpu` spec. GPUs in MIG mode are
/// entries of their own only with `--mig-strategy none` (the plugin then
/// advertises them whole; NVIDIA's spec lacks them, reference §A2); their
/// MIG devices always are.
pub fn gpu_spec(
    inventory: &Inventory,
    files: &DriverFiles,
    opts: &CdiOptions,
) -> Result<Spec, CdiError> {
    let b = Builder { files, opts };
    let mut devices = Vec::new();
    let mut every_node: Vec<String> = Vec::new();
    let mut every_link: Vec<(String, String)> = Vec::new();
    let no_drm = Drm::default();
    for gpu in &inventory.gpus {
        let gpu_node = format!("/dev/nvidia{}", gpu.minor);
        if !gpu.mig_enabled || opts.mig_strategy == MigStrategy::None {
            let name = device_name(opts.id_strategy, &gpu.uuid, &gpu.index.to_string());
            let drm = files.drm.get(&gpu.pci_bus_id).unwrap_or(&no_drm);
            let mut paths = vec![gpu_node.clone()];
            paths.extend(drm.nodes.iter().cloned());
            devices.push((name, paths, drm.links.clone()));
        }
        for (slot, mig) in gpu.mig_devices.iter().enumerate() {
            let index = format!("{}:{slot}", gpu.index);
            let name = device_name(opts.id_strategy, &mig.uuid, &index);
            let mut paths = vec![gpu_node.clone()];
            paths.extend(mig.cap_paths.iter().cloned());
            // (DRM nodes only for MIG profiles with graphics: not modelled.)
            devices.push((name, paths, Vec::new()));
        }
    }
    let mut out: Vec<Device> = Vec::with_capacity(devices.len() + 1);
    for (name, paths, links) in devices {
        super::check_name(&name)?;
        every_node.extend(paths.iter().cloned());
        for l in &links {
            if !every_link.contains(l) {
                every_link.push(l.clone());
            }
        }
        out.push(Device {
            name,
            container_edits: b.device_edits(&paths, &links),
        });
    }
    if out.is_empty() {
        return Err(CdiError::NoDevices);
    }
    every_node.sort();
    every_node.dedup();
    out.push(Device {
        name: ALL_DEVICE.into(),
        container_edits: b.device_edits(&every_node, &every_link),
    });
    sort_devices(&mut out);
    if let Some(w) = out.windows(2).find(|w| w[0].name == w[1].name) {
        return Err(CdiError::DuplicateName(w[0].name.clone()));
    }
    let mut spec = Spec {
        cdi_version: String::new(),
        kind: KIND.to_string(),
        devices: out,
        container_edits: b.common(),
    };
    spec.cdi_version = spec.minimum_version().to_string();
    Ok(spec)
}

#[cfg(test)]
#[path = "generate_tests.rs"]
mod tests;
