//! Compiles the kubelet's gRPC APIs into OUT_DIR with protox, so no system
//! `protoc` is needed: the device-plugin API (proto/api.proto), PodResources
//! v1 (client, and a server for the tests' fake kubelet), and for DRA the
//! plugin registration API, DRA v1 and v1beta1, and DRA resource health.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "api.proto",
        "podresources/v1/api.proto",
        "pluginregistration/v1/api.proto",
        "dra/v1/api.proto",
        "dra/v1beta1/api.proto",
        "dra-health/v1alpha1/api.proto",
    ];
    for p in protos {
        println!("cargo:rerun-if-changed=../../proto/{p}");
    }
    let fds = protox::compile(["api.proto"], ["../../proto"])?;
    tonic_prost_build::configure().compile_fds(fds)?;
    for dir in &protos[1..] {
        let (dir, file) = dir.rsplit_once('/').unwrap_or(("", dir));
        let fds = protox::compile([file], [format!("../../proto/{dir}")])?;
        tonic_prost_build::configure().compile_fds(fds)?;
    }
    Ok(())
}
