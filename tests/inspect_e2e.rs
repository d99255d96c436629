//! `gpu-device-plugin inspect` against the running plugin binary: it lists
//! what the kubelet sees, per socket, and relays an Allocate response.

mod support;

use std::collections::BTreeMap;
use std::process::{Command, Output};

use support::kubelet::FakeKubelet;
use support::process::{BIN, Plugin};
use support::{WAIT, repo_file};

/// Runs `inspect` with `args` off the async runtime (the fake kubelet keeps
/// answering meanwhile).
async fn run_inspect(k: &FakeKubelet, args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .arg("inspect")
        .arg("--kubelet-socket")
        .arg(k.socket())
        .args(args);
    tokio::task::spawn_blocking(move || cmd.output().expect("inspect runs"))
        .await
        .unwrap()
}

async fn h100_mixed() -> (FakeKubelet, Plugin) {
    let k = FakeKubelet::start();
    let p = Plugin::simulated(
        &repo_file("config/nodes/h100-mig.yaml"),
        &k.socket(),
        &["--mig-strategy", "mixed"],
    );
    k.get()
        .wait_for(WAIT, |v| {
            v.resources.len() == 6 && v.resources.values().all(|r| r.updates > 0)
        })
        .await
        .unwrap_or_else(|e| panic!("{e}; log:\n{}", p.log()));
    (k, p)
}

#[tokio::test]
async fn json_lists_every_socket_with_what_the_kubelet_sees() {
    let (k, _p) = h100_mixed().await;
    let out = run_inspect(&k, &["--output", "json"]).await;
    assert!(out.status.success(), "{out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let got: BTreeMap<String, Vec<(String, String)>> = json["sockets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let devices = s["devices"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| {
                    let numa = d["numa"].as_array().unwrap().iter().map(|n| n.to_string());
                    (
                        d["id"].as_str().unwrap().to_string(),
                        numa.collect::<Vec<_>>().join(","),
                    )
                })
                .collect();
            (s["socket"].as_str().unwrap().to_string(), devices)
        })
        .collect();
    let want: BTreeMap<String, Vec<(String, String)>> = k
        .get()
        .view()
        .resources
        .values()
        .map(|r| {
            let devices = r
                .devices
                .iter()
                .map(|d| {
                    let numa = d
                        .topology
                        .iter()
                        .flat_map(|t| t.nodes.iter().map(|n| n.id.to_string()));
                    (d.id.clone(), numa.collect::<Vec<_>>().join(","))
                })
                .collect();
            (r.endpoint.clone(), devices)
        })
        .collect();
    assert_eq!(got, want);
    for s in json["sockets"].as_array().unwrap() {
        assert_eq!(s["options"]["getPreferredAllocationAvailable"], true, "{s}");
    }
}

#[tokio::test]
async fn table_with_allocate_shows_the_plugins_response() {
    let (k, _p) = h100_mixed().await;
    let view = k.get().view();
    let mig = &view.resources["nvidia.com/mig-3g.40gb"];
    let id = mig.devices[0].id.clone();
    let out = run_inspect(&k, &["--allocate", &id]).await;
    assert!(out.status.success(), "{out:?}");
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.contains(&format!("SOCKET {}", mig.endpoint)),
        "{table}"
    );
    assert!(table.contains(&format!("Allocate {id} →")), "{table}");
    assert!(
        table.contains(&format!("env        NVIDIA_VISIBLE_DEVICES={id}")),
        "{table}"
    );
}

#[tokio::test]
async fn an_unknown_allocate_id_fails_with_exit_one() {
    let (k, _p) = h100_mixed().await;
    let out = run_inspect(&k, &["--allocate", "GPU-does-not-exist"]).await;
    assert_eq!(out.status.code(), Some(1));
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.contains("no socket advertises: GPU-does-not-exist"),
        "{table}"
    );
}
