//! The consumers of the per-pod usage data, for real: Debian's Prometheus
//! server scraping the plugin every second and answering the three queries
//! platform teams run on DCGM exporter's names ("requested but idle", an HPA
//! on utilization, framebuffer pressure), and `inspect --pods` showing which
//! container holds each device. Scenario (`usage_support`): the simulated DGX
//! node, pod A on GPU 0 (5 % busy), pods B and C on the two replicas of GPU 1
//! (80 % busy, 78 000 of 81 920 MiB used).

mod nvml_support;
mod support;
mod usage_support;

use std::collections::BTreeSet;
use std::process::Command;

use support::http::{metrics_address, wait_scrape};
use support::kubelet::FakeKubelet;
use support::podresources::FakePodResources;
use support::process::{BIN, Plugin};
use support::prometheus::{self, Prometheus, Sample};
use usage_support::{Files, GPU0, GPU1, args, pod_resources};

fn start(files: &Files, k: &FakeKubelet, pods: &FakePodResources, extra: &[&str]) -> Plugin {
    let args = args(files, pods, extra);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    Plugin::simulated(&files.node(), &k.socket(), &refs)
}

/// (pod, namespace, container, UUID) of each sample.
fn holders(samples: &[Sample]) -> BTreeSet<(String, String, String, String)> {
    samples
        .iter()
        .map(|s| {
            let l = |k: &str| s.labels.get(k).cloned().unwrap_or_default();
            (l("pod"), l("namespace"), l("container"), l("UUID"))
        })
        .collect()
}

fn holder(pod: &str, ns: &str, container: &str, uuid: &str) -> (String, String, String, String) {
    (pod.into(), ns.into(), container.into(), uuid.into())
}

#[tokio::test]
async fn a_real_prometheus_answers_the_idle_hpa_and_memory_queries() {
    let Some(bin) = prometheus::binary() else {
        return;
    };
    let files = Files::new();
    let pods = pod_resources();
    let k = FakeKubelet::start();
    let p = start(&files, &k, &pods, &["--dcgm-compatible-metrics"]);
    let addr = metrics_address(&p).await;
    wait_scrape(addr, "pod C", |t| t.contains(r#"pod="C""#)).await;
    let mut prom = Prometheus::start(&bin, addr);
    // One series per holder of a GPU with a utilization value: A, B, C.
    let util = prom.wait_series("DCGM_FI_DEV_GPU_UTIL", 3).await;
    assert_eq!(util.len(), 3, "{util:?}");

    // "Requested but barely used": exactly the idle pod.
    let idle = prom
        .query("avg_over_time(DCGM_FI_DEV_GPU_UTIL[1m]) < 20")
        .await
        .unwrap();
    assert_eq!(
        holders(&idle),
        [holder("A", "team-a", "main", GPU0)].into(),
        "{idle:?}"
    );
    assert_eq!(idle[0].value, 5.0);

    // An HPA through prometheus-adapter: utilization per pod of a namespace.
    let hpa = prom
        .query(r#"avg by (pod) (DCGM_FI_DEV_GPU_UTIL{namespace="team-b"})"#)
        .await
        .unwrap();
    assert_eq!(hpa.len(), 1, "{hpa:?}");
    assert_eq!(hpa[0].labels.get("pod").map(String::as_str), Some("B"));
    assert_eq!(hpa[0].value, 80.0);

    // Framebuffer pressure: both pods sharing GPU 1 (78000 / 3920 MiB).
    let full = prom
        .query("DCGM_FI_DEV_FB_USED / DCGM_FI_DEV_FB_FREE > 0.9")
        .await
        .unwrap();
    assert_eq!(
        holders(&full),
        [
            holder("B", "team-b", "worker", GPU1),
            holder("C", "team-c", "worker", GPU1),
        ]
        .into(),
        "{full:?}"
    );
    assert!(
        full.iter()
            .all(|s| (s.value - 78000.0 / 3920.0).abs() < 1e-9)
    );

    // Our own names carry the same answer for GPU 0.
    let own = prom
        .query(&format!(
            r#"gpu_device_plugin_gpu_utilization_ratio{{uuid="{GPU0}"}} * on (device) group_right gpu_device_plugin_device_allocated"#
        ))
        .await
        .unwrap();
    assert_eq!(own.len(), 1, "{own:?}");
    assert_eq!(own[0].labels.get("pod").map(String::as_str), Some("A"));
    assert!((own[0].value - 0.05).abs() < 1e-9, "{own:?}");
    // The scrape itself was healthy (OpenMetrics, as Prometheus asks for it).
    let up = prom.query("up").await.unwrap();
    assert!(
        up.len() == 1 && up[0].value == 1.0,
        "{up:?}\n{}",
        prom.log()
    );
}

#[tokio::test]
async fn inspect_pods_shows_who_holds_each_device() {
    let files = Files::new();
    let pods = pod_resources();
    let k = FakeKubelet::start();
    let p = start(&files, &k, &pods, &[]);
    k.wait_devices(&p, "nvidia.com/gpu", 16).await;
    let run = |output: &'static str| {
        let mut cmd = Command::new(BIN);
        cmd.env_clear()
            .arg("inspect")
            .arg("--pods")
            .arg("--kubelet-socket")
            .arg(k.socket())
            .arg("--pod-resources-socket")
            .arg(pods.socket())
            .args(["--output", output]);
        tokio::task::spawn_blocking(move || cmd.output().expect("inspect runs"))
    };
    let table = run("table").await.unwrap();
    assert!(table.status.success(), "{table:?}");
    let table = String::from_utf8_lossy(&table.stdout).into_owned();
    for want in [
        format!("{GPU0}::0  Healthy    0     team-a/A/main"),
        format!("{GPU0}::1  Healthy    0     -"),
        format!("{GPU1}::0  Healthy    0     team-b/B/worker"),
        format!("{GPU1}::1  Healthy    0     team-c/C/worker"),
    ] {
        assert!(table.contains(&want), "{want:?} not in:\n{table}");
    }
    let json = run("json").await.unwrap();
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let held: BTreeSet<(String, String)> = json["sockets"][0]["devices"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| {
            d["pods"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |p| {
                    (
                        d["id"].as_str().unwrap().to_string(),
                        p["pod"].as_str().unwrap().to_string(),
                    )
                })
        })
        .collect();
    assert_eq!(
        held,
        [
            (format!("{GPU0}::0"), "A".to_string()),
            (format!("{GPU1}::0"), "B".to_string()),
            (format!("{GPU1}::1"), "C".to_string()),
        ]
        .into()
    );
}

#[tokio::test]
async fn inspect_pods_fails_loudly_without_the_pod_resources_socket() {
    let files = Files::new();
    let k = FakeKubelet::start();
    let missing = files.dir.path().join("absent.sock");
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .args(["inspect", "--pods", "--kubelet-socket"])
        .arg(k.socket())
        .arg("--pod-resources-socket")
        .arg(&missing);
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("inspect runs"))
        .await
        .unwrap();
    assert!(!out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("pod resources: kubelet PodResources socket"),
        "{stdout}"
    );
}
