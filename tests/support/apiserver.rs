//! A real kube-apiserver + etcd from the bundle at `$KUBE_APISERVER_BUNDLE`
//! (`.ci/run` points it at shared/tools/kube-apiserver): set but unable to
//! start fails the test; unset, the test prints "not run" and returns.
//! Setup and checks go through the bundle's kubectl.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

pub const ENV: &str = "KUBE_APISERVER_BUNDLE";

pub struct ApiServer {
    bundle: PathBuf,
    pub dir: PathBuf,
    pub kubeconfig: PathBuf,
    pub env: BTreeMap<String, String>,
    /// Removes the work directory when the server is dropped.
    owned: Option<tempfile::TempDir>,
}

fn parse_env(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("export ").or(Some(l.trim())))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            (
                k.to_string(),
                v.trim_matches('"').trim_matches('\'').to_string(),
            )
        })
        .collect()
}

/// Removes the work directories of shared servers whose test process is gone.
fn remove_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix("gdp-apiserver-")
            && !Path::new("/proc").join(pid).exists()
        {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

impl ApiServer {
    fn bundle(test: &str) -> Option<PathBuf> {
        match std::env::var_os(ENV) {
            Some(b) if !b.is_empty() => Some(PathBuf::from(b)),
            _ => {
                println!("not run: {test}: {ENV} is not set (the kube-apiserver bundle)");
                None
            }
        }
    }

    fn start_in(bundle: PathBuf, dir: PathBuf, owned: Option<tempfile::TempDir>) -> ApiServer {
        let kubeconfig = dir.join("kubeconfig");
        let out = Command::new(bundle.join("start"))
            .arg("--dir")
            .arg(&dir)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--watch-pid")
            .arg(std::process::id().to_string())
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{ENV}={}: cannot run start: {e}", bundle.display()));
        assert!(
            out.status.success(),
            "{ENV} is set but the API server did not start:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let env_text = std::fs::read_to_string(dir.join("env")).unwrap_or_default();
        ApiServer {
            bundle,
            dir,
            kubeconfig,
            env: parse_env(&env_text),
            owned,
        }
    }

    /// A server of this test alone, stopped and removed on drop.
    pub fn start(test: &str) -> Option<ApiServer> {
        let bundle = Self::bundle(test)?;
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        Some(Self::start_in(bundle, dir, Some(tmp)))
    }

    /// One server shared by the tests of this binary (each uses its own
    /// node and namespace); the bundle's watchdog stops it when the test
    /// process exits.
    pub fn shared(test: &str) -> Option<&'static ApiServer> {
        static SHARED: OnceLock<ApiServer> = OnceLock::new();
        let bundle = Self::bundle(test)?;
        Some(SHARED.get_or_init(|| {
            remove_stale_dirs();
            let dir = std::env::temp_dir().join(format!("gdp-apiserver-{}", std::process::id()));
            Self::start_in(bundle, dir, None)
        }))
    }

    fn kubectl_path(&self) -> PathBuf {
        let bin = self.env.get("KUBE_APISERVER_BIN_DIR").map(PathBuf::from);
        bin.unwrap_or_else(|| self.bundle.join("bin"))
            .join("kubectl")
    }

    /// Runs kubectl as admin; returns its output whatever the status.
    pub fn kubectl_output(&self, args: &[&str], stdin: Option<&str>) -> Output {
        self.kubectl_as(&self.kubeconfig, args, stdin)
    }

    /// Runs kubectl with `kubeconfig`; returns its output whatever the status.
    pub fn kubectl_as(&self, kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> Output {
        use std::io::Write;
        let mut child = Command::new(self.kubectl_path())
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl runs");
        if let Some(text) = stdin
            && let Some(mut pipe) = child.stdin.take()
        {
            pipe.write_all(text.as_bytes()).expect("kubectl stdin");
        }
        drop(child.stdin.take());
        child.wait_with_output().expect("kubectl output")
    }

    /// Runs kubectl as admin and panics unless it succeeds; returns stdout.
    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.kubectl_output(args, stdin);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Installs NFD's NodeFeature CRD (the minimal one in tests/data), waits
    /// until it is served, and creates `namespace` for the objects.
    pub fn install_node_feature_crd(&self, namespace: &str) {
        const CRD: &str = include_str!("../data/nodefeature-crd.yaml");
        self.kubectl(&["apply", "-f", "-"], Some(CRD));
        self.kubectl(
            &[
                "wait",
                "--for=condition=Established",
                "crd/nodefeatures.nfd.k8s-sigs.io",
                "--timeout=30s",
            ],
            None,
        );
        self.kubectl(&["create", "namespace", namespace], None);
    }

    /// Creates Node `name` with no labels.
    pub fn create_node(&self, name: &str) {
        let node = format!(
            "{{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{{\"name\":\"{name}\"}}}}"
        );
        self.kubectl(&["create", "-f", "-"], Some(&node));
    }

    /// Sets (`Some`) or removes (`None`) a label of Node `node`.
    pub fn label_node(&self, node: &str, key: &str, value: Option<&str>) {
        let arg = match value {
            Some(v) => format!("{key}={v}"),
            None => format!("{key}-"),
        };
        self.kubectl(&["label", "node", node, &arg, "--overwrite"], None);
    }

    /// Stops the server now (the plugin's "API server down" case).
    pub fn stop(&self) {
        let _ = Command::new(self.bundle.join("stop"))
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .output();
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        if self.owned.is_some() {
            self.stop();
        }
    }
}
