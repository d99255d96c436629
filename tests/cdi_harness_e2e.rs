//! `cdi-cri` against the kubelet's own device manager (`kubeletharness`,
//! named by `KUBELET_DEVICEMANAGER`; unset: not run): pods admitted through
//! the real Topology Manager and `ManagerImpl.Allocate` get container run
//! options that carry only CDI names (no env, mounts or device nodes), each
//! naming a device the spec on disk holds.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;
use support::cdi::{FakeDriverRoot, Layout};
use support::harness::{Harness, socket_dir};
use support::harness_output::fields;
use support::process::Plugin;
use support::repo_file;

const RESOURCE: &str = "nvidia.com/mig-1g.10gb";

/// Pod name → the CDI names its container options carry.
fn cdi_names(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut pod: Option<String> = None;
    for line in text.lines() {
        if let Some(p) = line
            .strip_prefix("container options for ")
            .and_then(|p| p.strip_suffix(':'))
        {
            pod = Some(p.to_string());
        } else if let (Some(p), Some(name)) = (&pod, line.trim_start().strip_prefix("cdi ")) {
            out.entry(p.clone())
                .or_default()
                .push(name.trim().to_string());
        }
    }
    out
}

#[test]
fn the_kubelets_run_options_carry_the_cdi_names_of_the_spec_on_disk() {
    let Some(h) =
        Harness::from_env("the_kubelets_run_options_carry_the_cdi_names_of_the_spec_on_disk")
    else {
        return;
    };
    let node = repo_file("config/nodes/h100-mig.yaml");
    let root = FakeDriverRoot::new(&node, Layout::Standard);
    let cdi = tempfile::tempdir().unwrap();
    let (_tmp, dir) = socket_dir();
    let p = Plugin::simulated(
        &node,
        &dir.join("kubelet.sock"),
        &[
            "--mig-strategy",
            "mixed",
            "--device-list-strategy",
            "cdi-cri",
            "--driver-root-ctr-path",
            &root.display(),
            "--driver-root",
            &root.display(),
            "--cdi-root",
            cdi.path().to_str().unwrap(),
        ],
    );
    let extra = ["-resource", RESOURCE, "-hints", "", "-allocate", "1,2"];
    let out = h.on("check", &dir, &node, &extra, Duration::from_secs(90));
    out.assert_success("check", &p.log());
    let spec: Value = serde_json::from_str(
        &std::fs::read_to_string(cdi.path().join("k8s.device-plugin.nvidia.com-gpu.json")).unwrap(),
    )
    .unwrap();
    let on_disk: BTreeSet<String> = spec["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            format!(
                "k8s.device-plugin.nvidia.com/gpu={}",
                d["name"].as_str().unwrap()
            )
        })
        .collect();
    let pods = cdi_names(&out.text);
    let sizes: Vec<usize> = pods.values().map(Vec::len).collect();
    assert_eq!(sizes, [1, 2], "{}", out.report());
    for name in pods.values().flatten() {
        assert!(
            on_disk.contains(name),
            "{name} is not in the spec: {on_disk:?}"
        );
    }
    // The run options hold nothing but the CDI names.
    let options: Vec<BTreeMap<&str, &str>> = out
        .text
        .lines()
        .filter(|l| l.contains(": run options "))
        .map(fields)
        .collect();
    assert!(!options.is_empty(), "{}", out.report());
    for o in options {
        assert_eq!(
            (o["envs"], o["mounts"], o["devices"], o["annotations"]),
            ("0", "0", "0", "0"),
            "{o:?}"
        );
    }
}
