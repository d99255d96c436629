//! The `resources` section (NVIDIA `resources.go`): GPU and MIG name patterns,
//! and resource-name rules shared with `sharing` (prefix, length, RFC 1123).
//! NVIDIA parses then ignores this section; we honour it.

use serde_json::{Value as Json, json};

use super::decode::{Ctx, go_string, lookup, plain_struct, raw_map};
use super::node::{Node, Value};
use crate::resources::{NamedPattern, RESOURCE_PREFIX};

/// NVIDIA's `MaxResourceNameLength`.
pub const MAX_RESOURCE_NAME_LEN: usize = 63;

/// `resources.gpus` and `resources.mig`, names fully qualified.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    pub gpus: Vec<NamedPattern>,
    pub mig: Vec<NamedPattern>,
}

const DNS1123_SUBDOMAIN_MESSAGE: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

/// NVIDIA's `NewResourceName`: adds `nvidia.com/` when missing, then checks
/// the length (63) and that the part after the first `/` is an RFC 1123 subdomain.
pub fn resource_name(name: &str) -> Result<String, String> {
    let full = if name.starts_with(RESOURCE_PREFIX) {
        name.to_string()
    } else {
        format!("{RESOURCE_PREFIX}{name}")
    };
    if full.len() > MAX_RESOURCE_NAME_LEN {
        return Err(format!(
            "fully-qualified resource name must be {MAX_RESOURCE_NAME_LEN} characters or less: {full}"
        ));
    }
    let short = full.split_once('/').map_or("", |(_, s)| s);
    if !is_dns1123_subdomain(short) {
        return Err(format!(
            "incorrect format for resource name '{full}': [{DNS1123_SUBDOMAIN_MESSAGE}]"
        ));
    }
    Ok(full)
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*`, at most 253 chars.
pub fn is_dns1123_subdomain(s: &str) -> bool {
    let label_ok = |label: &str| {
        let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        let bytes = label.as_bytes();
        match (bytes.first(), bytes.last()) {
            (Some(&first), Some(&last)) => {
                alnum(first) && alnum(last) && bytes.iter().all(|&c| alnum(c) || c == b'-')
            }
            _ => false,
        }
    };
    s.len() <= 253 && s.split('.').all(label_ok)
}

/// A `ResourceName` value read by a custom decoder: a Go string, then validated.
pub(crate) fn decode_name(ctx: &mut Ctx, node: &Node, path: &str) -> Option<String> {
    let raw = go_string(ctx, node, path)?;
    resource_name(&raw).map_err(|e| ctx.error(node, e)).ok()
}

impl Resources {
    pub(crate) fn decode(&mut self, ctx: &mut Ctx, node: &Node) {
        let keys = ["gpus", "mig"];
        plain_struct(
            ctx,
            node,
            "resources",
            "v1.Resources",
            &keys,
            |ctx, key, v| {
                let list = decode_list(ctx, v, &format!("resources.{key}"));
                match key {
                    "gpus" => self.gpus = list,
                    _ => self.mig = list,
                }
            },
        );
    }

    pub fn to_json(&self) -> Json {
        let list = |l: &[NamedPattern]| -> Json {
            l.iter()
                .map(|p| json!({"pattern": p.pattern, "name": p.name}))
                .collect()
        };
        let mut out =
            json!({ "gpus": if self.gpus.is_empty() { Json::Null } else { list(&self.gpus) } });
        if !self.mig.is_empty()
            && let Json::Object(map) = &mut out
        {
            map.insert("mig".to_string(), list(&self.mig));
        }
        out
    }
}

fn decode_list(ctx: &mut Ctx, node: &Node, path: &str) -> Vec<NamedPattern> {
    match &node.value {
        Value::Null => Vec::new(),
        Value::Seq(items) => items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| decode_resource(ctx, item, &format!("{path}[{i}]")))
            .collect(),
        _ => {
            ctx.type_error(node, path, "[]v1.Resource");
            Vec::new()
        }
    }
}

/// NVIDIA's `Resource.UnmarshalJSON`: exact keys `pattern` and `name`, both required.
fn decode_resource(ctx: &mut Ctx, node: &Node, path: &str) -> Option<NamedPattern> {
    let entries = raw_map(ctx, node, path, "v1.Resource", &["pattern", "name"])?;
    let Some(pattern) = lookup(&entries, "pattern") else {
        ctx.error(node, "resources must have a 'pattern' field set");
        return None;
    };
    let Some(name) = lookup(&entries, "name") else {
        ctx.error(node, "resources must have a 'name' field set");
        return None;
    };
    let name = decode_name(ctx, name, &format!("{path}.name"));
    let pattern = go_string(ctx, pattern, &format!("{path}.pattern"));
    Some(NamedPattern::new(pattern?, name?))
}

#[cfg(test)]
#[path = "resources_tests.rs"]
mod tests;
