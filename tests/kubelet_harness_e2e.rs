//! The plugin binary against the kubelet's own device manager and topology
//! manager (Kubernetes v1.32 code in `kubeletharness`, named by
//! `KUBELET_DEVICEMANAGER`; unset: each test says it was not run and returns):
//! registration of every resource, the devices and health the kubelet holds,
//! hints and Allocate through pod admission, kubelet restarts (none lost, one
//! Register per resource), deleted sockets, a recreated socket directory, and
//! health and config changes reaching a running kubelet.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use support::expected::{Expected, expected};
use support::harness::{Harness, Output, Running, checkpoint_pods, socket_dir, wait_checkpoint};
use support::harness_output::HeldDevice;
use support::process::Plugin;
use support::{WAIT, repo_file, write_atomic};

/// The harness for the calling test (named in the not-run message).
macro_rules! harness {
    () => {{
        fn here() {}
        let path = std::any::type_name_of_val(&here);
        let test = path.rsplit("::").nth(1).unwrap_or(path);
        Harness::from_env(test)
    }};
}

/// Upper bound for one `check` run (its own registration wait is 15 s).
const CHECK_RUN: Duration = Duration::from_secs(90);
/// Upper bound for `restart -n 20` / `resocket` (each step waits at most 15 s).
const LONG_RUN: Duration = Duration::from_secs(240);
const GPU: &str = "nvidia.com/gpu";

fn mig_node() -> PathBuf {
    repo_file("config/nodes/h100-mig.yaml")
}

fn dgx_node() -> PathBuf {
    repo_file("config/nodes/dgx-a100.yaml")
}

fn plugin(node: &Path, dir: &Path, extra: &[&str]) -> Plugin {
    Plugin::simulated(node, &dir.join("kubelet.sock"), extra)
}

/// `check` of every resource, registration and device list only.
const CHECK_ALL: &[&str] = &["-resource", "all", "-hints", "", "-allocate", ""];

fn counts(want: &Expected) -> BTreeMap<String, usize> {
    want.iter().map(|(k, v)| (k.clone(), v.len())).collect()
}

#[test]
fn every_mig_resource_registers_with_the_kubelet_device_manager() {
    let Some(h) = harness!() else {
        return;
    };
    let (_tmp, dir) = socket_dir();
    let node = mig_node();
    let p = plugin(&node, &dir, &["--mig-strategy", "mixed"]);
    let out = h.on("check", &dir, &node, CHECK_ALL, CHECK_RUN);
    out.assert_success("check", &p.log());
    let want = counts(&expected(&node, "mixed"));
    assert_eq!(want.len(), 6, "the H100 MIG node has 6 resources");
    assert_eq!(out.capacity(), want, "{}", out.report());
}

#[test]
fn the_kubelet_holds_every_device_healthy_on_its_numa_node() {
    let Some(h) = harness!() else {
        return;
    };
    let (_tmp, dir) = socket_dir();
    let node = mig_node();
    let p = plugin(&node, &dir, &["--mig-strategy", "mixed"]);
    let out = h.on("check", &dir, &node, CHECK_ALL, CHECK_RUN);
    out.assert_success("check", &p.log());
    let want: BTreeMap<String, Vec<HeldDevice>> = expected(&node, "mixed")
        .into_iter()
        .map(|(name, devs)| {
            let mut held: Vec<HeldDevice> = devs
                .into_iter()
                .map(|(id, numa)| HeldDevice {
                    id,
                    health: "Healthy".into(),
                    numa: numa.into_iter().collect(),
                })
                .collect();
            held.sort();
            (name, held)
        })
        .collect();
    assert_eq!(out.devices(), want, "{}", out.report());
}

/// NUMA node of every device of `resource`, from the node file.
fn numa_of(node: &Path, resource: &str) -> BTreeMap<String, i64> {
    let want = expected(node, "none");
    let devs = want.get(resource).cloned().unwrap_or_default();
    devs.into_iter()
        .filter_map(|(id, numa)| Some((id, numa?)))
        .collect()
}

#[test]
fn hints_and_allocations_through_pod_admission_stay_on_one_numa_node() {
    let Some(h) = harness!() else {
        return;
    };
    let (_tmp, dir) = socket_dir();
    let node = dgx_node();
    let p = plugin(&node, &dir, &[]);
    let extra = [
        "-resource",
        GPU,
        "-hints",
        "1,2,4,8",
        "-allocate",
        "4,2,2",
        "-policy",
        "single-numa-node",
    ];
    let out = h.on("check", &dir, &node, &extra, CHECK_RUN);
    out.assert_success("check", &p.log());
    assert_eq!(
        out.check_summary().map(|s| s.1),
        Some(0),
        "{}",
        out.report()
    );

    // Hints: a single NUMA node is preferred wherever the request fits in one.
    let numa = numa_of(&node, GPU);
    let mut per_node: BTreeMap<i64, usize> = BTreeMap::new();
    numa.values()
        .for_each(|n| *per_node.entry(*n).or_default() += 1);
    let hints = out.hints();
    for n in [1usize, 2, 4, 8] {
        let preferred: BTreeSet<Vec<i64>> = hints[&n]
            .iter()
            .filter(|h| h.1)
            .map(|h| h.0.clone())
            .collect();
        let fits: BTreeSet<Vec<i64>> = per_node
            .iter()
            .filter(|(_, c)| **c >= n)
            .map(|(k, _)| vec![*k])
            .collect();
        let want = if fits.is_empty() {
            BTreeSet::from([per_node.keys().copied().collect()])
        } else {
            fits
        };
        assert_eq!(preferred, want, "preferred hints for {n}");
    }

    // Admission: every pod admitted, its devices (as the kubelet checkpointed
    // them) all on one NUMA node, distinct, and passed to the container.
    let admitted = out.admissions();
    assert_eq!(admitted.len(), 3, "{}", out.report());
    assert!(admitted.iter().all(|a| a.contains(" admit=true ")));
    let pods = checkpoint_pods(&dir);
    let visible = out.visible_devices();
    let mut sizes = Vec::new();
    let mut all = BTreeSet::new();
    for pod in &pods {
        assert_eq!(pod.resource, GPU);
        let ids: Vec<&String> = pod.by_numa.values().flatten().collect();
        let nodes: BTreeSet<i64> = ids.iter().map(|id| numa[*id]).collect();
        assert_eq!(nodes.len(), 1, "{pod:?} spans NUMA nodes {nodes:?}");
        sizes.push(ids.len());
        all.extend(ids.iter().cloned());
        let name = pod.pod.trim_start_matches("uid-");
        let got: BTreeSet<&String> = visible[name].iter().collect();
        assert_eq!(got, ids.into_iter().collect(), "{name}: container env");
    }
    sizes.sort();
    assert_eq!(sizes, vec![2, 2, 4], "{pods:?}");
    assert_eq!(all.len(), 8, "no device given twice");
}

/// `restart -n 20` of every resource on the MIG node; the output and the plugin's log.
fn mig_restarts(h: &Harness) -> (Output, String) {
    let (_tmp, dir) = socket_dir();
    let node = mig_node();
    let p = plugin(&node, &dir, &["--mig-strategy", "mixed"]);
    let extra = ["-n", "20", "-resource", "all"];
    let out = h.on("restart", &dir, &node, &extra, LONG_RUN);
    (out, p.log())
}

#[test]
fn twenty_kubelet_restarts_lose_no_registration() {
    let Some(h) = harness!() else {
        return;
    };
    let (out, log) = mig_restarts(&h);
    out.assert_success("restart", &log);
    let s = out.summary_line("restarts=");
    let got = (s.get("restarts"), s.get("ok"), s.get("failed"));
    assert_eq!(
        got,
        (Some(&"20"), Some(&"20"), Some(&"0")),
        "{}",
        out.report()
    );
    assert_eq!(out.restarts_registered(), 20, "{}", out.report());
}

#[test]
fn every_kubelet_start_gets_exactly_one_register_per_resource() {
    let Some(h) = harness!() else {
        return;
    };
    let (out, log) = mig_restarts(&h);
    out.assert_success("restart", &log);
    let s = out.summary_line("restarts=");
    assert_eq!(s.get("restarts"), Some(&"20"), "{}", out.report());
    let dup = out.duplicate_register_lines();
    assert_eq!(
        s.get("restarts-with-duplicate-Register"),
        Some(&"0"),
        "{} of 20 kubelet starts saw duplicate Register calls:\n{}",
        dup.len(),
        dup.join("\n")
    );
    assert!(dup.is_empty(), "{}", dup.join("\n"));
}

#[test]
fn deleted_plugin_sockets_are_served_and_registered_once_again() {
    let Some(h) = harness!() else {
        return;
    };
    let (_tmp, dir) = socket_dir();
    let node = mig_node();
    let p = plugin(&node, &dir, &["--mig-strategy", "mixed"]);
    let out = h.on("resocket", &dir, &node, &["-n", "5"], LONG_RUN);
    out.assert_success("resocket", &p.log());
    let s = out.summary_line("resocket ");
    let got = (s.get("rounds"), s.get("failed"));
    assert_eq!(got, (Some(&"5"), Some(&"0")), "{}", out.report());
    let want = vec![(Some(6), true); 5];
    assert_eq!(out.resocket_rounds(), want, "{}", out.report());
}

#[test]
fn a_recreated_socket_directory_is_served_and_registered_again() {
    let Some(h) = harness!() else {
        return;
    };
    let (tmp, dir) = socket_dir();
    let node = dgx_node();
    let p = plugin(&node, &dir, &[]);
    let check = [CHECK_ALL, &["-timeout", "10s"]].concat();
    let out = h.on("check", &dir, &node, &check, CHECK_RUN);
    out.assert_success("first kubelet", &p.log());
    // The directory is replaced whole while no kubelet runs, then one starts in the new one.
    let old = tmp.path().join("old");
    std::fs::rename(&dir, &old).unwrap();
    std::fs::create_dir(&dir).unwrap();
    let _ = std::fs::remove_dir_all(&old); // the temp dir goes anyway; the plugin may still write there
    let out = h.on("check", &dir, &node, &check, CHECK_RUN);
    out.assert_success("kubelet in the new directory", &p.log());
    assert_eq!(out.capacity(), counts(&expected(&node, "none")));
}

/// A kubelet that stays up (the resource set must hold for a minute before
/// `check` goes on), so updates reach one running device manager.
fn long_lived_check(h: &Harness, dir: &Path, node: &Path) -> Running {
    let extra = [CHECK_ALL, &["-settle", "60s", "-timeout", "10s"]].concat();
    h.spawn_on("check", dir, node, &extra)
}

#[test]
fn a_health_event_reaches_the_running_kubelet() {
    let Some(h) = harness!() else {
        return;
    };
    let (tmp, dir) = socket_dir();
    let node = tmp.path().join("node.yaml");
    let text = std::fs::read_to_string(dgx_node()).unwrap();
    write_atomic(&node, &text);
    let p = plugin(&node, &dir, &[]);
    let mut kubelet = long_lived_check(&h, &dir, &node);
    let log = || format!("{}\n--- plugin log:\n{}", kubelet.output_so_far(), p.log());
    let before = wait_checkpoint(
        &dir,
        WAIT,
        |c| c.get(GPU).is_some_and(|d| d.len() == 8),
        log,
    );
    let uuid = numa_of(&node, GPU).into_keys().nth(1).unwrap();
    let at = format!("    uuid: {uuid}\n");
    write_atomic(
        &node,
        &text.replacen(&at, &format!("{at}    xids: [79]\n"), 1),
    );
    let after = wait_checkpoint(
        &dir,
        WAIT,
        |c| c.get(GPU).is_some_and(|d| d.len() == 7),
        log,
    );
    let gone: Vec<&String> = before[GPU].difference(&after[GPU]).collect();
    assert_eq!(
        gone,
        vec![&uuid],
        "only the GPU with the XID left the healthy set"
    );
    assert!(
        kubelet.wait(Duration::ZERO).is_none(),
        "same kubelet still up"
    );
}

#[test]
fn a_config_edit_reaches_the_running_kubelet() {
    let Some(h) = harness!() else {
        return;
    };
    let (tmp, dir) = socket_dir();
    let cfg = tmp.path().join("config.yaml");
    let sliced = |n: u32| {
        format!(
            "version: v1\nsharing:\n  timeSlicing:\n    resources:\n    - name: {GPU}\n      replicas: {n}\n"
        )
    };
    write_atomic(&cfg, &sliced(2));
    let node = dgx_node();
    let p = plugin(&node, &dir, &["--config-file", &cfg.display().to_string()]);
    let mut kubelet = long_lived_check(&h, &dir, &node);
    let log = || format!("{}\n--- plugin log:\n{}", kubelet.output_so_far(), p.log());
    wait_checkpoint(
        &dir,
        WAIT,
        |c| c.get(GPU).is_some_and(|d| d.len() == 16),
        log,
    );
    write_atomic(&cfg, &sliced(4));
    let after = wait_checkpoint(
        &dir,
        WAIT,
        |c| c.get(GPU).is_some_and(|d| d.len() == 32),
        log,
    );
    for uuid in numa_of(&node, GPU).keys() {
        let replicas: BTreeSet<String> = (0..4).map(|n| format!("{uuid}::{n}")).collect();
        assert!(replicas.is_subset(&after[GPU]), "{uuid}: {:?}", after[GPU]);
    }
    assert!(
        kubelet.wait(Duration::ZERO).is_none(),
        "same kubelet still up"
    );
}
