//! Fuzzes the ld.so.cache parser: any bytes must give entries or a typed
//! error, never a panic, and every string returned lies inside the input.
#![no_main]

use gpu_device_plugin::cdi::ldcache;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(entries) = ldcache::parse(data) {
        for e in entries {
            assert!(e.key.len() < data.len() && e.path.len() < data.len());
        }
    }
});
