//! Configuration: NVIDIA's v1 config file, env vars and flags, merged (flag >
//! env > file > default) into one validated `Settings`.

mod read;
mod settings;
pub mod v1;

pub use read::{ReadError, read_bounded};
pub use settings::{
    CdiSettings, DeviceListStrategy, Overrides, Settings, SettingsError, effective_flags,
    merged_flags,
};

/// The largest config file the plugin reads (1 MiB); NVIDIA's config files
/// are a few hundred bytes, so anything near this is a wrong file.
pub const MAX_CONFIG_FILE_BYTES: u64 = 1 << 20;
