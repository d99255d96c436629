//! Configuration: NVIDIA's v1 config file, env vars and flags, merged (flag >
//! env > file > default) into one validated `Settings`.

mod settings;
pub mod v1;

pub use settings::{DeviceListStrategy, Overrides, Settings, SettingsError, merged_flags};
