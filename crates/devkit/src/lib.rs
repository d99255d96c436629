//! Tools for developing and checking the daemon, never run on a node: an
//! in-process kubelet ([`kubelet`]), the [`bench`] harness and the [`demo`].
//! Used by the binary's `demo` and `bench` subcommands, the end-to-end tests
//! and the benches; the daemon library (`gpu_device_plugin`) never calls it.

pub mod bench;
pub mod demo;
pub mod kubelet;
