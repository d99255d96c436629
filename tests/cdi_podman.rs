//! A real CDI consumer: podman (with runc) runs a busybox container with
//! `--device k8s.device-plugin.nvidia.com/gpu=<name>` from a spec that
//! `cdi generate` wrote for a fake driver root, for a whole GPU, a MIG
//! device and `all`. The container must see exactly the spec's device
//! nodes, its library/binary/firmware mounts with the host files' content,
//! and its env; the spec's hooks run in order with their arguments.
//!
//! Needs `PODMAN` (set by .ci/run to /usr/bin/podman; unset: not run) and a
//! static busybox (`BUSYBOX`, default /bin/busybox from busybox-static).

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::Value;
use support::cdi::{FakeDriverRoot, Layout, edit_mounts, generate};
use support::podman;
use support::repo_file;

/// podman reads every spec in /var/run/cdi: one test's spec at a time, so
/// that two specs never define the same device (`all`).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const SCRIPT: &str = "B=/bin/busybox; $B find /dev -name 'nvidia*' -type c | $B sort; echo ===; \
    $B cat /proc/self/mounts; echo ===; $B env; echo ===; \
    for f in $MOUNTED; do echo \"$f $($B cat $f)\"; done";

/// What the container saw.
struct Seen {
    nodes: BTreeSet<String>,
    mount_points: BTreeSet<String>,
    env: BTreeSet<String>,
    contents: Vec<String>,
}

fn run(podman: &Path, image: &str, device: &str, mounted: &[String]) -> Seen {
    let out = podman::run(podman)
        .args(["--env", &format!("MOUNTED={}", mounted.join(" "))])
        .args([
            "--device",
            &format!("k8s.device-plugin.nvidia.com/gpu={device}"),
        ])
        .args([image, "/bin/sh", "-c", SCRIPT])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "podman run: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parts: Vec<&str> = stdout.split("===\n").collect();
    assert_eq!(parts.len(), 4, "{stdout}");
    Seen {
        nodes: parts[0].lines().map(str::to_string).collect(),
        mount_points: parts[1]
            .lines()
            .filter_map(|l| l.split(' ').nth(1))
            .map(str::to_string)
            .collect(),
        env: parts[2].lines().map(str::to_string).collect(),
        contents: parts[3].lines().map(str::to_string).collect(),
    }
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// Generates the spec of `node` (hooks logging to the root), installs it
/// under a unique name in /var/run/cdi, runs a container for `device` and
/// checks what it saw against the spec.
fn container_matches_spec(case: &str, node: &str, mig: &str, device: impl Fn(&Value) -> String) {
    let Some(podman) = podman::binary() else {
        return;
    };
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let node_file = repo_file(&format!("config/nodes/{node}.yaml"));
    let root = FakeDriverRoot::new(&node_file, Layout::Standard);
    let hook = root.logging_hook();
    let out = tempfile::tempdir().unwrap();
    let (ok, _, stderr) = generate(&[
        "--simulate",
        node_file.to_str().unwrap(),
        "--driver-root",
        root.path().to_str().unwrap(),
        "--mig-strategy",
        mig,
        "--nvidia-cdi-hook-path",
        hook.to_str().unwrap(),
        "--output",
        out.path().to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let text =
        std::fs::read_to_string(out.path().join("k8s.device-plugin.nvidia.com-gpu.json")).unwrap();
    let spec: Value = serde_json::from_str(&text).unwrap();
    let name = device(&spec);
    let unique = format!("gpu-device-plugin-test-{}-{case}", std::process::id());
    std::fs::create_dir_all("/var/run/cdi").unwrap();
    let _cleanup = podman::Cleanup {
        podman: podman.clone(),
        spec: PathBuf::from(format!("/var/run/cdi/{unique}.json")),
        image: format!("localhost/{unique}:latest"),
    };
    std::fs::write(&_cleanup.spec, &text).unwrap();
    podman::import_busybox(&podman, &_cleanup.image);

    let common = &spec["containerEdits"];
    let dev = spec["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == name.as_str())
        .unwrap();
    let nodes = |e: &Value| -> Vec<String> {
        e["deviceNodes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|n| n["path"].as_str().unwrap().to_string())
            .collect()
    };
    let want_nodes: BTreeSet<String> = nodes(common)
        .into_iter()
        .chain(nodes(&dev["containerEdits"]))
        .collect();
    let mounts: Vec<(String, String)> = edit_mounts(common);
    let targets: Vec<String> = mounts.iter().map(|(_, c)| c.clone()).collect();

    let seen = run(&podman, &_cleanup.image, &name, &targets);
    assert_eq!(seen.nodes, want_nodes, "device nodes of {name}");
    for (host, ctr) in &mounts {
        assert!(
            seen.mount_points.contains(ctr),
            "{ctr} is not mounted: {:?}",
            seen.mount_points
        );
        let want = format!(
            "{ctr} {}",
            std::fs::read_to_string(host).unwrap().trim_end()
        );
        assert!(
            seen.contents.contains(&want),
            "{ctr} does not hold {host}'s content: {:?}",
            seen.contents
        );
    }
    for e in strings(common, "env") {
        assert!(seen.env.contains(&e), "{e} missing from {:?}", seen.env);
    }
    let hooks: Vec<String> = common["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| strings(h, "args")[1..].join(" "))
        .collect();
    assert_eq!(
        root.hooks_log().lines().collect::<Vec<_>>(),
        hooks,
        "hooks ran in the spec's order"
    );
}

#[test]
fn a_whole_gpu_gets_its_node_the_control_nodes_the_driver_files_and_the_env() {
    container_matches_spec("gpu", "workstation", "none", |spec| {
        spec["devices"][0]["name"].as_str().unwrap().to_string()
    });
}

#[test]
fn a_mig_device_gets_its_parent_node_and_its_two_capability_nodes() {
    container_matches_spec("mig", "h100-mig", "mixed", |spec| {
        let mig = spec["devices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"].as_str().unwrap().starts_with("MIG-"))
            .unwrap();
        assert_eq!(
            mig["containerEdits"]["deviceNodes"]
                .as_array()
                .unwrap()
                .len(),
            3
        );
        mig["name"].as_str().unwrap().to_string()
    });
}

#[test]
fn all_gets_every_devices_nodes() {
    container_matches_spec("all", "h100-mig", "mixed", |spec| {
        let all = spec["devices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == "all")
            .unwrap();
        assert!(
            all["containerEdits"]["deviceNodes"]
                .as_array()
                .unwrap()
                .len()
                > 8
        );
        "all".to_string()
    });
}
