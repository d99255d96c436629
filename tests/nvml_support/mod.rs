//! Shared helpers of the NVML backend tests: build the fake driver
//! (`tests/fake-nvml`), stage it under a driver root next to a node file, a
//! fake sysfs and a `mig-minors` table, and run scenarios in child processes
//! (NVML state and the fake's env vars are per process); node-file edits and
//! per-thread wake counts; health watches on both backends (`watch`).
#![allow(dead_code)]

pub mod watch;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use gpu_device_plugin::gpu::Backend;
use gpu_device_plugin::gpu::nvml::NvmlOptions;
use gpu_device_plugin::gpu::simulated::Simulated;
use gpu_device_plugin::numa::NumaSource;

/// The fake `libnvidia-ml` built from `tests/fake-nvml`, built on first use.
pub fn fake_library() -> &'static Path {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .args([
                "build",
                "-p",
                "fake-nvml",
                "--message-format=json-render-diagnostics",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("run cargo to build tests/fake-nvml");
        assert!(
            out.status.success(),
            "building fake-nvml failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|msg| {
                msg["reason"] == "compiler-artifact" && msg["target"]["name"] == "fake_nvml"
            })
            .flat_map(|msg| msg["filenames"].as_array().cloned().unwrap_or_default())
            .filter_map(|f| f.as_str().map(PathBuf::from))
            .find(|f| f.extension().is_some_and(|e| e == "so"))
            .expect("cargo reported no libfake_nvml.so")
    })
}

/// The files of one staged scenario, all under one directory.
#[derive(Debug, Clone)]
pub struct Paths {
    pub root: PathBuf,
}

impl Paths {
    /// The scenario a parent test staged for this child process.
    pub fn from_env() -> Paths {
        Paths {
            root: std::env::var_os("NVML_TEST_DIR")
                .expect("NVML_TEST_DIR")
                .into(),
        }
    }
    pub fn node(&self) -> PathBuf {
        self.root.join("node.yaml")
    }
    pub fn driver_root(&self) -> PathBuf {
        self.root.join("driver-root")
    }
    pub fn sys_root(&self) -> PathBuf {
        self.root.join("host")
    }
    pub fn mig_minors(&self) -> PathBuf {
        self.root.join("mig-minors")
    }
    /// Backend options pointing at the staged driver, sysfs and mig-minors.
    pub fn options(&self) -> NvmlOptions {
        NvmlOptions {
            container_driver_root: self.driver_root(),
            numa: NumaSource::Sysfs {
                root: self.sys_root(),
            },
            mig_minors_path: self.mig_minors(),
            lib_path: None,
        }
    }
    /// Replaces the node file atomically, as an editor or `mv` would.
    pub fn write_node(&self, text: &str) {
        let tmp = self.root.join("node.yaml.tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, self.node()).unwrap();
    }
}

/// The `mig-minors` table the driver generates (see `MigMinors::driver_default`).
pub fn driver_mig_minors() -> String {
    let mut text = String::from("config 1\nmonitor 2\n");
    let mut next = 3;
    for gpu in 0..32 {
        for gi in 0..15 {
            text.push_str(&format!("gpu{gpu}/gi{gi}/access {next}\n"));
            next += 1;
            for ci in 0..8 {
                text.push_str(&format!("gpu{gpu}/gi{gi}/ci{ci}/access {next}\n"));
                next += 1;
            }
        }
    }
    text
}

/// A staged scenario; the directory goes away with it.
pub struct Stage {
    _dir: tempfile::TempDir,
    pub paths: Paths,
}

impl Stage {
    /// Stages `node_text`: the fake driver under `driver-root/usr/lib64`
    /// (linked as the installer does), sysfs `numa_node` files from the
    /// node's `numaNode` (-1 when absent) and the driver's `mig-minors`.
    pub fn new(node_text: &str) -> Stage {
        let dir = tempfile::Builder::new()
            .prefix("nvml-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        let paths = Paths {
            root: dir.path().to_path_buf(),
        };
        let lib_dir = paths.driver_root().join("usr/lib64");
        std::fs::create_dir_all(&lib_dir).unwrap();
        let real = lib_dir.join("libnvidia-ml.so.550.54.15");
        if std::fs::hard_link(fake_library(), &real).is_err() {
            std::fs::copy(fake_library(), &real).unwrap();
        }
        std::os::unix::fs::symlink(
            "libnvidia-ml.so.550.54.15",
            lib_dir.join("libnvidia-ml.so.1"),
        )
        .unwrap();
        paths.write_node(node_text);
        let inventory = Simulated::from_file(paths.node()).inventory().unwrap();
        for gpu in &inventory.gpus {
            let dev = paths
                .sys_root()
                .join("sys/bus/pci/devices")
                .join(&gpu.pci_bus_id);
            std::fs::create_dir_all(&dev).unwrap();
            let numa = gpu.numa_node.map_or("-1".to_string(), |n| n.to_string());
            std::fs::write(dev.join("numa_node"), format!("{numa}\n")).unwrap();
        }
        std::fs::write(paths.mig_minors(), driver_mig_minors()).unwrap();
        Stage { _dir: dir, paths }
    }
}

/// Runs the ignored test `name` of this test binary in a child process with
/// the stage and `env`, and fails with its output unless exactly it passed.
pub fn run_child(name: &str, stage: &Stage, env: &[(&str, &str)]) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            name,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("NVML_TEST_DIR", &stage.paths.root)
        .env("FAKE_NVML_NODE", stage.paths.node())
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("test result: ok. 1 passed"),
        "child {name} {env:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `text` (a node file laid out as `config/nodes/*.yaml`: `  - index: N`
/// starting each GPU) with `keys` (one `key: value` a line) added to GPU `index`.
pub fn with_keys(text: &str, index: u32, keys: &[&str]) -> String {
    let start = format!("  - index: {index}\n");
    let at = text
        .find(&start)
        .unwrap_or_else(|| panic!("no GPU {index} in the node file"))
        + start.len();
    let lines: String = keys.iter().map(|k| format!("    {k}\n")).collect();
    format!("{}{lines}{}", &text[..at], &text[at..])
}

/// Voluntary context switches so far of this process's thread named `name`
/// (`/proc/self/task/*/comm`): how often it went to sleep and woke.
pub fn voluntary_switches(name: &str) -> Option<u64> {
    std::fs::read_dir("/proc/self/task").ok()?.find_map(|task| {
        let dir = task.ok()?.path();
        let comm = std::fs::read_to_string(dir.join("comm")).ok()?;
        if comm.trim_end() != name {
            return None;
        }
        let status = std::fs::read_to_string(dir.join("status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .and_then(|v| v.trim().parse().ok())
    })
}
