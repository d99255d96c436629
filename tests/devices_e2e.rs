//! What a kubelet sees for every example node and MIG strategy: exactly the
//! expected devices per resource, all Healthy, with NUMA topology only where
//! the node knows it.

mod support;

use support::expected::{assert_sees, expected};
use support::kubelet::FakeKubelet;
use support::process::Plugin;
use support::{WAIT, repo_file};

const NODES: [&str; 4] = ["dgx-a100", "h100-mig", "a100-mig-single", "workstation"];

#[tokio::test]
async fn every_node_and_strategy_advertises_exactly_the_expected_devices() {
    for node in NODES {
        for strategy in ["none", "single", "mixed"] {
            if node == "h100-mig" && strategy == "single" {
                continue; // invalid for single: covered below
            }
            let path = repo_file(&format!("config/nodes/{node}.yaml"));
            let want = expected(&path, strategy);
            let k = FakeKubelet::start();
            let p = Plugin::simulated(&path, &k.socket(), &["--mig-strategy", strategy]);
            let view = assert_sees(&k, &p, &want, &format!("{node}/{strategy}")).await;
            for (name, seen) in &view.resources {
                assert!(
                    seen.devices.iter().all(|d| d.health == "Healthy"),
                    "{node}/{strategy}/{name}"
                );
                let socket = format!("nvidia-{}.sock", name.trim_start_matches("nvidia.com/"));
                assert_eq!(seen.endpoint, socket, "{node}/{strategy}");
            }
        }
    }
}

#[tokio::test]
async fn invalid_mig_layout_for_single_exits_with_nvidias_error() {
    let k = FakeKubelet::start();
    let mut p = Plugin::simulated(
        &repo_file("config/nodes/h100-mig.yaml"),
        &k.socket(),
        &["--mig-strategy", "single"],
    );
    let status = p.wait_exit(WAIT).await.expect("plugin exits");
    assert_eq!(status.code(), Some(1));
    assert!(
        p.log()
            .contains("invalid MIG configuration: device 3 has no MIG devices configured"),
        "log:\n{}",
        p.log()
    );
    assert!(k.get().view().registrations.is_empty());
}

#[tokio::test]
async fn unknown_numa_is_sent_without_topology() {
    let k = FakeKubelet::start();
    let _p = Plugin::simulated(
        &repo_file("config/nodes/workstation.yaml"),
        &k.socket(),
        &[],
    );
    let view = k
        .get()
        .wait_for(WAIT, |v| {
            v.resources
                .get("nvidia.com/gpu")
                .is_some_and(|r| !r.devices.is_empty())
        })
        .await
        .unwrap();
    let dev = &view.resources["nvidia.com/gpu"].devices[0];
    assert_eq!(dev.topology, None);
}
