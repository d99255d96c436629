//! The `imex` section (NVIDIA `imex.go`): IMEX channels to hand to containers.

use serde_json::{Value as Json, json};

use super::decode::{Ctx, plain_struct};
use super::error::ConfigError;
use super::node::{Node, Value};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Imex {
    /// `None` when absent or null; otherwise must be `[]` or `[0]`.
    pub channel_ids: Option<Vec<i64>>,
    /// Fail start-up when a requested channel does not exist.
    pub required: bool,
}

impl Imex {
    pub(crate) fn decode(&mut self, ctx: &mut Ctx, node: &Node) {
        let keys = ["channelIDs", "required"];
        plain_struct(ctx, node, "imex", "v1.Imex", &keys, |ctx, key, v| {
            match (key, &v.value) {
                ("channelIDs", Value::Null) => self.channel_ids = None,
                ("channelIDs", Value::Seq(items)) => {
                    let ids: Option<Vec<i64>> =
                        items.iter().map(|item| channel_id(ctx, item)).collect();
                    if let Some(ids) = ids {
                        self.channel_ids = Some(ids);
                    }
                }
                ("channelIDs", _) => ctx.type_error(v, "imex.channelIDs", "[]int"),
                (_, Value::Null) => {}
                (_, Value::Bool(b)) => self.required = *b,
                _ => ctx.type_error(v, "imex.required", "bool"),
            }
        });
    }

    /// NVIDIA's `AssertChannelIDsValid`: only `[]` or `[0]` is supported.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self.channel_ids.as_deref() {
            None | Some([]) | Some([0]) => Ok(()),
            Some(ids) => {
                let found: Vec<String> = ids.iter().map(i64::to_string).collect();
                Err(ConfigError::new(format!(
                    "invalid IMEX channel IDs: invalid IMEX config: channelIDs must be [] or [0]; found [{}]",
                    found.join(" ")
                )))
            }
        }
    }

    pub fn to_json(&self) -> Json {
        json!({ "channelIDs": self.channel_ids, "required": self.required })
    }
}

fn channel_id(ctx: &mut Ctx, item: &Node) -> Option<i64> {
    match item.value {
        // Go decodes a null list item into an int as 0.
        Value::Null => Some(0),
        Value::Int(i) => i64::try_from(i).ok().or_else(|| {
            ctx.error(item, format!("json: cannot unmarshal number {i} into Go struct field imex.channelIDs of type int"));
            None
        }),
        _ => {
            ctx.type_error(item, "imex.channelIDs", "int");
            None
        }
    }
}

#[cfg(test)]
#[path = "imex_tests.rs"]
mod tests;
