//! Building `ContainerAllocateResponse`s exactly as NVIDIA's plugin does for the
//! `envvar`, `volume-mounts`, `cdi-annotations` and `cdi-cri` strategies,
//! `passDeviceSpecs`, MPS and the gdrcopy/gds/mofed switches (reference §4,
//! `cdi-and-mps.md` §A9).

use std::collections::HashMap;

use crate::resources::{Resource, SharingKind};
use crate::v1beta1::{ContainerAllocateResponse, DeviceSpec, Mount};

/// Directory NVIDIA's runtime reads device IDs from under `volume-mounts`.
pub const VOLUME_MOUNTS_DIR: &str = "/var/run/nvidia-container-devices";
/// Control device nodes passed with `passDeviceSpecs` when they exist.
pub const CONTROL_NODES: [&str; 4] = [
    "/dev/nvidiactl",
    "/dev/nvidia-uvm",
    "/dev/nvidia-uvm-tools",
    "/dev/nvidia-modeset",
];

/// What goes into `NVIDIA_VISIBLE_DEVICES` (`--device-id-strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceIdStrategy {
    #[default]
    Uuid,
    Index,
}

impl DeviceIdStrategy {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "uuid" => Some(Self::Uuid),
            "index" => Some(Self::Index),
            _ => None,
        }
    }
}

/// MPS settings of a resource: where its daemon's pipe directory and shm live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpsPaths {
    /// Host directory given by `--mps-root`.
    pub root: String,
}

/// Everything Allocate needs besides the devices, computed once per plan.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AllocateOptions {
    pub envvar: bool,
    pub volume_mounts: bool,
    pub id_strategy: DeviceIdStrategy,
    pub pass_device_specs: bool,
    /// Host path prefix of device nodes (`nvidiaDevRoot`).
    pub dev_root: String,
    /// Control nodes that exist in the plugin's container (checked when the plan is applied).
    pub control_nodes: Vec<String>,
    /// Extra environment, e.g. `NVIDIA_GDS=enabled`.
    pub extra_envs: Vec<(String, String)>,
    /// Set when MPS sharing is active.
    pub mps: Option<MpsPaths>,
    /// Set when a CDI strategy is chosen.
    pub cdi: Option<CdiAllocate>,
}

/// The CDI strategies of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CdiAllocate {
    /// `cdi-annotations`: one annotation per container.
    pub annotations: bool,
    /// `cdi-cri`: `cdi_devices` in the response.
    pub cri: bool,
    /// `--cdi-annotation-prefix` (default `cdi.k8s.io/`).
    pub annotation_prefix: String,
    /// Names added after the devices: `<vendor>/<class>=all` of each gated
    /// spec written (gdrcopy, gds, mofed).
    pub gated: Vec<String>,
}

/// Why a request was refused; the text is NVIDIA's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocateError {
    #[error("invalid allocation request for \"{resource}\": invalid request: unknown device: {id}")]
    UnknownDevice { resource: String, id: String },
    #[error(
        "invalid allocation request for \"{resource}\": invalid request: maximum request size for shared resources is 1; found {found}"
    )]
    TooManyShared { resource: String, found: usize },
}

/// Builds the response for one container request.
pub fn allocate<S: std::hash::BuildHasher>(
    resource: &Resource,
    index: &HashMap<String, usize, S>,
    request: &[String],
    options: &AllocateOptions,
) -> Result<ContainerAllocateResponse, AllocateError> {
    let mut devices = Vec::with_capacity(request.len());
    for id in request {
        let Some(device) = index.get(id).and_then(|&i| resource.devices.get(i)) else {
            return Err(AllocateError::UnknownDevice {
                resource: resource.name.clone(),
                id: id.clone(),
            });
        };
        devices.push(device);
    }
    if let Some(sharing) = &resource.sharing
        && sharing.fail_requests_greater_than_one
        && request.len() > 1
        && request.iter().any(|id| id.contains("::"))
    {
        return Err(AllocateError::TooManyShared {
            resource: resource.name.clone(),
            found: request.len(),
        });
    }

    // Physical IDs, deduplicated, in request order.
    let mut ids: Vec<&str> = Vec::with_capacity(devices.len());
    for d in &devices {
        let id = match options.id_strategy {
            DeviceIdStrategy::Uuid => d.uuid.as_str(),
            DeviceIdStrategy::Index => d.index.as_str(),
        };
        if !ids.contains(&id) {
            ids.push(id);
        }
    }

    let mut response = ContainerAllocateResponse::default();
    for (k, v) in &options.extra_envs {
        response.envs.insert(k.clone(), v.clone());
    }
    if let Some(mps) = &options.mps
        && resource.sharing.as_ref().map(|s| s.kind) == Some(SharingKind::Mps)
    {
        add_mps(&mut response, &resource.name, mps);
    }
    if let Some(cdi) = &options.cdi {
        super::cdi::add_cdi(&mut response, &ids, cdi);
    }
    if options.envvar {
        response
            .envs
            .insert("NVIDIA_VISIBLE_DEVICES".into(), ids.join(","));
    }
    if options.volume_mounts {
        response
            .envs
            .insert("NVIDIA_VISIBLE_DEVICES".into(), VOLUME_MOUNTS_DIR.into());
        response.mounts.extend(ids.iter().map(|id| Mount {
            container_path: format!("{VOLUME_MOUNTS_DIR}/{id}"),
            host_path: "/dev/null".into(),
            read_only: false,
        }));
    }
    // As NVIDIA: with only CDI strategies, no device specs.
    if options.pass_device_specs && (options.envvar || options.volume_mounts) {
        let mut paths: Vec<&str> = options.control_nodes.iter().map(String::as_str).collect();
        for d in &devices {
            for p in &d.paths {
                if !paths.contains(&p.as_str()) {
                    paths.push(p);
                }
            }
        }
        response.devices = paths
            .into_iter()
            .map(|p| DeviceSpec {
                container_path: p.to_string(),
                host_path: join_root(&options.dev_root, p),
                permissions: "rw".into(),
            })
            .collect();
    }
    Ok(response)
}

fn add_mps(response: &mut ContainerAllocateResponse, resource: &str, mps: &MpsPaths) {
    let pipe = format!("/mps/{resource}/pipe");
    response
        .envs
        .insert("CUDA_MPS_PIPE_DIRECTORY".into(), pipe.clone());
    response.mounts.push(Mount {
        container_path: pipe,
        host_path: join_root(&mps.root, &format!("/{resource}/pipe")),
        read_only: false,
    });
    response.mounts.push(Mount {
        container_path: "/dev/shm".into(),
        host_path: join_root(&mps.root, "/shm"),
        read_only: false,
    });
}

/// `root` + absolute `path`, as Go's filepath.Join does for these inputs.
pub fn join_root(root: &str, path: &str) -> String {
    let root = root.trim_end_matches('/');
    format!("{root}{path}")
}

#[cfg(test)]
#[path = "response_tests.rs"]
mod tests;
