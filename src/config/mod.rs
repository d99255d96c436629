//! Configuration: NVIDIA's v1 config file, env vars and flags, merged (flag >
//! env > file > default) into one validated `Settings`.

mod settings;
pub mod v1;

mod read;
pub use read::{ReadError, read_bounded};
pub use settings::{
    DeviceListStrategy, Overrides, Settings, SettingsError, effective_flags, merged_flags,
};
