use super::*;

const LIBS: [(&str, &str, i32); 3] = [
    ("libcuda.so.1", "/opt/nvidia/lib/libcuda.so.1", FLAGS_X86_64),
    (
        "libnvidia-ml.so.1",
        "/opt/nvidia/lib/libnvidia-ml.so.1",
        FLAGS_X86_64,
    ),
    // A 32-bit entry (libc6, no lib64 bits).
    ("libcuda.so.1", "/opt/nvidia/lib32/libcuda.so.1", 0x0003),
];

fn keys(entries: &[Entry]) -> Vec<(&str, &str, bool)> {
    entries
        .iter()
        .map(|e| (e.key.as_str(), e.path.as_str(), e.is_64bit()))
        .collect()
}

#[test]
fn both_formats_give_the_same_entries() {
    let want = vec![
        ("libcuda.so.1", "/opt/nvidia/lib/libcuda.so.1", true),
        (
            "libnvidia-ml.so.1",
            "/opt/nvidia/lib/libnvidia-ml.so.1",
            true,
        ),
        ("libcuda.so.1", "/opt/nvidia/lib32/libcuda.so.1", false),
    ];
    for (name, bytes) in [("new", build_new(&LIBS)), ("old", build_old(&LIBS))] {
        let entries = parse(&bytes).unwrap();
        assert_eq!(keys(&entries), want, "{name} format");
    }
}

#[test]
fn an_old_cache_followed_by_a_new_one_is_read_from_the_new_part() {
    let mut bytes = build_old(&LIBS[..1]);
    // glibc ≤ 2.31: the old part has no strings of its own here; pad to 8.
    bytes.truncate(16 + 12);
    bytes.resize(bytes.len().next_multiple_of(8), 0);
    bytes.extend(build_new(&LIBS[1..2]));
    let entries = parse(&bytes).unwrap();
    assert_eq!(
        keys(&entries),
        vec![(
            "libnvidia-ml.so.1",
            "/opt/nvidia/lib/libnvidia-ml.so.1",
            true
        )]
    );
}

#[test]
fn corrupt_caches_give_typed_errors() {
    let good = build_new(&LIBS);
    let mut huge_count = good.clone();
    huge_count[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
    let mut bad_offset = good.clone();
    bad_offset[48 + 4..48 + 8].copy_from_slice(&(good.len() as u32 + 7).to_le_bytes());
    let mut no_nul = good.clone();
    no_nul.pop();
    let mut bad_utf8 = good.clone();
    let at = 48 + 3 * 24;
    bad_utf8[at] = 0xff;
    let cases: Vec<(&str, Vec<u8>, LdCacheError)> = vec![
        ("empty", vec![], LdCacheError::BadMagic),
        (
            "other magic",
            b"\x7fELF........".to_vec(),
            LdCacheError::BadMagic,
        ),
        (
            "header cut",
            good[..30].to_vec(),
            LdCacheError::Truncated {
                what: "header",
                needed: 48,
                have: 30,
            },
        ),
        (
            "count beyond the file",
            huge_count,
            LdCacheError::Truncated {
                what: "entry table",
                needed: 48 + u32::MAX as usize * 24,
                have: good.len(),
            },
        ),
        (
            "offset beyond the file",
            bad_offset,
            LdCacheError::BadOffset {
                index: 0,
                which: "key",
                offset: good.len() as u32 + 7,
            },
        ),
        (
            "last string unterminated",
            no_nul,
            LdCacheError::BadString {
                index: 2,
                which: "value",
            },
        ),
        (
            "key not UTF-8",
            bad_utf8,
            LdCacheError::BadString {
                index: 0,
                which: "key",
            },
        ),
        (
            "too large",
            vec![0; MAX_CACHE_BYTES + 1],
            LdCacheError::TooLarge(MAX_CACHE_BYTES + 1),
        ),
    ];
    for (name, bytes, want) in cases {
        assert_eq!(parse(&bytes), Err(want), "{name}");
    }
}

/// xorshift64*: a seeded generator, so every run mutates the same way.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Mutated and truncated caches of both formats, and random bytes behind
/// each magic: the parser never panics, and what it returns stays inside
/// the input (every string it gives back is a NUL-free slice of the bytes).
#[test]
fn mutated_caches_never_panic_and_never_read_outside_the_input() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let seeds = [build_new(&LIBS), build_old(&LIBS)];
    let (mut ok, mut err) = (0, 0);
    for round in 0..20_000 {
        let mut bytes = seeds[round % 2].clone();
        match rng.below(4) {
            0 => {
                for _ in 0..=rng.below(8) {
                    let at = rng.below(bytes.len());
                    bytes[at] = rng.next() as u8;
                }
            }
            1 => bytes.truncate(rng.below(bytes.len())),
            2 => {
                let at = rng.below(bytes.len().saturating_sub(4));
                let word = [u32::MAX, 0, rng.next() as u32, bytes.len() as u32][rng.below(4)];
                bytes[at..at + 4].copy_from_slice(&word.to_le_bytes());
            }
            _ => {
                let keep = [NEW_MAGIC.len(), OLD_MAGIC.len()][round % 2];
                bytes.truncate(keep);
                bytes.extend((0..rng.below(600)).map(|_| rng.next() as u8));
            }
        }
        match parse(&bytes) {
            Ok(entries) => {
                ok += 1;
                for e in entries {
                    for s in [&e.key, &e.path] {
                        assert!(!s.contains('\0'));
                        assert!(
                            s.len() < bytes.len(),
                            "round {round}: string longer than input"
                        );
                    }
                }
            }
            Err(_) => err += 1,
        }
    }
    // Both outcomes were exercised, so the mutations reach past the header checks.
    assert!(ok > 1000 && err > 1000, "ok {ok}, err {err}");
}

#[test]
fn the_hosts_own_cache_written_by_ldconfig_parses() {
    let Ok(bytes) = std::fs::read("/etc/ld.so.cache") else {
        println!("not run: this system has no /etc/ld.so.cache");
        return;
    };
    let entries = parse(&bytes).unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e.key == "libc.so.6" && e.path.ends_with("/libc.so.6"))
    );
}
