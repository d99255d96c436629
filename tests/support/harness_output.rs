//! Reading what `kubeletharness` prints: its CHECK/SUMMARY lines, the
//! capacity and device lists the kubelet holds, topology hints, and the
//! per-restart and per-round lines of `restart` and `resocket`.

use std::collections::BTreeMap;
use std::process::ExitStatus;

/// One device as the kubelet's device manager holds it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct HeldDevice {
    pub id: String,
    pub health: String,
    pub numa: Vec<i64>,
}

/// A topology hint: NUMA nodes and whether it is preferred.
pub type Hint = (Vec<i64>, bool);

/// A finished harness run.
pub struct Output {
    pub status: ExitStatus,
    pub text: String,
}

/// `key=value` tokens of a line (values end at whitespace).
pub fn fields(line: &str) -> BTreeMap<&str, &str> {
    line.split_whitespace()
        .filter_map(|t| t.split_once('='))
        .collect()
}

/// `[0 1]` → `[0, 1]`.
fn numa_list(s: &str) -> Vec<i64> {
    s.trim_matches(|c| c == '[' || c == ']')
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect()
}

impl Output {
    pub fn new(status: ExitStatus, text: String) -> Self {
        Output { status, text }
    }

    /// The output without the kubelet code's own log lines.
    pub fn report(&self) -> String {
        let lines = self.text.lines().filter(|l| !l.starts_with("[kubelet]"));
        lines.collect::<Vec<_>>().join("\n")
    }

    /// Panics (with the report and `plugin_log`) unless the harness exited 0.
    #[track_caller]
    pub fn assert_success(&self, context: &str, plugin_log: &str) {
        assert!(
            self.status.success(),
            "{context}: kubeletharness exited {:?}\n{}\n--- plugin log:\n{plugin_log}",
            self.status,
            self.report()
        );
    }

    /// `(checks, failed)` from `SUMMARY checks=N failed=N`.
    pub fn check_summary(&self) -> Option<(u64, u64)> {
        let line = self.text.lines().find(|l| l.starts_with("SUMMARY "))?;
        let f = fields(line);
        Some((
            f.get("checks")?.parse().ok()?,
            f.get("failed")?.parse().ok()?,
        ))
    }

    /// The `CHECK FAIL` lines.
    pub fn failed_checks(&self) -> Vec<&str> {
        let lines = self.text.lines();
        lines.filter(|l| l.starts_with("CHECK FAIL")).collect()
    }

    /// Resource → device count from the registration check's `capacity=map[..]`.
    pub fn capacity(&self) -> BTreeMap<String, usize> {
        let Some(line) = self
            .text
            .lines()
            .find(|l| l.starts_with("CHECK PASS registration"))
        else {
            return BTreeMap::new();
        };
        let Some((_, rest)) = line.split_once("capacity=map[") else {
            return BTreeMap::new();
        };
        let inner = rest.split(']').next().unwrap_or_default();
        inner
            .split_whitespace()
            .filter_map(|kv| kv.rsplit_once(':'))
            .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
            .collect()
    }

    /// Resource → the devices its `===== resource R =====` section lists, sorted.
    pub fn devices(&self) -> BTreeMap<String, Vec<HeldDevice>> {
        let mut out: BTreeMap<String, Vec<HeldDevice>> = BTreeMap::new();
        let mut current: Option<String> = None;
        for line in self.text.lines() {
            if let Some(name) = line
                .strip_prefix("===== resource ")
                .and_then(|r| r.strip_suffix(" ====="))
            {
                current = Some(name.to_string());
                out.entry(name.to_string()).or_default();
                continue;
            }
            let (Some(resource), true) = (&current, line.starts_with("  ")) else {
                continue;
            };
            let f = fields(line);
            let (Some(health), Some(id)) = (f.get("health"), line.split_whitespace().next()) else {
                continue;
            };
            let numa = line
                .split_once("numa=")
                .map(|(_, r)| r.split(']').next().unwrap_or_default())
                .map(numa_list)
                .unwrap_or_default();
            out.entry(resource.clone()).or_default().push(HeldDevice {
                id: id.to_string(),
                health: health.to_string(),
                numa,
            });
        }
        out.values_mut().for_each(|d| d.sort());
        out
    }

    /// Request size → container hints from `hints request=N container=[..]`
    /// (in the order printed; one resource per run).
    pub fn hints(&self) -> BTreeMap<usize, Vec<Hint>> {
        let mut out = BTreeMap::new();
        for line in self.text.lines() {
            let Some(rest) = line.strip_prefix("hints request=") else {
                continue;
            };
            let Some((n, rest)) = rest.split_once(' ') else {
                continue;
            };
            let Ok(n) = n.parse::<usize>() else {
                continue;
            };
            let hints = rest
                .split("{numa=")
                .skip(1)
                .filter_map(|h| {
                    let (nodes, rest) = h.split_once(']')?;
                    Some((numa_list(nodes), rest.contains("preferred=true")))
                })
                .collect();
            out.insert(n, hints);
        }
        out
    }

    /// The `admit pod ...` lines.
    pub fn admissions(&self) -> Vec<&str> {
        let lines = self.text.lines();
        lines.filter(|l| l.starts_with("admit pod ")).collect()
    }

    /// Pod name → the `NVIDIA_VISIBLE_DEVICES` its container options carry.
    pub fn visible_devices(&self) -> BTreeMap<String, Vec<String>> {
        let mut out = BTreeMap::new();
        let mut pod: Option<String> = None;
        for line in self.text.lines() {
            if let Some(p) = line
                .strip_prefix("container options for ")
                .and_then(|p| p.strip_suffix(':'))
            {
                pod = Some(p.to_string());
            } else if let (Some(p), Some(v)) = (
                &pod,
                line.trim_start()
                    .strip_prefix("env")
                    .map(str::trim_start)
                    .and_then(|e| e.strip_prefix("NVIDIA_VISIBLE_DEVICES=")),
            ) {
                out.insert(p.clone(), v.split(',').map(String::from).collect());
            }
        }
        out
    }

    /// The first line starting with `prefix`, as `key=value` fields.
    pub fn summary_line(&self, prefix: &str) -> BTreeMap<&str, &str> {
        let line = self.text.lines().find(|l| l.starts_with(prefix));
        line.map(fields).unwrap_or_default()
    }

    /// `restart  N: registered ...` lines (one per restart that re-registered).
    pub fn restarts_registered(&self) -> usize {
        let lines = self.text.lines().filter(|l| l.starts_with("restart "));
        lines.filter(|l| l.contains(": registered ")).count()
    }

    /// `restart  N: the plugin sent X Register calls ...` lines.
    pub fn duplicate_register_lines(&self) -> Vec<&str> {
        let lines = self.text.lines().filter(|l| l.starts_with("restart "));
        lines.filter(|l| l.contains(" Register calls ")).collect()
    }

    /// Per `resocket` round: (`Register calls`, the round ended `ok`).
    pub fn resocket_rounds(&self) -> Vec<(Option<u64>, bool)> {
        let rounds = self.text.lines().filter(|l| l.starts_with("round "));
        rounds
            .map(|l| {
                let calls = l
                    .split_once("Register calls=")
                    .and_then(|(_, r)| r.split(';').next())
                    .and_then(|n| n.trim().parse().ok());
                (calls, l.trim_end().ends_with(" ok"))
            })
            .collect()
    }
}
