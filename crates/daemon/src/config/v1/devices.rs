//! `devices:` of a sharing entry (NVIDIA `replicas.go`): `all`, a count, or a
//! list of device references (GPU index, MIG index, GPU UUID, MIG UUID).

use serde_json::{Value as Json, json};

use super::decode::Ctx;
use super::node::{Node, Value};

/// Which devices of a resource a sharing entry replicates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicatedDevices {
    All,
    /// The first N devices of the resource, in NVML order.
    Count(u64),
    /// Device references, each a valid [`is_device_ref`] string (numbers are
    /// kept as their decimal text).
    List(Vec<String>),
}

impl ReplicatedDevices {
    /// NVIDIA's `ReplicatedDevices.UnmarshalJSON`, with its error texts.
    pub(crate) fn decode(ctx: &mut Ctx, node: &Node) -> Option<ReplicatedDevices> {
        match &node.value {
            Value::Str(s) if s == "all" => Some(ReplicatedDevices::All),
            Value::Str(s) => fail(
                ctx,
                node,
                format!("devices set as '{s}' but the only valid string input is 'all'"),
            ),
            // Go decodes `null` into the empty string first.
            Value::Null => fail(
                ctx,
                node,
                "devices set as '' but the only valid string input is 'all'",
            ),
            Value::Int(n) if i64::try_from(*n).is_ok() => match u64::try_from(*n) {
                Ok(count) if count > 0 => Some(ReplicatedDevices::Count(count)),
                _ => fail(
                    ctx,
                    node,
                    format!("devices set as '{n}' but a count of devices must be > 0"),
                ),
            },
            Value::Seq(items) => {
                let mut list = Vec::with_capacity(items.len());
                for item in items {
                    list.push(list_item(ctx, item)?);
                }
                Some(ReplicatedDevices::List(list))
            }
            _ => fail(
                ctx,
                node,
                format!("unrecognized type for devices spec: {}", node.to_json()),
            ),
        }
    }

    /// `"all"`, the count, or the list of references.
    pub fn to_json(&self) -> Json {
        match self {
            ReplicatedDevices::All => json!("all"),
            ReplicatedDevices::Count(n) => json!(n),
            ReplicatedDevices::List(refs) => json!(refs),
        }
    }
}

fn fail<T>(ctx: &mut Ctx, node: &Node, message: impl Into<String>) -> Option<T> {
    ctx.error(node, message);
    None
}

/// A list item: a uint (a GPU index), or a string that is a device reference.
fn list_item(ctx: &mut Ctx, item: &Node) -> Option<String> {
    match &item.value {
        Value::Int(n) if *n >= 0 && u64::try_from(*n).is_ok() => Some(n.to_string()),
        // Go decodes `null` into a uint as 0.
        Value::Null => Some("0".to_string()),
        Value::Str(s) if is_device_ref(s) => Some(s.clone()),
        Value::Str(s) => fail(
            ctx,
            item,
            format!("unsupported type for device in devices list: {s}, string"),
        ),
        _ => fail(
            ctx,
            item,
            "unsupported type for device in devices list: , string",
        ),
    }
}

/// A GPU index, a MIG index or a UUID (exactly one of them holds).
pub fn is_device_ref(s: &str) -> bool {
    is_gpu_index(s) || is_mig_index(s) || is_uuid(s)
}

/// A decimal unsigned integer (Go `strconv.ParseUint(s, 10, 64)`).
pub fn is_gpu_index(s: &str) -> bool {
    parse_uint(s).is_some()
}

/// `<uint>:<uint>`.
pub fn is_mig_index(s: &str) -> bool {
    parse_mig_index(s).is_some()
}

/// A GPU UUID or a MIG UUID.
pub fn is_uuid(s: &str) -> bool {
    is_gpu_uuid(s) || is_mig_uuid(s)
}

pub(crate) fn parse_uint(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

pub(crate) fn parse_mig_index(s: &str) -> Option<(u64, u64)> {
    let (gpu, slot) = s.split_once(':')?;
    Some((parse_uint(gpu)?, parse_uint(slot)?))
}

/// `GPU-<uuid>`.
pub fn is_gpu_uuid(s: &str) -> bool {
    s.strip_prefix("GPU-").is_some_and(is_rfc4122)
}

/// `MIG-<uuid>`, or the legacy `MIG-GPU-<uuid>/<gi>/<ci>`.
pub fn is_mig_uuid(s: &str) -> bool {
    parse_legacy_mig_uuid(s).is_some() || s.strip_prefix("MIG-").is_some_and(is_rfc4122)
}

/// `MIG-GPU-<uuid>/<gi>/<ci>` → (`GPU-<uuid>`, gi, ci).
pub(crate) fn parse_legacy_mig_uuid(s: &str) -> Option<(&str, u64, u64)> {
    let rest = s.strip_prefix("MIG-")?;
    let mut parts = rest.split('/');
    let (gpu, gi, ci) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !is_gpu_uuid(gpu) {
        return None;
    }
    Some((gpu, parse_uint(gi)?, parse_uint(ci)?))
}

/// What google/uuid's `Parse` accepts: `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`,
/// the same in braces or after `urn:uuid:`, or 32 hex digits.
fn is_rfc4122(s: &str) -> bool {
    let hex = |b: &[u8]| b.iter().all(u8::is_ascii_hexdigit);
    let dashed = |b: &[u8]| {
        b.len() == 36
            && b.iter().enumerate().all(|(i, c)| match i {
                8 | 13 | 18 | 23 => *c == b'-',
                _ => c.is_ascii_hexdigit(),
            })
    };
    let b = s.as_bytes();
    match b.len() {
        32 => hex(b),
        36 => dashed(b),
        38 => b.first() == Some(&b'{') && b.last() == Some(&b'}') && dashed(&b[1..37]),
        45 => {
            s.get(..9)
                .is_some_and(|p| p.eq_ignore_ascii_case("urn:uuid:"))
                && dashed(&b[9..])
        }
        _ => false,
    }
}

#[cfg(test)]
#[path = "devices_tests.rs"]
mod tests;
