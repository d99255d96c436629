//! The kubelet's DRA side for the tests: `draharness` from `$DRA_HARNESS`
//! (`.ci/run` points it at shared/tools/kubelet-dra; set but missing fails
//! the test, unset prints "not run"), the daemon with `--dra` on a
//! simulated node against the shared API server, and reading its slices.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::apiserver::ApiServer;
use super::cdi::{FakeDriverRoot, Layout};
use super::kubelet::FakeKubelet;
use super::process::Plugin;

pub const ENV: &str = "DRA_HARNESS";

/// One harness run at a time per API server: each run creates the
/// cluster-scoped DeviceClass `gpu.nvidia.com` if it is missing, and two
/// concurrent runs race on that (one gets "already exists").
static ONE_RUN: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// `$DRA_HARNESS/bin/draharness`, or `None` (printed) when unset.
pub fn harness(test: &str) -> Option<PathBuf> {
    let Some(dir) = std::env::var_os(ENV).filter(|d| !d.is_empty()) else {
        println!("not run: {test}: {ENV} is not set (the kubelet DRA harness)");
        return None;
    };
    let bin = PathBuf::from(dir).join("bin/draharness");
    assert!(
        bin.is_file(),
        "{ENV} is set but {} is missing",
        bin.display()
    );
    Some(bin)
}

/// What a harness run printed, and how it ended.
pub struct Run {
    pub code: Option<i32>,
    pub output: String,
    /// `RESULT: OK (N checks passed, M failed)` → (ok, passed, failed).
    pub result: Option<(bool, u32, u32)>,
}

/// Parses the summary's last line.
pub fn parse_result(output: &str) -> Option<(bool, u32, u32)> {
    let line = output.lines().rev().find(|l| l.starts_with("RESULT: "))?;
    let ok = line.starts_with("RESULT: OK");
    let inner = line.split_once('(')?.1.trim_end_matches(')');
    let mut nums = inner
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<u32>().ok());
    Some((ok, nums.next()??, nums.next()??))
}

/// The daemon with `--dra` on a node file, its kubelet dir and CDI root.
pub struct DraNode {
    pub name: String,
    pub api: &'static ApiServer,
    pub harness: PathBuf,
    pub kubelet_dir: tempfile::TempDir,
    pub cdi: tempfile::TempDir,
    pub node_file: PathBuf,
    pub kubelet: FakeKubelet,
    pub plugin: Plugin,
    args: Vec<String>,
    _node_dir: tempfile::TempDir,
    _root: FakeDriverRoot,
}

impl DraNode {
    /// `None` when the API server bundle or the harness is not configured.
    pub fn start(test: &str, node: &str, example: &str, extra: &[&str]) -> Option<DraNode> {
        let harness = harness(test)?;
        let api = ApiServer::shared(test)?;
        let node_dir = tempfile::tempdir().unwrap();
        let node_file = node_dir.path().join("node.yaml");
        std::fs::copy(
            super::repo_file(&format!("config/nodes/{example}.yaml")),
            &node_file,
        )
        .unwrap();
        let root = FakeDriverRoot::new(&node_file, Layout::Standard);
        let kubelet_dir = tempfile::tempdir().unwrap();
        let cdi = tempfile::tempdir().unwrap();
        let kubelet = FakeKubelet::start();
        let mut args: Vec<String> = [
            "--simulate",
            &node_file.display().to_string(),
            "--kubelet-socket",
            &kubelet.socket().display().to_string(),
            "--dra",
            "--kubelet-dir",
            &kubelet_dir.path().display().to_string(),
            "--kubeconfig",
            &api.kubeconfig.display().to_string(),
            "--node-name",
            node,
            "--cdi-root",
            &cdi.path().display().to_string(),
            "--driver-root",
            &root.display(),
            "--driver-root-ctr-path",
            &root.display(),
            // A hook binary that exists, so a runtime can run the spec's hooks.
            "--nvidia-cdi-hook-path",
            &root.logging_hook().display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let plugin = Plugin::start(&refs, &[]);
        Some(DraNode {
            args,
            name: node.to_string(),
            api,
            harness,
            kubelet_dir,
            cdi,
            node_file,
            kubelet,
            plugin,
            _node_dir: node_dir,
            _root: root,
        })
    }

    /// Stops the daemon (SIGTERM, waits for its exit) and starts it again
    /// with the same flags, dirs and node file.
    pub async fn restart_plugin(&mut self) {
        self.plugin.signal("TERM");
        let status = self.plugin.wait_exit(super::WAIT).await;
        assert!(
            status.is_some_and(|s| s.success()),
            "the daemon did not exit cleanly: {status:?}"
        );
        let refs: Vec<&str> = self.args.iter().map(String::as_str).collect();
        self.plugin = Plugin::start(&refs, &[]);
    }

    /// Runs `draharness <command> -node N -driver gpu.nvidia.com -root DIR
    /// -namespace N <args>`.
    pub fn run(&self, command: &str, args: &[&str]) -> Run {
        let _one = ONE_RUN.lock().unwrap_or_else(|e| e.into_inner());
        let out = Command::new("timeout")
            .arg("300")
            .arg(&self.harness)
            .arg(command)
            .args([
                "-node",
                &self.name,
                "-driver",
                "gpu.nvidia.com",
                "-namespace",
                &self.name,
            ])
            .arg("-root")
            .arg(self.kubelet_dir.path())
            .args(["-timeout", "60s"])
            .args(args)
            .env("KUBECONFIG", &self.api.kubeconfig)
            .output()
            .expect("draharness runs");
        let output = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Run {
            code: out.status.code(),
            result: parse_result(&output),
            output,
        }
    }

    /// Runs the harness and asserts exit 0, `RESULT: OK` and at least
    /// `passed` passed checks; returns the output.
    pub fn run_ok(&self, command: &str, args: &[&str], passed: u32) -> String {
        let run = self.run(command, args);
        let ok = run.code == Some(0)
            && run
                .result
                .is_some_and(|(ok, p, f)| ok && p >= passed && f == 0);
        assert!(
            ok,
            "draharness {command} {args:?}: exit {:?}, result {:?}\n{}\nplugin log:\n{}",
            run.code,
            run.result,
            run.output,
            self.plugin.log()
        );
        // The harness's own summary, for the test log (`--nocapture`).
        for line in run
            .output
            .lines()
            .filter(|l| l.starts_with("RESULT") || l.starts_with("restarts="))
        {
            println!("draharness {command} {args:?} on {}: {line}", self.name);
        }
        run.output
    }

    /// This node's ResourceSlices of our driver, as JSON.
    pub fn slices(&self) -> Vec<Value> {
        let out = self.api.kubectl(
            &[
                "get",
                "resourceslices",
                "--field-selector",
                &format!("spec.nodeName={}", self.name),
                "-o",
                "json",
            ],
            None,
        );
        let list: Value = serde_json::from_str(&out).unwrap();
        list["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|s| s["spec"]["driver"] == "gpu.nvidia.com")
            .collect()
    }

    /// Every device of the node's slices.
    pub fn devices(&self) -> Vec<Value> {
        self.slices()
            .iter()
            .flat_map(|s| s["spec"]["devices"].as_array().cloned().unwrap_or_default())
            .collect()
    }

    /// Waits up to `timeout` until `pred` holds for the devices; panics with
    /// the last devices and the plugin's log otherwise.
    /// A channel to the daemon's DRA service socket, dialled until it
    /// answers or `timeout` passes (after a restart it is served again).
    pub async fn dra_channel(&self, timeout: Duration) -> tonic::transport::Channel {
        let socket = self
            .kubelet_dir
            .path()
            .join("plugins/gpu.nvidia.com/dra.sock");
        let deadline = Instant::now() + timeout;
        loop {
            match gpu_device_plugin::kubelet::unix_channel(&socket).await {
                Ok(c) => return c,
                Err(e) => assert!(Instant::now() < deadline, "{}: {e}", socket.display()),
            }
            tokio::time::sleep(Duration::from_millis(20)).await; // poll the socket, bounded
        }
    }

    pub fn wait_devices(&self, timeout: Duration, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let end = Instant::now() + timeout;
        loop {
            let devices = self.devices();
            if pred(&devices) {
                return devices;
            }
            assert!(
                Instant::now() < end,
                "slices did not change as expected in {timeout:?}: {devices:#?}\nplugin log:\n{}",
                self.plugin.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Rewrites the node file with `f` applied (atomically).
    pub fn edit_node(&self, f: impl Fn(&str) -> String) {
        let text = std::fs::read_to_string(&self.node_file).unwrap();
        super::write_atomic(&self.node_file, &f(&text));
    }

    pub fn cdi_root(&self) -> &Path {
        self.cdi.path()
    }
}

/// Device names of slice devices.
pub fn names(devices: &[Value]) -> Vec<String> {
    devices
        .iter()
        .filter_map(|d| d["name"].as_str().map(str::to_string))
        .collect()
}
