//! Compiles the kubelet device-plugin API (the repository's proto/api.proto)
//! and the kubelet's PodResources v1 API (proto/podresources/v1/api.proto,
//! client, and a server for the tests' fake kubelet) into OUT_DIR with
//! protox, so no system `protoc` is needed.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=../../proto/api.proto");
    println!("cargo:rerun-if-changed=../../proto/podresources/v1/api.proto");
    let fds = protox::compile(["api.proto"], ["../../proto"])?;
    tonic_prost_build::configure().compile_fds(fds)?;
    let fds = protox::compile(["api.proto"], ["../../proto/podresources/v1"])?;
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}
