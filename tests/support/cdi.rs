//! CDI test support: a fake driver root built in a temp dir (the driver's
//! libraries as small files with their SONAME links, a binary, GSP firmware,
//! `mknod` character devices for the GPUs, control nodes and MIG capability
//! nodes, optionally only an `ld.so.cache` pointing at the libraries), the
//! CDI JSON schema (tests/data/cdi-schema) as a validator, and the
//! `cdi generate` command.

use std::path::{Path, PathBuf};
use std::process::Command;

use gpu_device_plugin::cdi::ldcache;
use gpu_device_plugin::gpu::Backend;
use gpu_device_plugin::gpu::simulated::Simulated;
use serde_json::Value;

pub const VERSION: &str = "550.54.15";
pub const LIBS: [&str; 3] = ["libcuda", "libnvidia-ml", "libnvidia-ptxjitcompiler"];
/// Major number of the MIG capability nodes (dynamic on a real node).
pub const CAPS_MAJOR: u32 = 234;

/// Where the fake driver keeps its libraries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `usr/lib/x86_64-linux-gnu`, found by the directory search.
    Standard,
    /// `opt/nvidia/lib`, findable only through `etc/ld.so.cache`.
    LdCacheOnly,
}

/// A driver root for one simulated node.
pub struct FakeDriverRoot {
    dir: tempfile::TempDir,
    pub lib_dir: &'static str,
}

fn mknod(path: &Path, major: u32, minor: u32, mode: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let status = Command::new("mknod")
        .args(["-m", mode])
        .arg(path)
        .args(["c", &major.to_string(), &minor.to_string()])
        .status()
        .expect("mknod runs");
    assert!(
        status.success(),
        "mknod {} failed (tests run as root)",
        path.display()
    );
}

fn cap_minor(path: &str) -> u32 {
    path.rsplit("nvidia-cap").next().unwrap().parse().unwrap()
}

impl FakeDriverRoot {
    /// The driver root of the node file `node`.
    pub fn new(node: &Path, layout: Layout) -> Self {
        let inventory = Simulated::from_file(node).inventory().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let lib_dir = match layout {
            Layout::Standard => "/usr/lib/x86_64-linux-gnu",
            Layout::LdCacheOnly => "/opt/nvidia/lib",
        };
        let libs = root.join(&lib_dir[1..]);
        std::fs::create_dir_all(&libs).unwrap();
        for lib in LIBS {
            std::fs::write(libs.join(format!("{lib}.so.{VERSION}")), lib).unwrap();
            std::os::unix::fs::symlink(
                format!("{lib}.so.{VERSION}"),
                libs.join(format!("{lib}.so.1")),
            )
            .unwrap();
        }
        std::os::unix::fs::symlink("libcuda.so.1", libs.join("libcuda.so")).unwrap();
        if layout == Layout::LdCacheOnly {
            let entries: Vec<(String, String)> = LIBS
                .iter()
                .map(|l| (format!("{l}.so.1"), format!("{lib_dir}/{l}.so.1")))
                .collect();
            let refs: Vec<(&str, &str, i32)> = entries
                .iter()
                .map(|(k, p)| (k.as_str(), p.as_str(), ldcache::FLAGS_X86_64))
                .collect();
            std::fs::create_dir_all(root.join("etc")).unwrap();
            std::fs::write(root.join("etc/ld.so.cache"), ldcache::build_new(&refs)).unwrap();
        }
        let bin = root.join("usr/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(bin.join("nvidia-smi"), "#!/bin/sh\n").unwrap();
        set_mode(&bin.join("nvidia-smi"), 0o755);
        let fw = root.join(format!("lib/firmware/nvidia/{VERSION}"));
        std::fs::create_dir_all(&fw).unwrap();
        std::fs::write(fw.join("gsp_ga10x.bin"), "gsp").unwrap();
        let dev = root.join("dev");
        mknod(&dev.join("nvidiactl"), 195, 255, "666");
        mknod(&dev.join("nvidia-uvm"), 510, 0, "666");
        for gpu in &inventory.gpus {
            mknod(
                &dev.join(format!("nvidia{}", gpu.minor)),
                195,
                gpu.minor,
                "666",
            );
            for mig in &gpu.mig_devices {
                for cap in &mig.cap_paths {
                    let p = root.join(&cap[1..]);
                    if !p.exists() {
                        mknod(&p, CAPS_MAJOR, cap_minor(cap), "444");
                    }
                }
            }
        }
        FakeDriverRoot { dir, lib_dir }
    }

    /// One more character device, `path` relative to the root (`/dev/...`).
    pub fn add_node(&self, path: &str, major: u32, minor: u32) {
        mknod(&self.path().join(&path[1..]), major, minor, "666");
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn display(&self) -> String {
        self.path().display().to_string()
    }

    /// A hook binary that appends its arguments to `<root>/hooks.log`.
    pub fn logging_hook(&self) -> PathBuf {
        let hook = self.path().join("bin/nvidia-cdi-hook");
        std::fs::create_dir_all(hook.parent().unwrap()).unwrap();
        let log = self.path().join("hooks.log");
        std::fs::write(
            &hook,
            format!("#!/bin/sh\necho \"$@\" >> {}\n", log.display()),
        )
        .unwrap();
        set_mode(&hook, 0o755);
        hook
    }

    pub fn hooks_log(&self) -> String {
        std::fs::read_to_string(self.path().join("hooks.log")).unwrap_or_default()
    }
}

pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Runs `gpu-device-plugin cdi generate` with `args`; returns (success, stdout, stderr).
pub fn generate(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(super::process::BIN)
        .args(["cdi", "generate"])
        .args(args)
        .env_clear()
        .output()
        .expect("binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn schema_file(name: &str) -> Value {
    let path = super::repo_file(&format!("tests/data/cdi-schema/{name}"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

const DEFS: &str = "file:///cdi-schema/defs.json";

/// Every way `spec` breaks the CDI schema (v1.1.0's `schema.json`, plus the
/// top-level `containerEdits` check that CDI's main branch adds, when present).
pub fn schema_errors(spec: &Value) -> Vec<String> {
    let registry = jsonschema::Registry::new()
        .add(DEFS, schema_file("defs.json"))
        .unwrap()
        .prepare()
        .unwrap();
    let top = jsonschema::options()
        .with_base_uri("file:///cdi-schema/schema.json")
        .with_registry(&registry)
        .build(&schema_file("schema.json"))
        .unwrap();
    let edits_schema = serde_json::json!({"$ref": format!("{DEFS}#/definitions/containerEdits")});
    let edits = jsonschema::options()
        .with_registry(&registry)
        .build(&edits_schema)
        .unwrap();
    let mut errors: Vec<String> = top.iter_errors(spec).map(|e| e.to_string()).collect();
    if let Some(common) = spec.get("containerEdits") {
        errors.extend(
            edits
                .iter_errors(common)
                .map(|e| format!("containerEdits: {e}")),
        );
    }
    errors
}

/// The `(hostPath, containerPath)` of each mount in a spec's `containerEdits`.
pub fn edit_mounts(edits: &Value) -> Vec<(String, String)> {
    edits["mounts"]
        .as_array()
        .unwrap_or_else(|| panic!("no mounts in {edits}"))
        .iter()
        .map(|m| {
            (
                m["hostPath"].as_str().unwrap().into(),
                m["containerPath"].as_str().unwrap().into(),
            )
        })
        .collect()
}
