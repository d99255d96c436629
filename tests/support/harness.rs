//! The kubelet's own device manager and topology manager (Kubernetes v1.32
//! code, built into one `kubeletharness` binary) as a child process: found
//! through `KUBELET_DEVICEMANAGER`, run with a deadline, its output kept in a
//! file; and `kubelet_internal_checkpoint`, the state it writes on every
//! device update, read back.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub use super::harness_output::Output;

/// Path of the `kubeletharness` binary, or of the directory holding it.
pub const ENV: &str = "KUBELET_DEVICEMANAGER";
/// The binary's name inside a directory named by `ENV`.
pub const BIN_NAME: &str = "kubeletharness";

/// A located, working harness binary.
pub struct Harness {
    bin: PathBuf,
}

impl Harness {
    /// The harness named by `KUBELET_DEVICEMANAGER`. Unset: says on stderr
    /// (past the test's output capture) that `test` was not run and why, and
    /// returns `None`. Set to anything that is not a working harness
    /// (missing, not executable, some other program, empty): panics.
    #[track_caller]
    pub fn from_env(test: &str) -> Option<Harness> {
        let Some(value) = std::env::var_os(ENV) else {
            let line = format!(
                "{test}: NOT RUN: {ENV} is not set (set it to the kubeletharness binary \
                 or its directory, e.g. ../shared/tools/kubelet-devicemanager)\n"
            );
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
            return None;
        };
        let bin = locate(Path::new(&value)).unwrap_or_else(|e| panic!("{ENV}={value:?}: {e}"));
        probe(&bin).unwrap_or_else(|e| panic!("{ENV}={value:?}: {e}"));
        Some(Harness { bin })
    }

    fn command(&self, args: &[&str], log: &Path) -> Command {
        let out = std::fs::File::create(log).expect("harness log file");
        let err = out.try_clone().expect("harness log file");
        let mut cmd = Command::new(&self.bin);
        cmd.args(args).stdin(Stdio::null()).stdout(out).stderr(err);
        cmd
    }

    /// Runs `kubeletharness ARGS` to its end; panics if it takes longer than `timeout`.
    #[track_caller]
    pub fn run(&self, args: &[&str], timeout: Duration) -> Output {
        let mut running = self.spawn(args);
        let status = running.wait(timeout).unwrap_or_else(|| {
            panic!(
                "kubeletharness {args:?} still running after {timeout:?}; output:\n{}",
                running.output_so_far()
            )
        });
        Output::new(status, running.output_so_far())
    }

    /// `kubeletharness SUB -dir DIR -node NODE EXTRA...` to its end (see `run`).
    #[track_caller]
    pub fn on(
        &self,
        sub: &str,
        dir: &Path,
        node: &Path,
        extra: &[&str],
        timeout: Duration,
    ) -> Output {
        self.run(&refs(&sub_args(sub, dir, node, extra)), timeout)
    }

    /// `kubeletharness SUB -dir DIR -node NODE EXTRA...` in the background.
    pub fn spawn_on(&self, sub: &str, dir: &Path, node: &Path, extra: &[&str]) -> Running {
        self.spawn(&refs(&sub_args(sub, dir, node, extra)))
    }

    /// Starts `kubeletharness ARGS` in the background; killed when dropped.
    pub fn spawn(&self, args: &[&str]) -> Running {
        let logdir = tempfile::tempdir().expect("tempdir");
        let log = logdir.path().join("harness.log");
        let child = self
            .command(args, &log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.bin.display()));
        Running {
            child,
            log,
            _logdir: logdir,
        }
    }
}

fn sub_args(sub: &str, dir: &Path, node: &Path, extra: &[&str]) -> Vec<String> {
    let mut v = vec![sub.to_string(), "-dir".into(), dir.display().to_string()];
    v.extend(["-node".into(), node.display().to_string()]);
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// A socket directory `device-plugins` inside its own temp dir (so a test
/// can replace it whole).
pub fn socket_dir() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("device-plugins");
    std::fs::create_dir(&dir).expect("socket dir");
    (tmp, dir)
}

/// The binary a value of `KUBELET_DEVICEMANAGER` names: the path itself, or
/// `kubeletharness` inside it when it is a directory.
fn locate(value: &Path) -> Result<PathBuf, String> {
    use std::os::unix::fs::PermissionsExt;
    if value.as_os_str().is_empty() {
        return Err("empty".into());
    }
    let meta = std::fs::metadata(value).map_err(|e| format!("not found: {e}"))?;
    let bin = if meta.is_dir() {
        value.join(BIN_NAME)
    } else {
        value.to_path_buf()
    };
    let meta = std::fs::metadata(&bin).map_err(|e| format!("{}: {e}", bin.display()))?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(format!("{} is not an executable file", bin.display()));
    }
    Ok(bin)
}

/// Runs the binary without arguments: the harness answers with its usage
/// line and exit status 2; anything else is not a working harness.
fn probe(bin: &Path) -> Result<(), String> {
    let out = Command::new(bin)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{} does not run: {e}", bin.display()))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.code() == Some(2) && text.contains("usage: kubeletharness check|restart|resocket")
    {
        Ok(())
    } else {
        Err(format!(
            "{} is not a working kubeletharness (status {:?}): {text}",
            bin.display(),
            out.status
        ))
    }
}

/// A harness running in the background.
pub struct Running {
    child: Child,
    log: PathBuf,
    _logdir: tempfile::TempDir,
}

impl Running {
    /// Waits up to `timeout` for the process to end.
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("harness wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10)); // poll the exit, bounded by timeout
        }
    }

    /// Everything the harness printed so far (stdout and stderr).
    pub fn output_so_far(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The kubelet's healthy devices per resource, as its device manager last
/// checkpointed them (`RegisteredDevices` holds only healthy devices; the
/// checkpoint is rewritten on every ListAndWatch update). `None` before the
/// first write or while a write is half done.
pub fn checkpoint_healthy(dir: &Path) -> Option<BTreeMap<String, BTreeSet<String>>> {
    let doc = read_checkpoint(dir)?;
    let devices = doc["Data"]["RegisteredDevices"].as_object()?;
    Some(
        devices
            .iter()
            .map(|(name, ids)| {
                let ids = ids.as_array().into_iter().flatten();
                let ids = ids.filter_map(|i| i.as_str().map(String::from)).collect();
                (name.clone(), ids)
            })
            .collect(),
    )
}

/// One container's devices as the kubelet allocated and checkpointed them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodDevices {
    pub pod: String,
    pub resource: String,
    /// NUMA node (as the kubelet keys it) → device IDs.
    pub by_numa: BTreeMap<String, BTreeSet<String>>,
}

/// `PodDeviceEntries` of the checkpoint (empty when there are none).
pub fn checkpoint_pods(dir: &Path) -> Vec<PodDevices> {
    let Some(doc) = read_checkpoint(dir) else {
        return Vec::new();
    };
    let entries = doc["Data"]["PodDeviceEntries"].as_array().cloned();
    entries
        .unwrap_or_default()
        .iter()
        .map(|e| PodDevices {
            pod: e["PodUID"].as_str().unwrap_or_default().to_string(),
            resource: e["ResourceName"].as_str().unwrap_or_default().to_string(),
            by_numa: e["DeviceIDs"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(numa, ids)| {
                    let ids = ids.as_array().into_iter().flatten();
                    let ids = ids.filter_map(|i| i.as_str().map(String::from)).collect();
                    (numa.clone(), ids)
                })
                .collect(),
        })
        .collect()
}

fn read_checkpoint(dir: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(dir.join("kubelet_internal_checkpoint")).ok()?;
    serde_json::from_str(&text).ok()
}

/// Waits until the checkpointed healthy devices satisfy `pred`; panics with
/// the last checkpoint and `context()` on timeout.
pub fn wait_checkpoint(
    dir: &Path,
    timeout: Duration,
    pred: impl Fn(&BTreeMap<String, BTreeSet<String>>) -> bool,
    context: impl Fn() -> String,
) -> BTreeMap<String, BTreeSet<String>> {
    let deadline = Instant::now() + timeout;
    loop {
        let seen = checkpoint_healthy(dir);
        if let Some(seen) = seen.as_ref().filter(|s| pred(s)) {
            return seen.clone();
        }
        assert!(
            Instant::now() < deadline,
            "kubelet checkpoint after {timeout:?}: {seen:?}\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(10)); // poll the file, bounded by timeout
    }
}
