//! NVIDIA's `Duration` (`gfd.sleepInterval`): a JSON number of nanoseconds, a
//! Go duration string (`"5s"`, `"1h30m"`), or `"infinite"` (MaxInt64).

use std::fmt;

use super::decode::Ctx;
use super::node::{Node, Value};

/// A signed number of nanoseconds, as Go's `time.Duration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Duration(pub i64);

impl Duration {
    /// The value `"infinite"` stands for.
    pub const INFINITE: Duration = Duration(i64::MAX);

    pub fn is_infinite(self) -> bool {
        self == Self::INFINITE
    }

    /// As a std duration; `None` when negative.
    pub fn to_std(self) -> Option<std::time::Duration> {
        u64::try_from(self.0)
            .ok()
            .map(std::time::Duration::from_nanos)
    }

    /// Parses a Go duration string or `infinite` (the CLI's `--sleep-interval`).
    pub fn parse(s: &str) -> Result<Duration, String> {
        if s == "infinite" {
            return Ok(Self::INFINITE);
        }
        parse_go_duration(s).map(Duration)
    }

    pub(crate) fn decode(ctx: &mut Ctx, node: &Node) -> Option<Duration> {
        let parsed = match &node.value {
            Value::Int(i) => i64::try_from(*i)
                .map(Duration)
                .map_err(|_| "invalid duration".to_string()),
            // Go reads the number as float64 and truncates it to nanoseconds.
            Value::Float(f) => Ok(Duration(*f as i64)),
            Value::Str(s) => Duration::parse(s),
            _ => Err("invalid duration".to_string()),
        };
        parsed.map_err(|message| ctx.error(node, message)).ok()
    }
}

/// Formats like Go's `Duration.String` (`"0s"`, `"5ns"`, `"1m30s"`), or `infinite`.
impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_infinite() {
            return f.write_str("infinite");
        }
        let neg = self.0 < 0;
        let mut n = self.0.unsigned_abs();
        let sign = if neg { "-" } else { "" };
        if n == 0 {
            return f.write_str("0s");
        }
        if n < 1_000_000_000 {
            let (unit, div) = match n {
                0..1_000 => return write!(f, "{sign}{n}ns"),
                1_000..1_000_000 => ("µs", 1_000),
                _ => ("ms", 1_000_000),
            };
            return write!(f, "{sign}{}{unit}", fraction(n, div));
        }
        let h = n / 3_600_000_000_000;
        n %= 3_600_000_000_000;
        let m = n / 60_000_000_000;
        n %= 60_000_000_000;
        let secs = fraction(n, 1_000_000_000);
        match (h, m) {
            (0, 0) => write!(f, "{sign}{secs}s"),
            (0, m) => write!(f, "{sign}{m}m{secs}s"),
            (h, m) => write!(f, "{sign}{h}h{m}m{secs}s"),
        }
    }
}

/// `n / div` with the fractional digits Go prints (trailing zeros dropped).
fn fraction(n: u64, div: u64) -> String {
    let whole = n / div;
    let rest = n % div;
    if rest == 0 {
        return whole.to_string();
    }
    let width = div.ilog10() as usize;
    let digits = format!("{rest:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

const UNITS: [(&str, u64); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("μs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Go's `time.ParseDuration`: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, with Go's messages.
fn parse_go_duration(orig: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration \"{orig}\"");
    let mut s = orig;
    let mut neg = false;
    if let Some(rest) = s.strip_prefix('-') {
        neg = true;
        s = rest;
    } else if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    const LIMIT: u64 = 1 << 63;
    let mut total: u64 = 0;
    while !s.is_empty() {
        let is_digit_or_dot = |c: u8| c == b'.' || c.is_ascii_digit();
        if !s.bytes().next().is_some_and(is_digit_or_dot) {
            return Err(invalid());
        }
        let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
        let (int_part, rest) = s.split_at(int_len);
        let mut value: u64 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| invalid())?
        };
        if value > LIMIT {
            return Err(invalid());
        }
        s = rest;
        let (mut frac, mut scale, mut post) = (0u64, 1f64, false);
        if let Some(rest) = s.strip_prefix('.') {
            let frac_len = rest.bytes().take_while(u8::is_ascii_digit).count();
            post = frac_len > 0;
            for d in rest.bytes().take(frac_len) {
                let next = frac
                    .checked_mul(10)
                    .and_then(|x| x.checked_add(u64::from(d - b'0')));
                match next {
                    Some(x) if x <= LIMIT => {
                        frac = x;
                        scale *= 10.0;
                    }
                    _ => break,
                }
            }
            s = &rest[frac_len..];
        }
        if int_part.is_empty() && !post {
            return Err(invalid());
        }
        let unit_len = s.bytes().take_while(|c| !is_digit_or_dot(*c)).count();
        if unit_len == 0 {
            return Err(format!("time: missing unit in duration \"{orig}\""));
        }
        let (unit, rest) = s.split_at(unit_len);
        s = rest;
        let Some(&(_, mult)) = UNITS.iter().find(|(name, _)| *name == unit) else {
            return Err(format!(
                "time: unknown unit \"{unit}\" in duration \"{orig}\""
            ));
        };
        if value > LIMIT / mult {
            return Err(invalid());
        }
        value *= mult;
        if frac > 0 {
            value += (frac as f64 * (mult as f64 / scale)) as u64;
            if value > LIMIT {
                return Err(invalid());
            }
        }
        total = match total.checked_add(value) {
            Some(t) if t <= LIMIT => t,
            _ => return Err(invalid()),
        };
    }
    if neg {
        return Ok((total as i128).wrapping_neg() as i64);
    }
    i64::try_from(total).map_err(|_| invalid())
}

#[cfg(test)]
#[path = "duration_tests.rs"]
mod tests;
