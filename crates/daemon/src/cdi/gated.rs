//! The gated specs NVIDIA writes when their switch is on (reference §A8):
//! `gdrcopy`, `gds` and `mofed`, each one device named `all` holding the
//! class's device nodes (and, for gds, the udev directory and cufile.json),
//! spec-level `NVIDIA_VISIBLE_DEVICES=void`. A class whose nodes are absent
//! has no spec (NVIDIA drops it as "empty device edits") and is not named
//! by Allocate.

use std::collections::BTreeMap;

use super::generate::{Builder, CdiOptions, DriverFiles, FoundNode, RO_OPTIONS};
use super::spec::{ContainerEdits, Device, Spec};
use super::{ALL_DEVICE, VENDOR};

/// The gated classes, in the order Allocate names them.
pub const GATED: [&str; 3] = ["gdrcopy", "gds", "mofed"];

/// What was found for one gated class.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GatedFiles {
    /// Device nodes by container path.
    pub nodes: BTreeMap<String, FoundNode>,
    /// Files and directories to mount (found paths, under the driver root).
    pub mounts: Vec<String>,
}

/// The spec of gated `class`, or `None` when none of its nodes exists.
pub fn gated_spec(class: &str, files: &GatedFiles, opts: &CdiOptions) -> Option<Spec> {
    let paths: Vec<String> = files
        .nodes
        .iter()
        .filter(|(_, n)| n.info.is_some())
        .map(|(p, _)| p.clone())
        .collect();
    if paths.is_empty() {
        return None;
    }
    let driver = DriverFiles {
        nodes: files.nodes.clone(),
        ..DriverFiles::default()
    };
    let b = Builder {
        files: &driver,
        opts,
    };
    let mut edits = b.edits(&paths);
    edits.mounts = files
        .mounts
        .iter()
        .map(|m| b.mount(m, &RO_OPTIONS))
        .collect();
    let mut spec = Spec {
        cdi_version: String::new(),
        kind: format!("{VENDOR}/{class}"),
        devices: vec![Device {
            name: ALL_DEVICE.into(),
            container_edits: edits,
        }],
        container_edits: ContainerEdits {
            env: vec!["NVIDIA_VISIBLE_DEVICES=void".into()],
            ..ContainerEdits::default()
        },
    };
    spec.cdi_version = spec.minimum_version().to_string();
    Some(spec)
}

/// The name Allocate adds for a written gated class: `<vendor>/<class>=all`.
pub fn gated_name(class: &str) -> String {
    format!("{VENDOR}/{class}={ALL_DEVICE}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cdi::{NodeInfo, Roots};

    fn opts() -> CdiOptions {
        CdiOptions {
            roots: Roots {
                container_driver_root: "/driver-root".into(),
                container_dev_root: "/driver-root".into(),
                host_driver_root: "/".into(),
                host_dev_root: "/".into(),
            },
            hook_path: "/usr/bin/nvidia-ctk".into(),
            id_strategy: crate::allocate::response::DeviceIdStrategy::Uuid,
            mig_strategy: crate::resources::MigStrategy::None,
            disabled_hooks: vec![],
            no_additional_gids: false,
        }
    }

    fn found(path: &str, present: bool) -> (String, FoundNode) {
        let info = present.then_some(NodeInfo {
            major: 240,
            minor: 0,
            mode: 0o666,
            gid: 0,
        });
        (
            path.to_string(),
            FoundNode {
                found: format!("/driver-root{path}"),
                info,
            },
        )
    }

    #[test]
    fn a_gated_class_is_one_all_device_with_its_present_nodes_and_mounts() {
        let files = GatedFiles {
            nodes: [
                found("/dev/nvidia-fs0", true),
                found("/dev/nvidia-fs1", false),
            ]
            .into(),
            mounts: vec!["/driver-root/etc/cufile.json".into()],
        };
        let spec = gated_spec("gds", &files, &opts()).unwrap();
        assert_eq!(spec.kind, "k8s.device-plugin.nvidia.com/gds");
        assert_eq!(spec.devices.len(), 1);
        let e = &spec.devices[0].container_edits;
        assert_eq!(spec.devices[0].name, "all");
        assert_eq!(e.device_nodes.len(), 1);
        assert_eq!(
            (
                e.device_nodes[0].path.as_str(),
                e.device_nodes[0].host_path.as_str()
            ),
            ("/dev/nvidia-fs0", "/dev/nvidia-fs0")
        );
        assert_eq!(e.mounts[0].container_path, "/etc/cufile.json");
        assert_eq!(e.mounts[0].host_path, "/etc/cufile.json");
        assert_eq!(spec.container_edits.env, ["NVIDIA_VISIBLE_DEVICES=void"]);
        assert_eq!(gated_name("gds"), "k8s.device-plugin.nvidia.com/gds=all");
    }

    #[test]
    fn a_class_without_nodes_has_no_spec() {
        let files = GatedFiles {
            nodes: [found("/dev/gdrdrv", false)].into(),
            mounts: vec![],
        };
        assert_eq!(gated_spec("gdrcopy", &files, &opts()), None);
        assert_eq!(gated_spec("mofed", &GatedFiles::default(), &opts()), None);
    }
}
