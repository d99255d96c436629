//! NVIDIA's v1 config file (`api/config/v1`): YAML or JSON, decoded with the
//! same rules and error texts as NVIDIA's plugin (reference §1), then
//! validated. Unlike NVIDIA we honour `resources`, sharing `rename` and
//! sharing `devices` (Appendix B).

mod convert;
mod decode;
mod devices;
mod duration;
mod error;
mod flags;
mod imex;
mod node;
mod resources;
mod sharing;
mod validate;

pub use convert::{device_ref, sharing_options};
pub use devices::{ReplicatedDevices, is_device_ref, is_gpu_index, is_mig_index, is_uuid};
pub use duration::Duration;
pub use error::ConfigError;
pub use flags::{Flags, GfdFlags, PluginFlags};
pub use imex::Imex;
pub use resources::{MAX_RESOURCE_NAME_LEN, Resources, is_dns1123_subdomain, resource_name};
pub use sharing::{
    ReplicatedResource, ReplicatedResources, SHARED_SUFFIX, Sharing, SharingStrategy,
};
pub use validate::validate_flags;

use serde_json::{Value as Json, json};

use decode::{Ctx, opt_string, plain_struct};
use node::Node;

/// The only supported config version.
pub const VERSION: &str = "v1";

/// A decoded config file.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Always `v1` once parsed.
    pub version: String,
    pub flags: Flags,
    pub resources: Resources,
    pub sharing: Sharing,
    pub imex: Imex,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            version: VERSION.to_string(),
            flags: Flags::default(),
            resources: Resources::default(),
            sharing: Sharing::default(),
            imex: Imex::default(),
        }
    }
}

/// Parses a config file; the first error, as NVIDIA would report it.
pub fn parse(text: &str) -> Result<Config, ConfigError> {
    parse_all(text).map_err(|errors| {
        errors
            .into_iter()
            .next()
            .unwrap_or_else(|| ConfigError::new("invalid config"))
    })
}

/// Parses a config file and reports every decoding error found (a syntax
/// error stops the parse, so it comes alone). An empty or `null` file is the
/// default config. Does not run [`Config::validate`].
pub fn parse_all(text: &str) -> Result<Config, Vec<ConfigError>> {
    decode_document(text).0
}

/// What `check-config` reports about a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// The config, when it decodes (it may still have `errors` from validation).
    pub config: Option<Config>,
    /// Decoding errors, then [`Config::validate`] errors.
    pub errors: Vec<ConfigError>,
    /// Keys NVIDIA's decoder ignores silently (typos, misplaced keys).
    pub ignored_keys: Vec<ConfigError>,
}

/// Decodes and validates a file, listing every error and every ignored key.
/// Flag values are left to [`validate_flags`] once env and CLI are merged.
pub fn check(text: &str) -> Check {
    let (decoded, ignored_keys) = decode_document(text);
    match decoded {
        Ok(config) => Check {
            errors: config.validate(),
            config: Some(config),
            ignored_keys,
        },
        Err(errors) => Check {
            config: None,
            errors,
            ignored_keys,
        },
    }
}

fn decode_document(text: &str) -> (Result<Config, Vec<ConfigError>>, Vec<ConfigError>) {
    let node = match Node::parse(text) {
        Ok(node) => node,
        Err(e) => return (Err(vec![ConfigError::syntax(&e)]), Vec::new()),
    };
    let mut ctx = Ctx::default();
    let mut config = Config::default();
    let mut version: Option<&Node> = None;
    let mut raw_version = String::new();
    let keys = ["version", "flags", "resources", "sharing", "imex"];
    plain_struct(
        &mut ctx,
        &node,
        "",
        "v1.Config",
        &keys,
        |ctx, key, v| match key {
            "version" => {
                if let Some(s) = opt_string(ctx, v, "version") {
                    raw_version = s.unwrap_or_default();
                    version = Some(v);
                }
            }
            "flags" => config.flags.decode(ctx, v),
            "resources" => config.resources.decode(ctx, v),
            "sharing" => config.sharing.decode(ctx, v),
            _ => config.imex.decode(ctx, v),
        },
    );
    if !raw_version.is_empty() && raw_version != VERSION {
        let location = version.and_then(Node::location);
        let message = format!("unknown version: {raw_version}");
        ctx.errors.push(ConfigError::at(message, location));
    }
    if !ctx.errors.is_empty() {
        return (Err(ctx.errors), ctx.ignored);
    }
    // NVIDIA's NewConfig: MPS refuses requests for more than one replica
    // unless the file says otherwise.
    if let Some(mps) = &mut config.sharing.mps {
        mps.fail_requests_greater_than_one.get_or_insert(true);
    }
    (Ok(config), ctx.ignored)
}

impl Config {
    /// NVIDIA's `SharingStrategy()`.
    pub fn sharing_strategy(&self) -> SharingStrategy {
        self.sharing.strategy()
    }

    /// The active sharing section: MPS when set, else time-slicing.
    pub fn replicated_resources(&self) -> Option<&ReplicatedResources> {
        self.sharing.replicated_resources()
    }

    /// Checks beyond decoding, every error listed: IMEX channel IDs and
    /// sharing entries of one resource that select the same device.
    /// Flag values are checked by [`validate_flags`] after the env/CLI merge.
    pub fn validate(&self) -> Vec<ConfigError> {
        let mut errors = validate::sharing_overlaps(&self.sharing);
        if let Err(e) = self.imex.validate() {
            errors.push(e);
        }
        errors
    }

    /// JSON as NVIDIA marshals its config (for logging the running config).
    pub fn to_json(&self) -> Json {
        json!({
            "version": self.version,
            "flags": self.flags.to_json(),
            "resources": self.resources.to_json(),
            "sharing": self.sharing.to_json(),
            "imex": self.imex.to_json(),
        })
    }
}

#[cfg(test)]
mod test_support;

#[cfg(test)]
#[path = "mod_tests.rs"]
mod tests;
