//! Tests of `inspect::inspect` (tables of cases).
use std::sync::Arc;

use tokio::sync::watch;

use super::*;
use crate::config::{Overrides, Settings, v1};
use crate::daemon::prepare;
use crate::gpu::Backend;
use crate::gpu::simulated::Simulated;
use crate::plugin::{RunningServer, Snapshot};

pub(super) fn report(socket: &str, ids: &[&str]) -> SocketReport {
    SocketReport {
        socket: socket.into(),
        options: Some(OptionsView::default()),
        devices: ids
            .iter()
            .map(|id| DeviceView {
                id: id.to_string(),
                health: "Healthy".into(),
                numa: vec![],
                pods: vec![],
            })
            .collect(),
        ..Default::default()
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn ids_route_to_the_socket_that_advertises_them() {
    let sockets = [report("a.sock", &["A1", "A2"]), report("b.sock", &["B1"])];
    type Case<'a> = (&'a [&'a str], &'a [(usize, &'a [&'a str])], &'a [&'a str]);
    let cases: &[Case] = &[
        (&["A2", "A1"], &[(0, &["A2", "A1"])], &[]),
        (&["B1", "A1"], &[(0, &["A1"]), (1, &["B1"])], &[]),
        (&["X", "B1"], &[(1, &["B1"])], &["X"]),
        (&[], &[], &[]),
    ];
    for (ids, want_routed, want_unknown) in cases {
        let (routed, unknown) = route_ids(&sockets, &strings(ids));
        let want: BTreeMap<usize, Vec<String>> =
            want_routed.iter().map(|(i, v)| (*i, strings(v))).collect();
        assert_eq!(routed, want, "{ids:?}");
        assert_eq!(unknown, strings(want_unknown), "{ids:?}");
    }
}

#[test]
fn only_sockets_other_than_the_kubelets_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    let _k = std::os::unix::net::UnixListener::bind(dir.path().join("kubelet.sock")).unwrap();
    let _b = std::os::unix::net::UnixListener::bind(dir.path().join("b.sock")).unwrap();
    let _a = std::os::unix::net::UnixListener::bind(dir.path().join("a.sock")).unwrap();
    std::fs::write(dir.path().join("kubelet_internal_checkpoint"), "{}").unwrap();
    assert_eq!(
        plugin_sockets(dir.path()).unwrap(),
        strings(&["a.sock", "b.sock"])
    );
    assert!(plugin_sockets(&dir.path().join("nope")).is_err());
}

#[test]
fn table_and_json_show_devices_numa_and_allocate() {
    let mut s = report("nvidia-gpu.sock", &["GPU-1"]);
    s.devices[0].numa = vec![1];
    s.devices.push(DeviceView {
        id: "GPU-2".into(),
        health: "Unhealthy".into(),
        numa: vec![],
        pods: vec![],
    });
    s.allocate = Some(AllocateView {
        ids: strings(&["GPU-1"]),
        envs: [("NVIDIA_VISIBLE_DEVICES".to_string(), "GPU-1".to_string())].into(),
        ..Default::default()
    });
    let broken = SocketReport {
        socket: "stale.sock".into(),
        error: Some("connect: refused".into()),
        ..Default::default()
    };
    let inspection = Inspection {
        directory: "/d".into(),
        sockets: vec![s, broken],
        unknown_ids: strings(&["X"]),
        pods: None,
        plugin: None,
    };
    let table = render_table(&inspection);
    for want in [
        "SOCKET nvidia-gpu.sock  devices=2 healthy=1",
        "GPU-1  Healthy    1",
        "GPU-2  Unhealthy  -",
        "env        NVIDIA_VISIBLE_DEVICES=GPU-1",
        "SOCKET stale.sock\n  error: connect: refused",
        "no socket advertises: X",
    ] {
        assert!(table.contains(want), "{want:?} not in:\n{table}");
    }
    let json: serde_json::Value = serde_json::from_str(&render_json(&inspection)).unwrap();
    assert_eq!(json["sockets"][0]["devices"][0]["numa"][0], 1);
    assert_eq!(
        json["sockets"][0]["options"]["getPreferredAllocationAvailable"],
        false
    );
    assert_eq!(
        json["sockets"][0]["allocate"]["envs"]["NVIDIA_VISIBLE_DEVICES"],
        "GPU-1"
    );
    assert_eq!(json["sockets"][1]["error"], "connect: refused");
    assert_eq!(json["unknownIds"][0], "X");
    assert!(inspection.has_problems());
}

/// Serves the built-in node's `nvidia.com/gpu` on `dir/name` (while the
/// returned sender lives, the stream stays open).
fn serve_builtin(dir: &Path, name: &str) -> (RunningServer, watch::Sender<Arc<Snapshot>>) {
    let inventory = Simulated::builtin().inventory().unwrap();
    let settings = Settings::resolve(&Overrides::default(), &v1::Config::default()).unwrap();
    let prepared = prepare(&inventory, &settings, &v1::Config::default(), &[], &|_| {
        true
    })
    .unwrap();
    let snapshot = prepared
        .snapshots(&|_, _| true)
        .remove("nvidia.com/gpu")
        .unwrap();
    let (tx, rx) = watch::channel(Arc::new(snapshot));
    (RunningServer::start(&dir.join(name), rx, None).unwrap(), tx)
}

#[tokio::test]
async fn every_socket_is_dialled_and_allocate_goes_to_the_owner() {
    let dir = tempfile::tempdir().unwrap();
    let _server = serve_builtin(dir.path(), "vendor-gpu.sock");
    // A stale socket nobody listens on any more.
    drop(std::os::unix::net::UnixListener::bind(dir.path().join("stale.sock")).unwrap());
    let kubelet = dir.path().join("kubelet.sock");
    let first = inspect(&kubelet, &[], None).await.unwrap();
    let stale = &first.sockets[0];
    assert_eq!(stale.socket, "stale.sock");
    assert!(
        stale.error.as_deref().unwrap_or("").starts_with("connect"),
        "{stale:?}"
    );
    let good = &first.sockets[1];
    assert_eq!(good.devices.len(), 8);
    assert_eq!(good.devices[0].numa, vec![0]);
    assert!(good.options.unwrap().get_preferred_allocation_available);

    let id = good.devices[3].id.clone();
    let second = inspect(&kubelet, &[id.clone(), "GPU-nope".into()], None)
        .await
        .unwrap();
    let alloc = second.sockets[1].allocate.as_ref().unwrap();
    assert_eq!(alloc.envs["NVIDIA_VISIBLE_DEVICES"], id);
    assert_eq!(second.unknown_ids, strings(&["GPU-nope"]));
}

#[test]
fn the_plugin_line_shows_the_selected_config_and_why_not_ready() {
    let inspection = Inspection {
        plugin: Some(super::plugin_status::PluginStatus {
            address: "127.0.0.1:2112".into(),
            config_selected: Some("time-sliced".into()),
            gpu_owners: Default::default(),
            ready: false,
            reasons: strings(&["specified config x does not exist"]),
            error: None,
        }),
        ..Default::default()
    };
    let table = render_table(&inspection);
    assert!(
        table.starts_with(
            "plugin at 127.0.0.1:2112: config time-sliced, NOT ready\n  specified config x does not exist\n"
        ),
        "{table}"
    );
}

#[test]
fn the_plugin_line_says_which_gpus_dra_serves() {
    let inspection = Inspection {
        plugin: Some(super::plugin_status::PluginStatus {
            address: "127.0.0.1:2112".into(),
            gpu_owners: [
                ("GPU-a".to_string(), "dra".to_string()),
                ("GPU-b".to_string(), "device-plugin".to_string()),
                ("GPU-c".to_string(), "dra".to_string()),
            ]
            .into(),
            ready: true,
            ..Default::default()
        }),
        ..Default::default()
    };
    let table = render_table(&inspection);
    assert!(
        table.contains(
            "  GPUs served by dra: GPU-a, GPU-c\n  GPUs served by device-plugin: GPU-b\n"
        ),
        "{table}"
    );
}
