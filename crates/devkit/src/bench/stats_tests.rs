//! Tests of `bench::stats` (tables of cases).
use std::time::Duration;

use super::*;

fn ms(v: &[u64]) -> Vec<Duration> {
    v.iter().map(|x| Duration::from_millis(*x)).collect()
}

#[test]
fn percentiles_table() {
    // samples (ms), p50, p99, max
    let cases: &[(&[u64], u64, u64, u64)] = &[
        (&[], 0, 0, 0),
        (&[7], 7, 7, 7),
        (&[3, 1, 2], 2, 3, 3),
        (&[1, 2, 3, 4], 2, 4, 4),
        (&[5; 10], 5, 5, 5),
    ];
    for (samples, p50, p99, max) in cases {
        let s = summarize(&mut ms(samples));
        assert_eq!(
            (s.n, s.p50, s.p99, s.max),
            (
                samples.len(),
                Duration::from_millis(*p50),
                Duration::from_millis(*p99),
                Duration::from_millis(*max)
            ),
            "{samples:?}"
        );
    }
    let hundred: Vec<u64> = (1..=100).collect();
    let s = summarize(&mut ms(&hundred));
    assert_eq!(
        (s.p50, s.p99),
        (Duration::from_millis(50), Duration::from_millis(99))
    );
}

#[test]
fn proc_stat_ticks_table() {
    let cases: &[(&str, Option<u64>)] = &[
        (
            "42 (gpu-device-plugin) S 1 42 42 0 -1 4194560 900 0 0 0 17 5 0 0 20 0 3 0",
            Some(22),
        ),
        (
            "42 (a) b) c) R 1 42 42 0 -1 0 0 0 0 0 100 200 0 0",
            Some(300),
        ),
        ("42 (short) S 1", None),
        ("garbage", None),
    ];
    for (text, want) in cases {
        assert_eq!(cpu_ticks(text), *want, "{text}");
    }
}

#[test]
fn proc_status_kib_table() {
    let status = "Name:\tgpu-device-plugin\nVmHWM:\t    9876 kB\nVmRSS:\t    5432 kB\n";
    assert_eq!(status_kib(status, "VmRSS"), Some(5432));
    assert_eq!(status_kib(status, "VmHWM"), Some(9876));
    assert_eq!(status_kib(status, "VmSwap"), None);
}
