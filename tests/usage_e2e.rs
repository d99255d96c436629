//! Per-pod usage metrics end to end, with the plugin binary on the simulated
//! backend and a fake kubelet PodResources server: usage values from the
//! node file reach `/metrics` per device, with `device_allocated` for every
//! container, replicas attributed to every pod sharing a GPU, MIG devices
//! with their own series, unsupported values absent, an edit of the node
//! file in the next sample, DCGM-compatible names on request, and the two
//! exposition formats.

mod nvml_support;
mod support;
mod usage_support;

use support::http::{get, get_accept, metrics_address, wait_scrape};
use support::kubelet::FakeKubelet;
use support::podresources::FakePodResources;
use support::process::Plugin;
use support::{repo_file, write_atomic};
use usage_support::{Files, GPU0, GPU1, GPU2, args, lines_with, node_text, pod_resources};

fn start(files: &Files, k: &FakeKubelet, pods: &FakePodResources, extra: &[&str]) -> Plugin {
    let args = args(files, pods, extra);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    Plugin::simulated(&files.node(), &k.socket(), &refs)
}

const UTIL: &str = "gpu_device_plugin_gpu_utilization_ratio{";

fn util_line(uuid: &str, index: u32, value: &str) -> String {
    format!(
        r#"gpu_device_plugin_gpu_utilization_ratio{{resource="nvidia.com/gpu",device="{uuid}",uuid="{uuid}",gpu="{index}",model="NVIDIA A100-SXM4-80GB"}} {value}"#
    )
}

#[tokio::test]
async fn usage_and_pods_reach_metrics_on_the_dgx_node() {
    let files = Files::new();
    let pods = pod_resources();
    let k = FakeKubelet::start();
    let p = start(&files, &k, &pods, &["--dcgm-compatible-metrics"]);
    let addr = metrics_address(&p).await;
    let text = wait_scrape(addr, "usage of GPU 0 and pod C", |t| {
        t.lines().any(|l| l == util_line(GPU0, 0, "0.05")) && t.contains(r#"pod="C""#)
    })
    .await;
    // Usage per device, from the node file.
    assert!(
        text.lines().any(|l| l == util_line(GPU1, 1, "0.8")),
        "{text}"
    );
    for (family, value) in [
        ("gpu_device_plugin_memory_used_bytes", "81788928000"),
        ("gpu_device_plugin_memory_total_bytes", "85899345920"),
        ("gpu_device_plugin_temperature_celsius", "70"),
        ("gpu_device_plugin_power_watts", "350"),
        ("gpu_device_plugin_sm_clock_hertz", "1410000000"),
    ] {
        let got = lines_with(&text, &format!("{family}{{"), &[GPU1]);
        assert_eq!(got.len(), 1, "{family}: {got:?}\n{text}");
        assert!(got[0].ends_with(&format!(" {value}")), "{got:?}");
    }
    // GPU 2 has no usage map: NVML supports nothing there, so nothing but its size.
    assert!(lines_with(&text, UTIL, &[GPU2]).is_empty(), "{text}");
    assert!(lines_with(&text, "gpu_device_plugin_power_watts{", &[GPU2]).is_empty());
    assert_eq!(
        lines_with(&text, "gpu_device_plugin_memory_total_bytes{", &[GPU2]).len(),
        1
    );
    // Who holds what.
    for (pod, ns, container, gpu) in [
        ("A", "team-a", "main", GPU0),
        ("B", "team-b", "worker", GPU1),
        ("C", "team-c", "worker", GPU1),
    ] {
        let want = format!(
            r#"gpu_device_plugin_device_allocated{{resource="nvidia.com/gpu",device="{gpu}",pod="{pod}",namespace="{ns}",container="{container}"}} 1"#
        );
        assert!(text.lines().any(|l| l == want), "missing {want}\n{text}");
    }
    assert_eq!(
        lines_with(&text, "gpu_device_plugin_device_allocated{", &[]).len(),
        3
    );
    // DCGM exporter's names: GPU 0 with pod A, one series each for B and C on GPU 1.
    let dcgm0 = lines_with(
        &text,
        "DCGM_FI_DEV_GPU_UTIL{",
        &[&format!(r#"UUID="{GPU0}""#)],
    );
    assert_eq!(dcgm0.len(), 1, "{text}");
    assert!(
        dcgm0[0].contains(r#"container="main",namespace="team-a",pod="A""#)
            && dcgm0[0].ends_with(" 5"),
        "{dcgm0:?}"
    );
    assert!(dcgm0[0].starts_with(r#"DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-bd73a270-54aa-3a74-1e01-362282297cd1",pci_bus_id="00000000:07:00.0",device="nvidia0",modelName="NVIDIA A100-SXM4-80GB",DCGM_FI_DRIVER_VERSION="550.54.15","#), "{dcgm0:?}");
    let dcgm1 = lines_with(
        &text,
        "DCGM_FI_DEV_GPU_UTIL{",
        &[&format!(r#"UUID="{GPU1}""#)],
    );
    assert_eq!(dcgm1.len(), 2, "{text}");
    assert!(
        dcgm1
            .iter()
            .any(|l| l.contains(r#"pod="B""#) && l.ends_with(" 80"))
    );
    assert!(
        dcgm1
            .iter()
            .any(|l| l.contains(r#"pod="C""#) && l.ends_with(" 80"))
    );
    // FB in MiB: 78000 used, 81920 - 78000 free.
    let fb = lines_with(
        &text,
        "DCGM_FI_DEV_FB_FREE{",
        &[&format!(r#"UUID="{GPU1}""#), r#"pod="B""#],
    );
    assert!(fb.len() == 1 && fb[0].ends_with(" 3920"), "{fb:?}");
    // An unattributed GPU keeps one series without pod labels; unsupported values none.
    let dcgm3 = lines_with(&text, "DCGM_FI_DEV_FB_FREE{", &[r#"gpu="3""#]);
    assert!(dcgm3.is_empty(), "GPU 3 reports no memory use: {dcgm3:?}");
    assert!(lines_with(&text, "DCGM_FI_DEV_XID_ERRORS{", &[r#"gpu="3""#]).len() == 1);
    assert!(lines_with(&text, "DCGM_FI_DEV_GPU_UTIL{", &[r#"gpu="2""#]).is_empty());
}

#[tokio::test]
async fn dcgm_names_are_off_by_default() {
    let files = Files::new();
    let pods = pod_resources();
    let k = FakeKubelet::start();
    let p = start(&files, &k, &pods, &[]);
    let addr = metrics_address(&p).await;
    let text = wait_scrape(addr, "usage of GPU 0", |t| {
        t.lines().any(|l| l == util_line(GPU0, 0, "0.05"))
    })
    .await;
    assert!(!text.contains("DCGM_FI_"), "{text}");
}

#[tokio::test]
async fn editing_the_node_file_changes_the_next_sample() {
    let files = Files::new();
    let pods = pod_resources();
    let k = FakeKubelet::start();
    let p = start(&files, &k, &pods, &[]);
    let addr = metrics_address(&p).await;
    wait_scrape(addr, "utilization 0.05", |t| {
        t.lines().any(|l| l == util_line(GPU0, 0, "0.05"))
    })
    .await;
    write_atomic(
        &files.node(),
        &node_text("usage: {gpuUtil: 55, memoryUtil: 1, memoryUsedMiB: 1024}"),
    );
    let text = wait_scrape(addr, "utilization 0.55", |t| {
        t.lines().any(|l| l == util_line(GPU0, 0, "0.55"))
    })
    .await;
    // The keys now absent are no longer reported.
    assert!(
        lines_with(&text, "gpu_device_plugin_power_watts{", &[GPU0]).is_empty(),
        "{text}"
    );
}

#[tokio::test]
async fn a_missing_pod_resources_socket_leaves_usage_unattributed() {
    let files = Files::new();
    let k = FakeKubelet::start();
    let pods = pod_resources();
    let mut args = args(&files, &pods, &[]);
    let at = args
        .iter()
        .position(|a| a == "--pod-resources-socket")
        .unwrap();
    args[at + 1] = files.dir.path().join("absent.sock").display().to_string();
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let p = Plugin::simulated(&files.node(), &k.socket(), &refs);
    let addr = metrics_address(&p).await;
    let text = wait_scrape(addr, "usage of GPU 0", |t| {
        t.lines().any(|l| l == util_line(GPU0, 0, "0.05"))
    })
    .await;
    assert!(!text.contains("device_allocated{"), "{text}");
    assert_eq!(pods.lists(), 0);
    assert_eq!(
        p.log().matches("PodResources socket").count(),
        1,
        "logged once:\n{}",
        p.log()
    );
}

#[tokio::test]
async fn mig_devices_have_their_own_series_without_utilization() {
    let dir = tempfile::tempdir().unwrap();
    let node = dir.path().join("node.yaml");
    let mig = "MIG-d79730dc-1654-e45f-aac8-029df75527e0";
    let text = std::fs::read_to_string(repo_file("config/nodes/h100-mig.yaml")).unwrap();
    let line = format!(
        "{{uuid: {mig}, profile: 1g.10gb, gpuInstanceId: 9, computeInstanceId: 0, memoryMiB: 9856}}"
    );
    assert!(text.contains(&line));
    let text = text.replace(
        &line,
        &format!("{{uuid: {mig}, profile: 1g.10gb, gpuInstanceId: 9, computeInstanceId: 0, memoryMiB: 9856, usage: {{memoryUsedMiB: 4096, temperatureC: 50}}}}"),
    );
    std::fs::write(&node, text).unwrap();
    let k = FakeKubelet::start();
    let p = Plugin::simulated(
        &node,
        &k.socket(),
        &[
            "--mig-strategy",
            "mixed",
            "--metrics-address",
            "127.0.0.1:0",
            "--usage-interval",
            "200ms",
            "--dcgm-compatible-metrics",
        ],
    );
    let addr = metrics_address(&p).await;
    let want = format!(
        r#"gpu_device_plugin_memory_used_bytes{{resource="nvidia.com/mig-1g.10gb",device="{mig}",uuid="{mig}",gpu="0",model="NVIDIA H100 80GB HBM3",gpu_instance_id="9",mig_profile="1g.10gb"}} 4294967296"#
    );
    let text = wait_scrape(addr, "the MIG device's memory", |t| {
        t.lines().any(|l| l == want)
    })
    .await;
    assert!(
        lines_with(&text, UTIL, &[mig]).is_empty(),
        "MIG utilization is unsupported:\n{text}"
    );
    let dcgm = lines_with(
        &text,
        "DCGM_FI_DEV_FB_USED{",
        &[r#"GPU_I_ID="9""#, r#"gpu="0""#],
    );
    assert!(
        dcgm.len() == 1
            && dcgm[0].contains(r#"GPU_I_PROFILE="1g.10gb""#)
            && dcgm[0].ends_with(" 4096"),
        "{text}"
    );
}

#[tokio::test]
async fn metrics_negotiate_openmetrics_and_prometheus_text() {
    let files = Files::new();
    let pods = pod_resources();
    let k = FakeKubelet::start();
    let p = start(&files, &k, &pods, &["--dcgm-compatible-metrics"]);
    let addr = metrics_address(&p).await;
    wait_scrape(addr, "pod C", |t| t.contains(r#"pod="C""#)).await;
    let (code, ct, om) = get_accept(
        addr,
        "/metrics",
        "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
    )
    .await;
    assert_eq!(code, 200);
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    assert!(om.ends_with("# EOF\n"), "{om}");
    assert!(om.contains("# TYPE gpu_device_plugin_build info"), "{om}");
    for accept in ["text/plain;version=0.0.4", "*/*"] {
        let (code, ct, text) = get_accept(addr, "/metrics", accept).await;
        assert_eq!(code, 200);
        assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
        assert!(
            !text.contains("# EOF") && !text.contains(" info\n"),
            "{text}"
        );
    }
    let (_, text) = get(addr, "/metrics").await;
    assert!(
        text.contains("# TYPE gpu_device_plugin_build_info gauge"),
        "{text}"
    );

    let Some(promtool) = std::env::var_os("PROMTOOL") else {
        println!("not run: PROMTOOL is not set (promtool check metrics)");
        return;
    };
    // Our own families: lint-clean.
    let own: String = text
        .lines()
        .filter(|l| !l.contains("DCGM_FI_"))
        .map(|l| format!("{l}\n"))
        .collect();
    let (ok, out) = check_metrics(&promtool, &own);
    assert!(
        ok && out.is_empty(),
        "promtool check metrics:\n{out}\n{own}"
    );
    // With DCGM exporter's names: they parse; the only lint is DCGM's own
    // camelCase labels (UUID, modelName), kept for its dashboards.
    let (_, out) = check_metrics(&promtool, &text);
    for line in out.lines().filter(|l| !l.is_empty()) {
        assert!(
            line.starts_with("DCGM_FI_")
                && line.ends_with("label names should be written in 'snake_case' not 'camelCase'"),
            "promtool check metrics: {line}\n{text}"
        );
    }
}

/// Runs `promtool check metrics` on `text`: success, and what it printed.
fn check_metrics(promtool: &std::ffi::OsStr, text: &str) -> (bool, String) {
    use std::io::Write;
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("PROMTOOL={promtool:?} does not run: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), printed)
}
