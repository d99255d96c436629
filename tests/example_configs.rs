//! Every example config in config/examples passes `check-config` and
//! advertises what its comments promise.

mod support;

use std::process::Command;

use support::process::BIN;
use support::repo_file;

fn check(config: &str, node: &str) -> (i32, String) {
    let out = Command::new(BIN)
        .args([
            "check-config",
            &repo_file(config).display().to_string(),
            "--simulate",
        ])
        .arg(repo_file(&format!("config/nodes/{node}.yaml")))
        .env_clear()
        .output()
        .expect("binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// (resource, devices, replicas) rows of the report.
fn rows(stdout: &str) -> Vec<(String, usize, String)> {
    stdout
        .lines()
        .filter(|l| l.starts_with("nvidia.com/"))
        .map(|l| {
            let mut parts = l.split_whitespace();
            let name = parts.next().unwrap_or_default().to_string();
            let devices = parts.next().and_then(|n| n.parse().ok()).unwrap_or(0);
            (name, devices, parts.collect::<Vec<_>>().join(" "))
        })
        .collect()
}

fn row(name: &str, devices: usize, replicas: &str) -> (String, usize, String) {
    (name.to_string(), devices, replicas.to_string())
}

#[test]
fn every_example_is_valid_and_advertises_what_it_says() {
    let cases = [
        (
            "flags.yaml",
            "dgx-a100",
            vec![row("nvidia.com/gpu", 8, "-")],
        ),
        (
            "time-slicing.yaml",
            "dgx-a100",
            vec![row("nvidia.com/gpu", 32, "4")],
        ),
        (
            "time-slicing-renamed.yaml",
            "dgx-a100",
            vec![row("nvidia.com/gpu.shared", 32, "4")],
        ),
        (
            "time-slicing-per-gpu.yaml",
            "dgx-a100",
            vec![row(
                "nvidia.com/gpu",
                23,
                "0: 8, 1: 8, 2: 2, 3: 1, 4: 1, 5: 1, 6: 1, 7: 1",
            )],
        ),
        (
            "mig-mixed-time-slicing.yaml",
            "h100-mig",
            vec![
                row("nvidia.com/gpu", 4, "-"),
                row("nvidia.com/mig-1g.10gb.me", 1, "-"),
                row("nvidia.com/mig-1g.10gb.shared", 16, "2"),
                row("nvidia.com/mig-2g.20gb", 1, "-"),
                row("nvidia.com/mig-3g.40gb", 1, "-"),
                row("nvidia.com/mig-7g.80gb", 1, "-"),
            ],
        ),
        ("mps.yaml", "dgx-a100", vec![row("nvidia.com/gpu", 32, "4")]),
        (
            "custom-names.yaml",
            "h100-mig",
            vec![row("nvidia.com/h100", 8, "-")],
        ),
    ];
    let listed: Vec<String> = std::fs::read_dir(repo_file("config/examples"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        listed.len(),
        cases.len(),
        "every example has a case: {listed:?}"
    );
    for (file, node, want) in cases {
        let (code, stdout) = check(&format!("config/examples/{file}"), node);
        assert_eq!(code, 0, "{file}: {stdout}");
        assert_eq!(rows(&stdout), want, "{file}");
    }
}

#[test]
fn an_invalid_file_exits_one_listing_its_errors_with_position() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "version: v1\nsharing:\n  timeSlicing:\n    resources:\n    - name: gpu\n      replicas: 1\n").unwrap();
    let out = Command::new(BIN)
        .arg("check-config")
        .arg(&bad)
        .env_clear()
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("error: number of replicas must be >= 2"),
        "{stdout}"
    );
    assert!(stdout.contains("line 6"), "{stdout}");
}
