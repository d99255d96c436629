//! Walking a [`Node`] the way Go's `encoding/json` decodes NVIDIA's types:
//! plain structs match keys case-insensitively (exact match first), custom
//! decoders look keys up exactly, unknown keys are ignored, and every error is
//! collected so `check-config` can list them all.

use super::error::ConfigError;
use super::node::{Node, Value};

/// Collects the errors found while decoding one document, and the keys that
/// were ignored (NVIDIA ignores unknown keys silently; we can tell the operator).
#[derive(Debug, Default)]
pub struct Ctx {
    pub errors: Vec<ConfigError>,
    pub ignored: Vec<ConfigError>,
}

impl Ctx {
    fn ignore(&mut self, node: &Node, key: &str, path: &str) {
        let place = if path.is_empty() {
            "at the top level".to_string()
        } else {
            format!("in {path}")
        };
        let hint = match key {
            "renameByDefault"
            | "failRequestsGreaterThanOne"
            | "replicas"
            | "timeSlicing"
            | "mps"
                if !path.starts_with("sharing") =>
            {
                "; it belongs under sharing (sharing.timeSlicing or sharing.mps)"
            }
            _ => "",
        };
        let message = format!("unknown key '{key}' {place} is ignored{hint}");
        self.ignored.push(ConfigError::at(message, node.location()));
    }

    pub fn error(&mut self, node: &Node, message: impl Into<String>) {
        self.errors.push(ConfigError::at(message, node.location()));
    }

    /// Go's `cannot unmarshal <json type> into <field> of type <type>`.
    pub fn type_error(&mut self, node: &Node, path: &str, go_type: &str) {
        let target = if path.is_empty() {
            "Go value".to_string()
        } else {
            format!("Go struct field {path}")
        };
        let message = format!(
            "json: cannot unmarshal {} into {target} of type {go_type}",
            node.kind()
        );
        self.error(node, message);
    }
}

/// Visits the entries of a plain struct (case-insensitive keys). `fields` are
/// the JSON names; `visit` gets the canonical name of each known key, in
/// document order, so a later duplicate overrides an earlier one as in Go.
/// `null` leaves the struct untouched; other non-objects are type errors.
pub fn plain_struct<'a>(
    ctx: &mut Ctx,
    node: &'a Node,
    path: &str,
    go_type: &str,
    fields: &[&'static str],
    mut visit: impl FnMut(&mut Ctx, &'static str, &'a Node),
) {
    let entries = match &node.value {
        Value::Null => return,
        Value::Map(entries) => entries,
        _ => return ctx.type_error(node, path, go_type),
    };
    for (key, value) in entries {
        let field = fields
            .iter()
            .find(|f| **f == key.as_str())
            .or_else(|| fields.iter().find(|f| f.eq_ignore_ascii_case(key)));
        match field {
            Some(field) => visit(ctx, field, value),
            None => ctx.ignore(value, key, path),
        }
    }
}

/// The entries of an object read by a custom decoder (`map[string]RawMessage`),
/// where keys are exact and the last duplicate wins. `null` is an empty map.
/// Keys not in `known` are noted as ignored.
pub fn raw_map<'a>(
    ctx: &mut Ctx,
    node: &'a Node,
    path: &str,
    go_type: &str,
    known: &[&str],
) -> Option<Vec<(&'a str, &'a Node)>> {
    match &node.value {
        Value::Null => Some(Vec::new()),
        Value::Map(entries) => {
            for (key, value) in entries {
                if !known.contains(&key.as_str()) {
                    ctx.ignore(value, key, path);
                }
            }
            Some(entries.iter().map(|(k, v)| (k.as_str(), v)).collect())
        }
        _ => {
            ctx.type_error(node, path, go_type);
            None
        }
    }
}

/// Exact lookup in a raw map; the last entry with the key wins.
pub fn lookup<'a>(entries: &[(&str, &'a Node)], key: &str) -> Option<&'a Node> {
    entries
        .iter()
        .rev()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| *v)
}

/// A `*string` field of a plain struct. YAML scalars of other types are turned
/// into strings, as sigs.k8s.io/yaml does for string targets.
pub fn opt_string(ctx: &mut Ctx, node: &Node, path: &str) -> Option<Option<String>> {
    match &node.value {
        Value::Null => Some(None),
        Value::Str(s) => Some(Some(s.clone())),
        Value::Bool(b) => Some(Some(b.to_string())),
        Value::Int(i) => Some(Some(i.to_string())),
        Value::Float(f) => Some(Some(f.to_string())),
        Value::Seq(_) | Value::Map(_) => {
            ctx.type_error(node, path, "string");
            None
        }
    }
}

/// A `*bool` field: `null` clears it.
pub fn opt_bool(ctx: &mut Ctx, node: &Node, path: &str) -> Option<Option<bool>> {
    match node.value {
        Value::Null => Some(None),
        Value::Bool(b) => Some(Some(b)),
        _ => {
            ctx.type_error(node, path, "bool");
            None
        }
    }
}

/// A Go `string` read by a custom decoder: `null` is `""`, no conversions.
pub fn go_string(ctx: &mut Ctx, node: &Node, path: &str) -> Option<String> {
    match &node.value {
        Value::Null => Some(String::new()),
        Value::Str(s) => Some(s.clone()),
        _ => {
            ctx.type_error(node, path, "string");
            None
        }
    }
}

/// A Go `int`: a whole JSON number. `null` leaves `current` in place.
pub fn go_int(ctx: &mut Ctx, node: &Node, path: &str, current: i64) -> Option<i64> {
    match node.value {
        Value::Null => Some(current),
        Value::Int(i) => {
            match i64::try_from(i) {
                Ok(v) => Some(v),
                Err(_) => {
                    ctx.error(node, format!("json: cannot unmarshal number {i} into Go struct field {path} of type int"));
                    None
                }
            }
        }
        Value::Float(f) => {
            ctx.error(
                node,
                format!(
                    "json: cannot unmarshal number {f} into Go struct field {path} of type int"
                ),
            );
            None
        }
        _ => {
            ctx.type_error(node, path, "int");
            None
        }
    }
}
