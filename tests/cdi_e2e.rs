//! `gpu-device-plugin cdi generate` on fake driver roots: the specs validate
//! against the CDI schema on every example node and strategy, name the
//! devices the plugin advertises, find libraries through `ld.so.cache`, and
//! a corrupt cache is a clear error.

mod support;

use std::collections::BTreeSet;

use gpu_device_plugin::gpu::Backend;
use gpu_device_plugin::gpu::simulated::Simulated;
use serde_json::Value;
use support::cdi::{FakeDriverRoot, Layout, VERSION, edit_mounts, generate, schema_errors};
use support::repo_file;

const NODES: [&str; 5] = [
    "a100-mig-single",
    "dgx-a100",
    "dgx-a100-degraded",
    "h100-mig",
    "workstation",
];
const SPEC: &str = "k8s.device-plugin.nvidia.com-gpu.json";

/// Generates the spec of `node` into a temp dir and returns it parsed.
fn spec_of(node: &str, root: &FakeDriverRoot, extra: &[&str]) -> Value {
    let out = tempfile::tempdir().unwrap();
    let node_file = repo_file(&format!("config/nodes/{node}.yaml"))
        .display()
        .to_string();
    let out_dir = out.path().display().to_string();
    let mut args = vec![
        "--simulate",
        &node_file,
        "--driver-root",
        &root.path().to_str().unwrap(),
        "--output",
        &out_dir,
    ];
    args.extend(extra);
    let (ok, stdout, stderr) = generate(&args);
    assert!(ok, "{node} {extra:?}: {stderr}");
    let path = out.path().join(SPEC);
    assert_eq!(stdout.trim(), path.display().to_string());
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn names(spec: &Value) -> BTreeSet<String> {
    spec["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap().to_string())
        .collect()
}

/// The names the spec must hold for `node`: every non-MIG GPU, every MIG
/// device (and MIG-enabled GPUs whole with MIG strategy none), plus `all`.
fn expected_names(node: &str, index: bool, mig_none: bool) -> BTreeSet<String> {
    let inv = Simulated::from_file(repo_file(&format!("config/nodes/{node}.yaml")))
        .inventory()
        .unwrap();
    let mut out = BTreeSet::from(["all".to_string()]);
    for g in &inv.gpus {
        if !g.mig_enabled || mig_none {
            out.insert(if index {
                g.index.to_string()
            } else {
                g.uuid.clone()
            });
        }
        for (slot, m) in g.mig_devices.iter().enumerate() {
            out.insert(if index {
                format!("{}:{slot}", g.index)
            } else {
                m.uuid.clone()
            });
        }
    }
    out
}

#[test]
fn every_example_node_and_strategy_gives_a_spec_the_cdi_schema_accepts() {
    for node in NODES {
        let root = FakeDriverRoot::new(
            &repo_file(&format!("config/nodes/{node}.yaml")),
            Layout::Standard,
        );
        for id in ["uuid", "index"] {
            for mig in ["none", "mixed"] {
                let spec = spec_of(
                    node,
                    &root,
                    &["--device-id-strategy", id, "--mig-strategy", mig],
                );
                let errors = schema_errors(&spec);
                assert!(errors.is_empty(), "{node} {id} {mig}: {errors:?}");
                assert_eq!(
                    names(&spec),
                    expected_names(node, id == "index", mig == "none"),
                    "{node} {id} {mig}"
                );
                assert_eq!(spec["kind"], "k8s.device-plugin.nvidia.com/gpu");
                // nvcdi always emits the spec-level edits.
                assert!(spec["containerEdits"].is_object(), "{node} {id} {mig}");
                // Device nodes under the fake root have a hostPath: 0.5.0.
                assert_eq!(spec["cdiVersion"], "0.5.0", "{node} {id} {mig}");
            }
        }
    }
}

#[test]
fn the_schema_check_itself_rejects_cdis_bad_examples_and_accepts_its_good_ones() {
    for (name, good) in [
        ("good/minimal.json", true),
        ("good/spec-example.json", true),
        ("bad/explicit-empty.json", false),
    ] {
        let text =
            std::fs::read_to_string(repo_file(&format!("tests/data/cdi-schema/testdata/{name}")))
                .unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(schema_errors(&v).is_empty(), good, "{name}");
    }
}

#[test]
fn a_mig_device_holds_its_parent_gpu_node_and_its_capability_nodes_from_the_dev_root() {
    let node = repo_file("config/nodes/h100-mig.yaml");
    let root = FakeDriverRoot::new(&node, Layout::Standard);
    let spec = spec_of("h100-mig", &root, &["--mig-strategy", "mixed"]);
    let inv = Simulated::from_file(&node).inventory().unwrap();
    let (gpu, mig) = (&inv.gpus[0], &inv.gpus[0].mig_devices[0]);
    let device = spec["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == mig.uuid.as_str())
        .unwrap();
    let nodes: Vec<(&str, &str, i64)> = device["containerEdits"]["deviceNodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["path"].as_str().unwrap(),
                n["hostPath"].as_str().unwrap(),
                n["major"].as_i64().unwrap(),
            )
        })
        .collect();
    let host = |p: &str| format!("{}{p}", root.display());
    let gpu_node = format!("/dev/nvidia{}", gpu.minor);
    assert_eq!(
        nodes,
        vec![
            (gpu_node.as_str(), host(&gpu_node).as_str(), 195),
            (
                mig.cap_paths[0].as_str(),
                host(&mig.cap_paths[0]).as_str(),
                234
            ),
            (
                mig.cap_paths[1].as_str(),
                host(&mig.cap_paths[1]).as_str(),
                234
            ),
        ]
    );
}

#[test]
fn libraries_only_in_the_ld_so_cache_are_found_and_mounted() {
    let node = repo_file("config/nodes/workstation.yaml");
    let root = FakeDriverRoot::new(&node, Layout::LdCacheOnly);
    let spec = spec_of("workstation", &root, &[]);
    let mounts: Vec<(String, String)> = edit_mounts(&spec["containerEdits"]);
    let lib = format!("/opt/nvidia/lib/libcuda.so.{VERSION}");
    assert!(
        mounts.contains(&(format!("{}{lib}", root.display()), lib.clone())),
        "{mounts:?}"
    );
    let env = spec["containerEdits"]["env"].as_array().unwrap();
    assert_eq!(env[0], "NVIDIA_CTK_LIBCUDA_DIR=/opt/nvidia/lib");
}

#[test]
fn a_corrupt_ld_so_cache_is_a_clear_error() {
    let node = repo_file("config/nodes/workstation.yaml");
    let root = FakeDriverRoot::new(&node, Layout::LdCacheOnly);
    let cache = root.path().join("etc/ld.so.cache");
    let mut bytes = std::fs::read(&cache).unwrap();
    bytes.truncate(40);
    std::fs::write(&cache, bytes).unwrap();
    let out = tempfile::tempdir().unwrap();
    let (ok, _, stderr) = generate(&[
        "--simulate",
        node.to_str().unwrap(),
        "--driver-root",
        root.path().to_str().unwrap(),
        "--output",
        out.path().to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("ld.so.cache is truncated: its header needs 48 bytes, the file has 40"),
        "{stderr}"
    );
    assert!(!out.path().join(SPEC).exists());
}

#[test]
fn no_driver_under_the_root_is_a_clear_error() {
    let empty = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let (ok, _, stderr) = generate(&[
        "--simulate",
        repo_file("config/nodes/workstation.yaml").to_str().unwrap(),
        "--driver-root",
        empty.path().to_str().unwrap(),
        "--output",
        out.path().to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("failed to locate the driver's libraries"),
        "{stderr}"
    );
}

#[test]
fn the_hook_path_flag_and_env_set_the_hooks_binary() {
    let node = repo_file("config/nodes/workstation.yaml");
    let root = FakeDriverRoot::new(&node, Layout::Standard);
    let spec = spec_of(
        "workstation",
        &root,
        &["--nvidia-cdi-hook-path", "/opt/x/nvidia-cdi-hook"],
    );
    let hooks = spec["containerEdits"]["hooks"].as_array().unwrap();
    let first: Vec<&str> = hooks
        .iter()
        .map(|h| h["args"][1].as_str().unwrap())
        .collect();
    assert_eq!(
        first,
        [
            "create-symlinks",
            "enable-cuda-compat",
            "update-ldcache",
            "disable-device-node-modification",
            "update-application-profile"
        ]
    );
    assert!(
        hooks
            .iter()
            .all(|h| h["path"] == "/opt/x/nvidia-cdi-hook" && h["args"][0] == "nvidia-cdi-hook")
    );
}

#[test]
fn gated_specs_are_written_when_enabled_and_their_nodes_exist() {
    let node = repo_file("config/nodes/workstation.yaml");
    let root = FakeDriverRoot::new(&node, Layout::Standard);
    root.add_node("/dev/nvidia-fs0", 241, 0);
    std::fs::create_dir_all(root.path().join("etc")).unwrap();
    std::fs::write(root.path().join("etc/cufile.json"), "{}").unwrap();
    let out = tempfile::tempdir().unwrap();
    let (ok, stdout, stderr) = generate(&[
        "--simulate",
        node.to_str().unwrap(),
        "--driver-root",
        root.path().to_str().unwrap(),
        "--gds-enabled",
        "--mofed-enabled",
        "--output",
        out.path().to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    // gpu and gds; mofed has no /dev/infiniband nodes here, so no spec.
    let files: Vec<&str> = stdout
        .lines()
        .map(|l| l.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(files, [SPEC, "k8s.device-plugin.nvidia.com-gds.json"]);
    let gds: Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("k8s.device-plugin.nvidia.com-gds.json")).unwrap(),
    )
    .unwrap();
    assert!(schema_errors(&gds).is_empty(), "{:?}", schema_errors(&gds));
    assert_eq!(gds["kind"], "k8s.device-plugin.nvidia.com/gds");
    assert_eq!(names(&gds), BTreeSet::from(["all".to_string()]));
    let edits = &gds["devices"][0]["containerEdits"];
    assert_eq!(edits["deviceNodes"][0]["path"], "/dev/nvidia-fs0");
    assert_eq!(edits["mounts"][0]["containerPath"], "/etc/cufile.json");
}

#[test]
fn the_persistenced_socket_is_mounted_unless_the_ipc_discoverer_is_disabled() {
    let node = repo_file("config/nodes/workstation.yaml");
    let root = FakeDriverRoot::new(&node, Layout::Standard);
    let dir = root.path().join("run/nvidia-persistenced");
    std::fs::create_dir_all(&dir).unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(dir.join("socket")).unwrap();
    let socket_mounted = |extra: &[&str]| {
        let spec = spec_of("workstation", &root, extra);
        let mounts = spec["containerEdits"]["mounts"].as_array().unwrap().clone();
        mounts.iter().any(|m| {
            m["containerPath"] == "/run/nvidia-persistenced/socket"
                && m["options"]
                    == serde_json::json!(["nosuid", "nodev", "rbind", "rprivate", "noexec"])
        })
    };
    assert!(socket_mounted(&[]));
    assert!(!socket_mounted(&[
        "--cdi-feature-flags",
        "disable-ipc-discoverer"
    ]));
}
