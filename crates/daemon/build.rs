//! Compiles the kubelet device-plugin API (the repository's proto/api.proto)
//! into OUT_DIR with
//! protox, so no system `protoc` is needed.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=../../proto/api.proto");
    let fds = protox::compile(["api.proto"], ["../../proto"])?;
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}
