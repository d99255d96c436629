//! gpu-device-plugin: a Kubernetes device plugin for NVIDIA GPUs, a drop-in
//! replacement for NVIDIA's k8s-device-plugin.
//!
//! Pure core (config, resource plan, allocation, health policy) inside thin
//! I/O shells (NVML or simulated backend, gRPC servers, kubelet registration).

pub mod allocate;
pub mod cdi;
pub mod check_config;
pub mod config;
pub mod daemon;
pub mod dra;
pub mod gpu;
pub mod health;
pub mod inspect;
pub mod kubelet;
pub mod metrics;
pub mod mps;
pub mod node;
pub mod numa;
pub mod plugin;
pub mod resources;
pub mod usage;
pub mod watch;

pub mod v1beta1 {
    //! The kubelet device-plugin API, generated from proto/api.proto.
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("v1beta1");
}

pub mod podresources_v1 {
    //! The kubelet PodResources v1 API, generated from proto/podresources/v1/api.proto.
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("v1");
}

pub mod pluginregistration {
    //! The kubelet plugin watcher's registration API, from proto/pluginregistration/v1.
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("pluginregistration");
}

pub mod dra_v1 {
    //! The kubelet DRA v1 API, from proto/dra/v1/api.proto.
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("k8s.io.kubelet.pkg.apis.dra.v1");
}

pub mod dra_v1beta1 {
    //! The kubelet DRA v1beta1 API, from proto/dra/v1beta1/api.proto.
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("k8s.io.kubelet.pkg.apis.dra.v1beta1");
}

pub mod dra_health_v1alpha1 {
    //! The kubelet DRA resource health API, from proto/dra-health/v1alpha1/api.proto.
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("v1alpha1");
}
