//! Shared pieces of the node-feature e2e tests: a config directory, the
//! plugin on a simulated node with per-node config, and a token kubeconfig.

use std::path::{Path, PathBuf};

use super::apiserver::ApiServer;
use super::kubelet::FakeKubelet;
use super::process::Plugin;
use super::repo_file;

pub const LABEL: &str = "nvidia.com/device-plugin.config";
pub const GPU: &str = "nvidia.com/gpu";

pub fn time_sliced(replicas: u32) -> String {
    format!(
        "version: v1\nsharing:\n  timeSlicing:\n    resources:\n    - name: nvidia.com/gpu\n      replicas: {replicas}\n"
    )
}

/// A config directory with `default` (whole GPUs) and `time-sliced` (x4).
pub fn configs() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("default"), "version: v1\n").unwrap();
    std::fs::write(dir.path().join("time-sliced"), time_sliced(4)).unwrap();
    dir
}

/// The plugin on the simulated 8-GPU node `node` with per-node config from
/// `configs`, reaching the API server through `kubeconfig`, plus `extra` args
/// and env.
pub fn plugin(
    kubeconfig: &Path,
    node: &str,
    configs: &Path,
    k: &FakeKubelet,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Plugin {
    let mut args: Vec<String> = [
        "--simulate",
        repo_file("config/nodes/dgx-a100.yaml").to_str().unwrap(),
        "--kubelet-socket",
        k.socket().to_str().unwrap(),
        "--metrics-address",
        "127.0.0.1:0",
        "--config-dir",
        configs.to_str().unwrap(),
    ]
    .map(str::to_string)
    .to_vec();
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let kubeconfig = kubeconfig.display().to_string();
    let mut envs = vec![("KUBECONFIG", kubeconfig.as_str()), ("NODE_NAME", node)];
    envs.extend_from_slice(env);
    Plugin::start(&refs, &envs)
}

/// A kubeconfig in `dir` that authenticates with `token` (a ServiceAccount's).
pub fn token_kubeconfig(api: &ApiServer, dir: &Path, token: &str) -> PathBuf {
    let server = &api.env["KUBE_APISERVER_URL"];
    let ca = &api.env["KUBE_CA_FILE"];
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {server}\n    certificate-authority: {ca}\nusers:\n- name: sa\n  user:\n    token: {token}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: sa\ncurrent-context: test\n"
    );
    let path = dir.join("token-kubeconfig");
    std::fs::write(&path, text).unwrap();
    path
}
