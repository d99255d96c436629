//! Which named config a node runs, from its label: NVIDIA config-manager's
//! `updateConfigName` rules (label, then `DEFAULT_CONFIG`, then the fallback
//! strategies `named`, `single`, `empty`) as a pure function over the label
//! value and the names in the config directory.

use std::collections::BTreeSet;
use std::path::Path;

/// One of `FALLBACK_STRATEGIES`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// The config named `default`.
    Named,
    /// The only config, when there is exactly one.
    Single,
    /// The empty config (every setting at its default).
    Empty,
}

/// The default of `FALLBACK_STRATEGIES` (NVIDIA's chart: `named,single`).
pub const DEFAULT_FALLBACKS: &str = "named,single";

/// What the node runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selected {
    /// `<config dir>/<name>`.
    Named(String),
    /// The empty config.
    Empty,
}

impl Selected {
    /// The name for logs and metrics (`(empty)` for the empty config).
    pub fn name(&self) -> &str {
        match self {
            Selected::Named(n) => n,
            Selected::Empty => "(empty)",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    #[error("unknown fallback strategy: {0} (use named, single or empty)")]
    UnknownFallback(String),
    #[error("no configuration files available in the config directory")]
    NoFiles,
    #[error("specified config {0} does not exist (label {1}); available: {2}")]
    UnknownLabel(String, String, String),
    #[error("specified default config {0} does not exist (DEFAULT_CONFIG); available: {1}")]
    UnknownDefault(String, String),
    #[error("no config was set, no default was provided, and all fallbacks failed")]
    NoneApplies,
}

/// Parses `FALLBACK_STRATEGIES`: comma-separated, each item trimmed. An
/// empty value means no fallback (NVIDIA fails on it with an empty strategy
/// name; the chart renders it for `fallbackStrategies: []`).
pub fn parse_fallbacks(value: &str) -> Result<Vec<Fallback>, SelectError> {
    if value.trim().is_empty() {
        return Ok(Vec::new());
    }
    value
        .split(',')
        .map(|item| match item.trim() {
            "named" => Ok(Fallback::Named),
            "single" => Ok(Fallback::Single),
            "empty" => Ok(Fallback::Empty),
            other => Err(SelectError::UnknownFallback(other.to_string())),
        })
        .collect()
}

/// The selectable names among a directory's entries: not directories, not
/// starting with `..` (a ConfigMap volume's `..data` and `..<timestamp>`).
/// Entries are `(file name, is a directory)`.
pub fn candidates<'a>(entries: impl IntoIterator<Item = (&'a str, bool)>) -> BTreeSet<String> {
    entries
        .into_iter()
        .filter(|(name, is_dir)| !is_dir && !name.starts_with(".."))
        .map(|(name, _)| name.to_string())
        .collect()
}

/// Lists the candidates of `dir` (an unreadable directory has none).
pub fn read_candidates(dir: &Path) -> BTreeSet<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeSet::new();
    };
    let listed: Vec<(String, bool)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            // Follows symlinks, as os.ReadDir's IsDir does not: a ConfigMap
            // key is a symlink to a file, never to a directory.
            let is_dir = e.path().is_dir();
            Some((name, is_dir))
        })
        .collect();
    candidates(listed.iter().map(|(n, d)| (n.as_str(), *d)))
}

/// The inputs of a selection besides the label value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// The label's key, for messages.
    pub label: String,
    /// `DEFAULT_CONFIG`; empty = none.
    pub default: Option<String>,
    pub fallbacks: Vec<Fallback>,
}

/// Chooses the config for a label value (`None` or empty: no label).
pub fn select(
    label: Option<&str>,
    available: &BTreeSet<String>,
    rules: &Rules,
) -> Result<Selected, SelectError> {
    if available.is_empty() {
        return Err(SelectError::NoFiles);
    }
    let list = || available.iter().cloned().collect::<Vec<_>>().join(", ");
    if let Some(name) = label.filter(|l| !l.is_empty()) {
        return if available.contains(name) {
            Ok(Selected::Named(name.to_string()))
        } else {
            Err(SelectError::UnknownLabel(
                name.to_string(),
                rules.label.clone(),
                list(),
            ))
        };
    }
    if let Some(default) = rules.default.as_deref().filter(|d| !d.is_empty()) {
        return if available.contains(default) {
            Ok(Selected::Named(default.to_string()))
        } else {
            Err(SelectError::UnknownDefault(default.to_string(), list()))
        };
    }
    for fallback in &rules.fallbacks {
        match fallback {
            Fallback::Named if available.contains("default") => {
                return Ok(Selected::Named("default".into()));
            }
            Fallback::Single if available.len() == 1 => {
                if let Some(only) = available.iter().next() {
                    return Ok(Selected::Named(only.clone()));
                }
            }
            Fallback::Empty => return Ok(Selected::Empty),
            _ => {}
        }
    }
    Err(SelectError::NoneApplies)
}

#[cfg(test)]
#[path = "select_tests.rs"]
mod tests;
