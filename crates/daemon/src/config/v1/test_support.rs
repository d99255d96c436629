//! Test helpers: decode a JSON fragment the way NVIDIA's tests call
//! `json.Unmarshal` on one type (empty input is an error there).

use super::decode::Ctx;
use super::error::ConfigError;
use super::node::Node;

/// Decodes `text` with `f`, returning the value or every error collected.
pub fn fragment<T>(
    text: &str,
    f: impl FnOnce(&mut Ctx, &Node) -> Option<T>,
) -> Result<T, Vec<ConfigError>> {
    if text.trim().is_empty() {
        return Err(vec![ConfigError::new("unexpected end of JSON input")]);
    }
    let node = Node::parse(text).map_err(|e| vec![ConfigError::syntax(&e)])?;
    let mut ctx = Ctx::default();
    let value = f(&mut ctx, &node);
    match value {
        Some(v) if ctx.errors.is_empty() => Ok(v),
        _ => Err(ctx.errors),
    }
}
