//! Device ID → position lookup for the hot path: a HashMap with a small
//! multiply-rotate hasher (the FxHash scheme) over an ID's length, first 8 and
//! last 8 bytes. The keys are our own device IDs and the kubelet's echo of
//! them: a GPU or MIG UUID, optionally with a `::<n>` replica suffix, so the
//! head and tail tell them apart; a collision costs only a string compare.
//! SipHash's flood resistance buys nothing here, and hashing 800 replica IDs
//! with it costs more than the policy itself.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Device ID → position in the resource's device list.
pub(super) type IdMap = HashMap<String, usize, BuildHasherDefault<IdHasher>>;

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

#[derive(Debug, Clone, Copy, Default)]
pub(super) struct IdHasher {
    hash: u64,
}

impl IdHasher {
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.add(bytes.len() as u64);
        if bytes.len() <= 16 {
            for chunk in bytes.chunks(8) {
                self.add(word(chunk));
            }
        } else {
            self.add(word(bytes.get(..8).unwrap_or(bytes)));
            self.add(word(bytes.get(bytes.len() - 8..).unwrap_or(bytes)));
        }
    }

    fn write_u8(&mut self, byte: u8) {
        self.add(u64::from(byte));
    }

    fn finish(&self) -> u64 {
        self.hash
    }
}

/// Up to 8 bytes as a little-endian word.
fn word(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    for (w, b) in word.iter_mut().zip(bytes) {
        *w = *b;
    }
    u64::from_le_bytes(word)
}
