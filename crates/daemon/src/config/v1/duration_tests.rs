//! Tests of `config::v1::duration` (tables of cases).
use super::*;

#[test]
fn go_duration_strings_parse() {
    let cases: [(&str, Result<i64, &str>); 16] = [
        ("0", Ok(0)),
        ("0s", Ok(0)),
        ("5s", Ok(5_000_000_000)),
        ("1h30m", Ok(5_400_000_000_000)),
        ("1.5s", Ok(1_500_000_000)),
        (".5ms", Ok(500_000)),
        ("-2us", Ok(-2_000)),
        ("+3µs", Ok(3_000)),
        ("3μs", Ok(3_000)),
        ("100ns", Ok(100)),
        ("infinite", Ok(i64::MAX)),
        ("", Err("time: invalid duration \"\"")),
        ("5", Err("time: missing unit in duration \"5\"")),
        ("5x", Err("time: unknown unit \"x\" in duration \"5x\"")),
        (".s", Err("time: invalid duration \".s\"")),
        ("9999999999h", Err("time: invalid duration \"9999999999h\"")),
    ];
    for (input, want) in cases {
        assert_eq!(
            Duration::parse(input).map(|d| d.0),
            want.map_err(String::from),
            "{input}"
        );
    }
}

#[test]
fn durations_print_like_go() {
    let cases = [
        (0, "0s"),
        (5, "5ns"),
        (1_500, "1.5µs"),
        (2_000_000, "2ms"),
        (5_000_000_000, "5s"),
        (90_000_000_000, "1m30s"),
        (3_600_000_000_000, "1h0m0s"),
        (-1_500_000_000, "-1.5s"),
        (i64::MAX, "infinite"),
    ];
    for (ns, want) in cases {
        assert_eq!(Duration(ns).to_string(), want);
    }
}

#[test]
fn sums_past_max_int64_are_invalid_not_a_panic() {
    let input = "9223372036854775807ns9223372036854775807ns";
    assert_eq!(
        Duration::parse(input),
        Err(format!("time: invalid duration \"{input}\""))
    );
}
