//! Tests of `metrics::metrics` (tables of cases).
use std::collections::BTreeSet;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn state(
    backend: Option<bool>,
    planned: bool,
    expected: &[&str],
    registered: &[&str],
) -> ReadyState {
    ReadyState {
        backend_ok: backend,
        planned,
        expected: set(expected),
        registered: set(registered),
        problems: Vec::new(),
    }
}

#[test]
fn readiness_table() {
    let gpu = "nvidia.com/gpu";
    let mig = "nvidia.com/mig-1g.10gb";
    let cases: Vec<(&str, ReadyState, Option<&str>)> = vec![
        (
            "all registered",
            state(Some(true), true, &[gpu, mig], &[gpu, mig]),
            None,
        ),
        (
            "before start",
            state(None, false, &[], &[]),
            Some("not initialized"),
        ),
        (
            "NVML failed",
            state(Some(false), false, &[], &[]),
            Some("NVML"),
        ),
        (
            "nothing to advertise",
            state(Some(true), true, &[], &[]),
            Some("no resources"),
        ),
        (
            "one missing",
            state(Some(true), true, &[gpu, mig], &[gpu]),
            Some("mig-1g.10gb is not registered"),
        ),
        (
            "none registered",
            state(Some(true), true, &[gpu], &[]),
            Some("gpu is not registered"),
        ),
    ];
    for (name, s, reason) in cases {
        match (s.readiness(), reason) {
            (Readiness::Ready, None) => {}
            (Readiness::NotReady(reasons), Some(want)) => assert!(
                reasons.iter().any(|r| r.contains(want)),
                "{name}: {reasons:?} lacks {want:?}"
            ),
            (got, want) => panic!("{name}: got {got:?}, wanted reason {want:?}"),
        }
    }
}

#[test]
fn listen_address_table() {
    let ok: &[(&str, &[&str])] = &[
        (":2112", &["[::]:2112", "0.0.0.0:2112"]),
        ("127.0.0.1:0", &["127.0.0.1:0"]),
        ("[::1]:9400", &["[::1]:9400"]),
        ("localhost:2112", &["localhost:2112"]),
    ];
    for (input, want) in ok {
        assert_eq!(parse_listen_address(input).unwrap(), *want, "{input}");
    }
    for bad in ["2112", "", ":", ":http", "host:99999", "::1:2112", "a b:1"] {
        assert!(parse_listen_address(bad).is_err(), "{bad:?} accepted");
    }
}

fn ready(expected: &[&str], registered: &[&str]) -> ReadyState {
    ReadyState {
        backend_ok: Some(true),
        planned: true,
        expected: expected.iter().map(|s| s.to_string()).collect(),
        registered: registered.iter().map(|s| s.to_string()).collect(),
        problems: Vec::new(),
    }
}

#[test]
fn readiness_follows_the_state_it_is_given() {
    let m = Metrics::new();
    assert_ne!(m.readiness(), Readiness::Ready, "nothing known yet");
    m.set_ready(ready(&["nvidia.com/gpu"], &[]));
    assert_eq!(
        m.readiness(),
        Readiness::NotReady(vec![
            "nvidia.com/gpu is not registered with the kubelet".into()
        ])
    );
    m.set_ready(ready(&["nvidia.com/gpu"], &["nvidia.com/gpu"]));
    assert_eq!(m.readiness(), Readiness::Ready);
    let mut broken = ready(&["nvidia.com/gpu"], &["nvidia.com/gpu"]);
    broken
        .problems
        .push("every device is unhealthy: NVML failed".into());
    m.set_ready(broken);
    assert_eq!(
        m.readiness(),
        Readiness::NotReady(vec!["every device is unhealthy: NVML failed".into()])
    );
}

#[test]
fn removed_resource_leaves_the_gauges() {
    let m = Metrics::new();
    m.set_devices("nvidia.com/mig-1g.10gb", 7, 6);
    m.remove_resource("nvidia.com/mig-1g.10gb");
    assert!(!m.encode().contains("mig-1g.10gb"), "{}", m.encode());
}

#[test]
fn encoding_carries_every_family() {
    let m = Metrics::new();
    m.set_devices("nvidia.com/gpu", 8, 7);
    let rpc = m.rpc("nvidia.com/gpu");
    rpc.observe(Method::Allocate, Duration::from_micros(50), true);
    rpc.observe(Method::Allocate, Duration::from_micros(50), false);
    rpc.observe(
        Method::GetPreferredAllocation,
        Duration::from_micros(5),
        true,
    );
    let _stream = rpc.stream_opened();
    m.registered("nvidia.com/gpu");
    m.kubelet_restart();
    m.reload(true);
    m.reload(false);
    m.health_event(79, "unhealthy");
    m.nvml_error();
    let text = m.encode();
    for line in [
        "gpu_device_plugin_build_info{version=\"0.1.0\"} 1",
        "gpu_device_plugin_devices{resource=\"nvidia.com/gpu\",health=\"healthy\"} 7",
        "gpu_device_plugin_devices{resource=\"nvidia.com/gpu\",health=\"unhealthy\"} 1",
        "gpu_device_plugin_rpc_requests_total{resource=\"nvidia.com/gpu\",method=\"Allocate\"} 2",
        "gpu_device_plugin_rpc_errors_total{resource=\"nvidia.com/gpu\",method=\"Allocate\"} 1",
        "gpu_device_plugin_rpc_duration_seconds_count{resource=\"nvidia.com/gpu\",method=\"GetPreferredAllocation\"} 1",
        "gpu_device_plugin_list_and_watch_streams{resource=\"nvidia.com/gpu\"} 1",
        "gpu_device_plugin_registrations_total{resource=\"nvidia.com/gpu\"} 1",
        "gpu_device_plugin_kubelet_restarts_total 1",
        "gpu_device_plugin_config_reloads_total{result=\"ok\"} 1",
        "gpu_device_plugin_config_reloads_total{result=\"rejected\"} 1",
        "gpu_device_plugin_health_events_total{xid=\"79\",action=\"unhealthy\"} 1",
        "gpu_device_plugin_nvml_errors_total 1",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    assert!(!text.contains("config_last_rejected_reload_timestamp_seconds 0\n"));
}

#[test]
fn stream_gauge_drops_when_the_stream_ends() {
    let m = Metrics::new();
    let rpc = m.rpc("nvidia.com/gpu");
    drop(rpc.stream_opened());
    assert!(
        m.encode()
            .contains("gpu_device_plugin_list_and_watch_streams{resource=\"nvidia.com/gpu\"} 0")
    );
}

#[test]
fn ended_loop_shows_in_dead_loops() {
    let m = Metrics::new();
    let guard = m.alive("daemon");
    assert!(m.dead_loops().is_empty());
    drop(guard);
    assert_eq!(m.dead_loops(), vec!["daemon"]);
}

async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let code = out[9..12].parse().unwrap();
    (code, out)
}

#[tokio::test]
async fn http_endpoints_answer_by_state() {
    let (m, server) = start(Some("127.0.0.1:0")).await.unwrap();
    let server = server.unwrap(); // serving until dropped
    let addr = server.local_addr();
    let _alive = m.alive("daemon");
    assert_eq!(get(addr, "/healthz").await.0, 200);
    let (code, body) = get(addr, "/readyz").await;
    assert_eq!(code, 503, "{body}");
    m.set_ready(ready(&["nvidia.com/gpu"], &["nvidia.com/gpu"]));
    m.registered("nvidia.com/gpu");
    assert_eq!(get(addr, "/readyz").await.0, 200);
    let (code, body) = get(addr, "/metrics").await;
    assert_eq!(code, 200);
    // No Accept header: the Prometheus text format (OpenMetrics only when asked).
    assert!(body.contains("text/plain; version=0.0.4"), "{body}");
    assert!(
        body.contains("gpu_device_plugin_registrations_total"),
        "{body}"
    );
    assert_eq!(get(addr, "/nope").await.0, 404);
}

#[tokio::test]
async fn a_taken_port_is_a_clear_error() {
    let (_m, server) = start(Some("127.0.0.1:0")).await.unwrap();
    let taken = server.as_ref().unwrap().local_addr().to_string();
    let err = start(Some(&taken)).await.err().unwrap();
    assert!(
        err.to_string().contains("cannot listen on metrics address"),
        "{err}"
    );
}
