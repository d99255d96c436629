//! The real `gpu-device-plugin` binary as a child process.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_gpu-device-plugin");

pub struct Plugin {
    child: Option<Child>,
    log: PathBuf,
    _logdir: tempfile::TempDir,
}

impl Plugin {
    /// Starts the daemon with a clean environment plus `envs`.
    pub fn start(args: &[&str], envs: &[(&str, &str)]) -> Self {
        let logdir = tempfile::tempdir().expect("tempdir");
        let log = logdir.path().join("plugin.log");
        let file = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env_clear()
            .env("RUST_LOG", "debug")
            .envs(envs.iter().copied())
            .stdout(Stdio::null())
            .stderr(file);
        let child = cmd.spawn().expect("plugin binary starts");
        Plugin {
            child: Some(child),
            log,
            _logdir: logdir,
        }
    }

    /// Starts the daemon on a simulated node against `kubelet_socket`.
    pub fn simulated(node: &Path, kubelet_socket: &Path, extra: &[&str]) -> Self {
        let mut args = vec![
            "--simulate".to_string(),
            node.display().to_string(),
            "--kubelet-socket".to_string(),
            kubelet_socket.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        Plugin::start(&refs, &[])
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Sends a signal by name (TERM, HUP, INT).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the process to exit, up to `timeout`, without blocking the
    /// async runtime (the in-process kubelet must keep answering meanwhile).
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let status = child.wait();
            let _ = tx.send(status);
        });
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(Ok(status))) => Some(status),
            _ => None,
        }
    }

    /// The file the process logs to.
    pub fn log_path(&self) -> PathBuf {
        self.log.clone()
    }

    /// Everything the plugin logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
