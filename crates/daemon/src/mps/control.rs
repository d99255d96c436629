//! Running `nvidia-cuda-mps-control` and `nvidia-smi`: every run has a
//! timeout, a bounded output, and (for the control binary) exactly the
//! environment of its daemon, as NVIDIA runs it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use super::MpsError;

/// The most output kept from one run.
const MAX_OUTPUT: u64 = 64 * 1024;
/// How long one run may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(10);

/// The two binaries the control daemon runs.
#[derive(Debug, Clone)]
pub struct Control {
    pub control_bin: PathBuf,
    pub smi_bin: PathBuf,
}

/// `name` itself when it has a slash, else its first match on PATH.
pub fn resolve(name: &Path, flag: &'static str) -> Result<PathBuf, MpsError> {
    if name.components().count() > 1 || name.is_absolute() {
        return Ok(name.to_path_buf());
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| MpsError::NotFound {
            bin: name.display().to_string(),
            flag,
        })
}

struct Finished {
    ok: bool,
    status: String,
    output: String,
}

async fn run(
    mut cmd: Command,
    what: String,
    bin: &Path,
    stdin: Option<&str>,
    capture: bool,
) -> Result<Finished, MpsError> {
    let out = || {
        if capture {
            Stdio::piped()
        } else {
            Stdio::null()
        }
    };
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(out())
    .stderr(out())
    .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|source| MpsError::Spawn {
        bin: bin.display().to_string(),
        source,
    })?;
    let io = async {
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            // NVIDIA writes the command without a newline, then closes stdin.
            let _ = pipe.write_all(text.as_bytes()).await;
        }
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        let read_out = async {
            if let Some(s) = stdout {
                let _ = s.take(MAX_OUTPUT).read_to_end(&mut out).await;
            }
        };
        let read_err = async {
            if let Some(s) = stderr {
                let _ = s.take(MAX_OUTPUT).read_to_end(&mut err).await;
            }
        };
        tokio::join!(read_out, read_err);
        let status = child.wait().await;
        out.extend(err);
        (status, out)
    };
    let (status, out) =
        tokio::time::timeout(RUN_TIMEOUT, io)
            .await
            .map_err(|_| MpsError::Timeout {
                what,
                secs: RUN_TIMEOUT.as_secs(),
            })?;
    let status = status.map_err(|source| MpsError::Spawn {
        bin: bin.display().to_string(),
        source,
    })?;
    Ok(Finished {
        ok: status.success(),
        status: status
            .code()
            .map_or_else(|| "killed by a signal".to_string(), |c| c.to_string()),
        output: String::from_utf8_lossy(&out).trim().to_string(),
    })
}

fn tail(output: &str) -> String {
    if output.is_empty() {
        String::new()
    } else {
        format!(": {output}")
    }
}

impl Control {
    fn control(&self, env: &[(String, String)]) -> Command {
        let mut cmd = Command::new(&self.control_bin);
        cmd.env_clear().envs(env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// `nvidia-cuda-mps-control -d`: starts the daemon in the background.
    pub async fn start(&self, env: &[(String, String)]) -> Result<(), MpsError> {
        let mut cmd = self.control(env);
        cmd.arg("-d");
        // The daemon forked by `-d` may keep inherited pipes open: no capture.
        let done = run(
            cmd,
            "nvidia-cuda-mps-control -d".into(),
            &self.control_bin,
            None,
            false,
        )
        .await?;
        if done.ok {
            Ok(())
        } else {
            Err(MpsError::Command {
                command: "-d".into(),
                status: done.status,
                output: tail(&done.output),
            })
        }
    }

    /// Sends one command to the daemon; returns what it answered.
    pub async fn send(&self, env: &[(String, String)], command: &str) -> Result<String, MpsError> {
        let cmd = self.control(env);
        let what = format!("MPS command {command:?}");
        let done = run(cmd, what, &self.control_bin, Some(command), true).await?;
        if done.ok {
            Ok(done.output)
        } else {
            Err(MpsError::Command {
                command: command.to_string(),
                status: done.status,
                output: tail(&done.output),
            })
        }
    }

    /// `nvidia-smi -i <uuid> -c <mode>` (EXCLUSIVE_PROCESS or DEFAULT).
    pub async fn compute_mode(&self, uuid: &str, mode: &'static str) -> Result<(), MpsError> {
        let mut cmd = Command::new(&self.smi_bin);
        cmd.args(["-i", uuid, "-c", mode]);
        let done = run(
            cmd,
            format!("nvidia-smi -i {uuid} -c {mode}"),
            &self.smi_bin,
            None,
            true,
        )
        .await?;
        if done.ok {
            Ok(())
        } else {
            Err(MpsError::ComputeMode {
                mode,
                status: done.status,
                output: tail(&done.output),
            })
        }
    }
}
