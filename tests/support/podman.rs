//! podman as the real CDI consumer (Debian's podman + runc, found through
//! `PODMAN`; unset = the caller skips, set but missing = panic): a busybox
//! image made with `podman import`, what a test copied into /var/run/cdi
//! removed when it ends, and `podman run` with the flags this machine class
//! needs.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The `PODMAN` binary, or `None` (with the reason printed) when unset.
pub fn binary() -> Option<PathBuf> {
    let Some(path) = std::env::var_os("PODMAN") else {
        println!("not run: PODMAN is not set (.ci/run sets it to /usr/bin/podman)");
        return None;
    };
    let path = PathBuf::from(path);
    assert!(path.is_file(), "PODMAN={} does not exist", path.display());
    Some(path)
}

/// Removes a spec the test put on the host, and its image, when dropped.
pub struct Cleanup {
    pub podman: PathBuf,
    pub spec: PathBuf,
    pub image: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.spec);
        let _ = Command::new(&self.podman)
            .args(["rmi", "-f", &self.image])
            .output();
    }
}

/// Imports `name`: an image holding only a static busybox at /bin/busybox
/// (and /bin/sh), from `BUSYBOX` (default /bin/busybox, busybox-static).
pub fn import_busybox(podman: &Path, name: &str) {
    let busybox = std::env::var("BUSYBOX").unwrap_or_else(|_| "/bin/busybox".into());
    assert!(
        Path::new(&busybox).is_file(),
        "busybox {busybox} is missing (apt-get install busybox-static)"
    );
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("rootfs/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(&busybox, bin.join("busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", bin.join("sh")).unwrap();
    let tar = dir.path().join("rootfs.tar");
    let status = Command::new("tar")
        .arg("-C")
        .arg(dir.path().join("rootfs"))
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    let out = Command::new(podman)
        .arg("import")
        .arg(&tar)
        .arg(name)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "podman import: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `podman run --rm` (bounded by `timeout 300`) with runc, cgroupfs, no
/// network and the ulimits this machine class needs; the caller adds
/// `--device …`, the image and the command.
pub fn run(podman: &Path) -> Command {
    let mut cmd = Command::new("timeout");
    cmd.arg("300")
        .arg(podman)
        .args(["--runtime", "runc", "--cgroup-manager", "cgroupfs"])
        .args(["run", "--rm", "--network", "none"])
        .args([
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
        ]);
    cmd
}
