//! The `sharing` section (NVIDIA `sharing.go`, `replicas.go`): time-slicing and
//! MPS replicas, decoded with NVIDIA's rules and error texts.

use serde_json::{Value as Json, json};

use super::decode::{Ctx, go_int, lookup, opt_bool, plain_struct, raw_map};
use super::devices::ReplicatedDevices;
use super::node::{Node, Value};
use super::resources::decode_name;

/// Suffix NVIDIA appends for `renameByDefault` (`DefaultSharedResourceNameSuffix`).
pub const SHARED_SUFFIX: &str = ".shared";

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sharing {
    /// Present when the file has a `timeSlicing` key (which must then be valid).
    pub time_slicing: Option<ReplicatedResources>,
    /// Present when the file has a non-null `mps` key.
    pub mps: Option<ReplicatedResources>,
}

/// How devices are shared, as NVIDIA's `SharingStrategy()` defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SharingStrategy {
    #[default]
    None,
    TimeSlicing,
    Mps,
}

impl SharingStrategy {
    pub fn as_str(self) -> &'static str {
        match self {
            SharingStrategy::None => "none",
            SharingStrategy::TimeSlicing => "time-slicing",
            SharingStrategy::Mps => "mps",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReplicatedResources {
    pub rename_by_default: bool,
    /// `None` when not given: false for time-slicing; `parse` sets MPS's to true.
    pub fail_requests_greater_than_one: Option<bool>,
    pub resources: Vec<ReplicatedResource>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReplicatedResource {
    /// Fully qualified, e.g. `nvidia.com/gpu`.
    pub name: String,
    /// Fully qualified; `<name>.shared` when `renameByDefault` and none given.
    pub rename: Option<String>,
    pub devices: ReplicatedDevices,
    /// At least 2.
    pub replicas: u32,
}

impl Sharing {
    /// NVIDIA's `SharingStrategy()`: MPS wins when it has a resource with
    /// replicas > 1, then time-slicing, else none.
    pub fn strategy(&self) -> SharingStrategy {
        let has_replicas = |r: &Option<ReplicatedResources>| {
            r.as_ref()
                .is_some_and(|r| r.resources.iter().any(|x| x.replicas > 1))
        };
        if has_replicas(&self.mps) {
            SharingStrategy::Mps
        } else if has_replicas(&self.time_slicing) {
            SharingStrategy::TimeSlicing
        } else {
            SharingStrategy::None
        }
    }

    /// NVIDIA's `ReplicatedResources()`: MPS when set, else time-slicing.
    pub fn replicated_resources(&self) -> Option<&ReplicatedResources> {
        self.mps.as_ref().or(self.time_slicing.as_ref())
    }

    pub(crate) fn decode(&mut self, ctx: &mut Ctx, node: &Node) {
        let keys = ["timeSlicing", "mps"];
        plain_struct(
            ctx,
            node,
            "sharing",
            "v1.Sharing",
            &keys,
            |ctx, key, v| match key {
                "timeSlicing" => {
                    self.time_slicing = ReplicatedResources::decode(ctx, v, "sharing.timeSlicing")
                }
                _ if v.is_null() => self.mps = None,
                _ => self.mps = ReplicatedResources::decode(ctx, v, "sharing.mps"),
            },
        );
    }

    pub fn to_json(&self) -> Json {
        let time_slicing = self
            .time_slicing
            .as_ref()
            .map_or_else(|| json!({}), ReplicatedResources::to_json);
        let mut out = json!({ "timeSlicing": time_slicing });
        if let (Some(mps), Json::Object(map)) = (&self.mps, &mut out) {
            map.insert("mps".to_string(), mps.to_json());
        }
        out
    }
}

impl ReplicatedResources {
    /// NVIDIA's `ReplicatedResources.UnmarshalJSON` (exact keys).
    fn decode(ctx: &mut Ctx, node: &Node, path: &str) -> Option<ReplicatedResources> {
        let entries = raw_map(
            ctx,
            node,
            path,
            "v1.ReplicatedResources",
            &["renameByDefault", "failRequestsGreaterThanOne", "resources"],
        )?;
        let mut out = ReplicatedResources::default();
        let mut ok = true;
        if let Some(v) = lookup(&entries, "renameByDefault") {
            match v.value {
                Value::Null => {}
                Value::Bool(b) => out.rename_by_default = b,
                _ => {
                    ctx.type_error(v, &format!("{path}.renameByDefault"), "bool");
                    ok = false;
                }
            }
        }
        if let Some(v) = lookup(&entries, "failRequestsGreaterThanOne") {
            match opt_bool(ctx, v, &format!("{path}.failRequestsGreaterThanOne")) {
                Some(b) => out.fail_requests_greater_than_one = b,
                None => ok = false,
            }
        }
        let Some(resources) = lookup(&entries, "resources") else {
            ctx.error(node, "no resources specified");
            return None;
        };
        match &resources.value {
            Value::Null => {}
            Value::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    let item_path = format!("{path}.resources[{i}]");
                    match ReplicatedResource::decode(ctx, item, &item_path) {
                        Some(r) => out.resources.push(r),
                        None => ok = false,
                    }
                }
            }
            _ => {
                ctx.type_error(
                    resources,
                    &format!("{path}.resources"),
                    "[]v1.ReplicatedResource",
                );
                return None;
            }
        }
        if ok && out.resources.is_empty() {
            ctx.error(resources, "no resources specified");
            return None;
        }
        if out.rename_by_default {
            for r in &mut out.resources {
                r.rename
                    .get_or_insert_with(|| format!("{}{SHARED_SUFFIX}", r.name));
            }
        }
        ok.then_some(out)
    }

    pub fn to_json(&self) -> Json {
        let mut out = json!({
            "renameByDefault": self.rename_by_default,
            "resources": self.resources.iter().map(ReplicatedResource::to_json).collect::<Vec<_>>(),
        });
        if let (Some(fail), Json::Object(map)) = (self.fail_requests_greater_than_one, &mut out) {
            map.insert("failRequestsGreaterThanOne".to_string(), json!(fail));
        }
        out
    }
}

impl ReplicatedResource {
    /// NVIDIA's `ReplicatedResource.UnmarshalJSON` (exact keys, its order of checks).
    fn decode(ctx: &mut Ctx, node: &Node, path: &str) -> Option<ReplicatedResource> {
        let entries = raw_map(
            ctx,
            node,
            path,
            "v1.ReplicatedResource",
            &["name", "rename", "devices", "replicas"],
        )?;
        let Some(name) = lookup(&entries, "name") else {
            ctx.error(node, "no resource name specified");
            return None;
        };
        let name = decode_name(ctx, name, &format!("{path}.name"));
        let rename = match lookup(&entries, "rename") {
            Some(v) => decode_name(ctx, v, &format!("{path}.rename")).map(Some),
            None => Some(None),
        };
        let devices = match lookup(&entries, "devices") {
            Some(v) => ReplicatedDevices::decode(ctx, v),
            None => Some(ReplicatedDevices::All),
        };
        let Some(replicas_node) = lookup(&entries, "replicas") else {
            ctx.error(node, "no replicas specified");
            return None;
        };
        let replicas = go_int(ctx, replicas_node, &format!("{path}.replicas"), 0).and_then(|n| {
            if n < 2 {
                ctx.error(replicas_node, "number of replicas must be >= 2");
                return None;
            }
            let n = u32::try_from(n);
            n.map_err(|_| {
                ctx.error(
                    replicas_node,
                    "number of replicas must be at most 4294967295",
                )
            })
            .ok()
        });
        Some(ReplicatedResource {
            name: name?,
            rename: rename?,
            devices: devices?,
            replicas: replicas?,
        })
    }

    pub fn to_json(&self) -> Json {
        let mut out = json!({
            "name": self.name,
            "devices": self.devices.to_json(),
            "replicas": self.replicas,
        });
        if let (Some(rename), Json::Object(map)) = (&self.rename, &mut out) {
            map.insert("rename".to_string(), json!(rename));
        }
        out
    }
}

#[cfg(test)]
#[path = "sharing_tests.rs"]
mod tests;
