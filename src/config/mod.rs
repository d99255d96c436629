//! Configuration: NVIDIA's v1 config file, env vars and flags, merged (flag >
//! env > file > default) into one validated `Settings`.

pub mod v1;
