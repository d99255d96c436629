//! Hot reload: config edits (plain, editor-style and ConfigMap `..data`
//! swaps), SIGHUP, invalid files and node-file (hardware) changes reach the
//! kubelet without a restart and without re-registering unchanged resources.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use devkit::kubelet::KubeletView;
use support::kubelet::FakeKubelet;
use support::process::Plugin;
use support::{WAIT, repo_file, write_atomic};

fn time_slicing(replicas: u32, rename: Option<&str>) -> String {
    let rename = rename
        .map(|r| format!("      rename: {r}\n"))
        .unwrap_or_default();
    format!(
        "version: v1\nsharing:\n  timeSlicing:\n    resources:\n    - name: nvidia.com/gpu\n{rename}      replicas: {replicas}\n"
    )
}

fn start(config: &Path, node: &str, extra: &[&str]) -> (FakeKubelet, Plugin) {
    let k = FakeKubelet::start();
    let mut args = vec!["--config-file", config.to_str().unwrap()];
    args.extend_from_slice(extra);
    let p = Plugin::simulated(
        &repo_file(&format!("config/nodes/{node}.yaml")),
        &k.socket(),
        &args,
    );
    (k, p)
}

async fn wait_devices(k: &FakeKubelet, p: &Plugin, resource: &str, n: usize) -> KubeletView {
    k.wait_devices(p, resource, n).await
}

#[tokio::test]
async fn replica_edit_updates_the_stream_without_re_registering() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, time_slicing(4, None)).unwrap();
    let (k, p) = start(&config, "dgx-a100", &[]);
    wait_devices(&k, &p, "nvidia.com/gpu", 32).await;
    let edited = Instant::now();
    write_atomic(&config, &time_slicing(8, None));
    let view = wait_devices(&k, &p, "nvidia.com/gpu", 64).await;
    println!("config edit -> ListAndWatch: {:?}", edited.elapsed());
    assert_eq!(
        view.resources["nvidia.com/gpu"].registrations, 1,
        "no re-registration"
    );
    assert!(
        view.resources["nvidia.com/gpu"]
            .devices
            .iter()
            .any(|d| d.id.ends_with("::7"))
    );
}

#[tokio::test]
async fn rename_registers_the_new_resource_and_removes_the_old_socket() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, time_slicing(2, None)).unwrap();
    let (k, p) = start(&config, "dgx-a100", &[]);
    wait_devices(&k, &p, "nvidia.com/gpu", 16).await;
    write_atomic(&config, &time_slicing(2, Some("nvidia.com/gpu.shared")));
    wait_devices(&k, &p, "nvidia.com/gpu.shared", 16).await;
    // The old resource's stream ended and its socket is gone.
    k.wait_resource(&p, "nvidia.com/gpu", |r| !r.streaming)
        .await;
    assert!(!k.path().join("nvidia-gpu.sock").exists());
    assert!(k.path().join("nvidia-gpu.shared.sock").exists());
}

#[tokio::test]
async fn an_invalid_edit_changes_nothing_and_a_fixed_one_applies() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, time_slicing(4, None)).unwrap();
    let (k, p) = start(&config, "dgx-a100", &[]);
    let before = wait_devices(&k, &p, "nvidia.com/gpu", 32).await;
    write_atomic(
        &config,
        "version: v1\nsharing:\n  timeSlicing:\n    resources:\n    - name: nvidia.com/gpu\n      replicas: four\n",
    );
    let deadline = Instant::now() + WAIT;
    while !p.log().contains("reload rejected") {
        assert!(
            Instant::now() < deadline,
            "no rejection logged; log:\n{}",
            p.log()
        );
        tokio::time::sleep(Duration::from_millis(5)).await; // poll the log, bounded by WAIT
    }
    assert!(
        p.log().contains("line 6, column 17"),
        "error carries the position; log:\n{}",
        p.log()
    );
    assert_eq!(k.get().view(), before, "the kubelet saw nothing change");
    write_atomic(&config, &time_slicing(3, None));
    wait_devices(&k, &p, "nvidia.com/gpu", 24).await;
}

#[tokio::test]
async fn configmap_data_swaps_are_applied_every_time() {
    let dir = tempfile::tempdir().unwrap();
    let swap = |ts: &str, content: &str| {
        let ts_dir = dir.path().join(ts);
        std::fs::create_dir(&ts_dir).unwrap();
        std::fs::write(ts_dir.join("config.yaml"), content).unwrap();
        let tmp = dir.path().join("..data_tmp");
        std::os::unix::fs::symlink(ts, &tmp).unwrap();
        std::fs::rename(&tmp, dir.path().join("..data")).unwrap();
    };
    swap("..2026_01", &time_slicing(2, None));
    let config: PathBuf = dir.path().join("config.yaml");
    std::os::unix::fs::symlink("..data/config.yaml", &config).unwrap();
    let (k, p) = start(&config, "dgx-a100", &[]);
    wait_devices(&k, &p, "nvidia.com/gpu", 16).await;
    swap("..2026_02", &time_slicing(3, None));
    wait_devices(&k, &p, "nvidia.com/gpu", 24).await;
    swap("..2026_03", &time_slicing(5, None));
    let view = wait_devices(&k, &p, "nvidia.com/gpu", 40).await;
    assert_eq!(view.resources["nvidia.com/gpu"].registrations, 1);
}

#[tokio::test]
async fn sighup_reloads_a_file_the_watch_cannot_see() {
    // CONFIG_FILE is a symlink into another directory: edits there raise no
    // event in the watched one, as with NVIDIA's config-manager sidecar.
    let real = tempfile::tempdir().unwrap();
    let target = real.path().join("real.yaml");
    std::fs::write(&target, time_slicing(2, None)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::os::unix::fs::symlink(&target, &config).unwrap();
    let (k, p) = start(&config, "dgx-a100", &[]);
    wait_devices(&k, &p, "nvidia.com/gpu", 16).await;
    std::fs::write(&target, time_slicing(6, None)).unwrap();
    p.signal("HUP");
    wait_devices(&k, &p, "nvidia.com/gpu", 48).await;
}

#[tokio::test]
async fn a_flag_still_beats_the_edited_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, "version: v1\nflags:\n  migStrategy: none\n").unwrap();
    let (k, p) = start(&config, "h100-mig", &["--mig-strategy", "none"]);
    wait_devices(&k, &p, "nvidia.com/gpu", 8).await;
    write_atomic(
        &config,
        "version: v1\nflags:\n  migStrategy: mixed\nsharing:\n  timeSlicing:\n    resources:\n    - name: nvidia.com/gpu\n      replicas: 2\n",
    );
    // The sharing edit applies; the file's migStrategy does not.
    let view = wait_devices(&k, &p, "nvidia.com/gpu", 16).await;
    assert_eq!(
        view.resources.len(),
        1,
        "{:?}",
        view.resources.keys().collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn mig_repartition_in_the_node_file_changes_resources_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let node = dir.path().join("node.yaml");
    let original = std::fs::read_to_string(repo_file("config/nodes/h100-mig.yaml")).unwrap();
    std::fs::write(&node, &original).unwrap();
    let k = FakeKubelet::start();
    let p = Plugin::simulated(&node, &k.socket(), &["--mig-strategy", "mixed"]);
    wait_devices(&k, &p, "nvidia.com/mig-7g.80gb", 1).await;
    // GPU 2: one 7g.80gb becomes two 3g.40gb.
    let seven = original
        .lines()
        .find(|l| l.contains("profile: 7g.80gb"))
        .unwrap();
    let threes = [
        "      - {uuid: MIG-3f3f3f3f-0000-0000-0000-000000000001, profile: 3g.40gb, gpuInstanceId: 1, computeInstanceId: 0, memoryMiB: 40192}",
        "      - {uuid: MIG-3f3f3f3f-0000-0000-0000-000000000002, profile: 3g.40gb, gpuInstanceId: 2, computeInstanceId: 0, memoryMiB: 40192}",
    ]
    .join("\n");
    let repartitioned = original.replace(seven, &threes);
    write_atomic(&node, &repartitioned);
    let view = wait_devices(&k, &p, "nvidia.com/mig-3g.40gb", 3).await;
    k.wait_resource(&p, "nvidia.com/mig-7g.80gb", |r| !r.streaming)
        .await;
    assert!(!k.path().join("nvidia-mig-7g.80gb.sock").exists());
    assert_eq!(
        view.resources["nvidia.com/mig-1g.10gb"].registrations, 1,
        "untouched resource not re-registered"
    );
    assert_eq!(view.resources["nvidia.com/mig-3g.40gb"].registrations, 1);
}
