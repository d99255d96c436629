//! Usage through the real NVML backend, loading the fake driver
//! (`tests/fake-nvml`) that answers from the same node file: the usage
//! families match the simulated backend's series for series (absent values
//! included), and a device whose calls fail leaves the others sampled.

mod nvml_support;
mod support;
mod usage_support;

use nvml_support::Stage;
use support::http::{metrics_address, wait_scrape};
use support::kubelet::FakeKubelet;
use support::podresources::FakePodResources;
use support::process::Plugin;
use usage_support::{CONFIG, Files, GPU0, GPU1, USAGE0, lines_with, node_text, pod_resources};

const FAMILIES: [&str; 7] = [
    "gpu_device_plugin_gpu_utilization_ratio{",
    "gpu_device_plugin_memory_utilization_ratio{",
    "gpu_device_plugin_memory_used_bytes{",
    "gpu_device_plugin_memory_total_bytes{",
    "gpu_device_plugin_temperature_celsius{",
    "gpu_device_plugin_power_watts{",
    "gpu_device_plugin_sm_clock_hertz{",
];

fn usage_lines(text: &str) -> Vec<String> {
    let mut out: Vec<String> = FAMILIES
        .iter()
        .flat_map(|f| lines_with(text, f, &[]))
        .map(String::from)
        .collect();
    out.sort();
    out
}

fn nvml_plugin(
    stage: &Stage,
    k: &FakeKubelet,
    pods: &FakePodResources,
    env: &[(&str, &str)],
) -> Plugin {
    let config = stage.paths.root.join("config.yaml");
    std::fs::write(&config, CONFIG).unwrap();
    let args: Vec<String> = [
        "--kubelet-socket",
        &k.socket().display().to_string(),
        "--driver-root-ctr-path",
        &stage.paths.driver_root().display().to_string(),
        "--sysfs-root",
        &stage.paths.sys_root().display().to_string(),
        "--config-file",
        &config.display().to_string(),
        "--metrics-address",
        "127.0.0.1:0",
        "--usage-interval",
        "200ms",
        "--pod-resources-socket",
        &pods.socket().display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let node = stage.paths.node().display().to_string();
    let mut envs = vec![("FAKE_NVML_NODE", node.as_str())];
    envs.extend_from_slice(env);
    Plugin::start(&refs, &envs)
}

fn has_util(text: &str, uuid: &str, value: &str) -> bool {
    lines_with(text, "gpu_device_plugin_gpu_utilization_ratio{", &[uuid])
        .iter()
        .any(|l| l.ends_with(&format!(" {value}")))
}

#[tokio::test]
async fn nvml_usage_matches_the_simulated_backend_series_for_series() {
    let stage = Stage::new(&node_text(USAGE0));
    let pods = pod_resources();
    let k = FakeKubelet::start();
    let p = nvml_plugin(&stage, &k, &pods, &[]);
    let addr = metrics_address(&p).await;
    let nvml = wait_scrape(addr, "NVML usage of GPUs 0 and 1", |t| {
        has_util(t, GPU0, "0.05") && has_util(t, GPU1, "0.8") && t.contains(r#"pod="C""#)
    })
    .await;

    let files = Files::new();
    let k2 = FakeKubelet::start();
    let args = usage_support::args(&files, &pods, &[]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let sim = Plugin::simulated(&files.node(), &k2.socket(), &refs);
    let addr = metrics_address(&sim).await;
    let simulated = wait_scrape(addr, "simulated usage of GPUs 0 and 1", |t| {
        has_util(t, GPU0, "0.05") && has_util(t, GPU1, "0.8")
    })
    .await;
    let (a, b) = (usage_lines(&nvml), usage_lines(&simulated));
    assert_eq!(
        a,
        b,
        "nvml:\n{}\nsimulated:\n{}",
        a.join("\n"),
        b.join("\n")
    );
    assert_eq!(
        lines_with(&nvml, "gpu_device_plugin_device_allocated{", &[]).len(),
        3,
        "{nvml}"
    );
}

#[tokio::test]
async fn a_failing_device_leaves_the_others_sampled() {
    let stage = Stage::new(&node_text(USAGE0));
    let pods = pod_resources();
    let k = FakeKubelet::start();
    // Every usage call on GPU 1 fails as on a GPU that fell off the bus.
    let p = nvml_plugin(
        &stage,
        &k,
        &pods,
        &[
            ("FAKE_NVML_LOST_GPU", "1"),
            ("FAKE_NVML_LOST_CALL", "nvmlDeviceGetUtilizationRates"),
        ],
    );
    let addr = metrics_address(&p).await;
    let text = wait_scrape(addr, "usage of GPU 0", |t| has_util(t, GPU0, "0.05")).await;
    assert!(
        lines_with(&text, "gpu_device_plugin_gpu_utilization_ratio{", &[GPU1]).is_empty(),
        "{text}"
    );
    assert_eq!(
        lines_with(&text, "gpu_device_plugin_memory_total_bytes{", &[GPU1]).len(),
        1
    );
}
