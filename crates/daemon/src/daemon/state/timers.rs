//! Absolute deadlines for the runtime: retry backoff and a debounce that no
//! stream of events can postpone forever.

use std::time::{Duration, Instant};

/// Doubling retry delays between `min` and `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub const fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            min,
            max,
            next: min,
        }
    }

    /// The delay before the next retry; the one after it doubles.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }

    /// Starts again from the shortest delay.
    pub fn reset(&mut self) {
        self.next = self.min;
    }
}

/// Waits for `quiet` without a new poke, but never longer than `max_wait`
/// after the first poke, so a steady stream of events still gets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Debounce {
    quiet: Duration,
    max_wait: Duration,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Debounce {
    pub const fn new(quiet: Duration, max_wait: Duration) -> Self {
        Debounce {
            quiet,
            max_wait,
            first: None,
            last: None,
        }
    }

    /// Something happened at `now`.
    pub fn poke(&mut self, now: Instant) {
        self.first.get_or_insert(now);
        self.last = Some(now);
    }

    /// When the debounced action is due, if it is pending.
    pub fn deadline(&self) -> Option<Instant> {
        let (first, last) = (self.first?, self.last?);
        Some((last + self.quiet).min(first + self.max_wait))
    }

    /// True (and cleared) when the action is due at `now`.
    pub fn take_due(&mut self, now: Instant) -> bool {
        let due = self.deadline().is_some_and(|at| at <= now);
        if due {
            self.first = None;
            self.last = None;
        }
        due
    }
}

/// True (and cleared) when `deadline` has passed at `now`.
pub fn take_due(deadline: &mut Option<Instant>, now: Instant) -> bool {
    let due = deadline.is_some_and(|at| at <= now);
    if due {
        *deadline = None;
    }
    due
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_max_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(2), Duration::from_millis(10));
        let got: Vec<u128> = (0..5).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(got, [2, 4, 8, 10, 10]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(2));
    }

    #[test]
    fn debounce_waits_for_quiet_but_not_forever() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut d = Debounce::new(ms(20), ms(200));
        assert_eq!(d.deadline(), None);
        d.poke(t0);
        assert_eq!(d.deadline(), Some(t0 + ms(20)));
        // A poke every 10 ms would postpone a plain debounce forever.
        for i in 1..=30 {
            d.poke(t0 + ms(10 * i));
        }
        assert_eq!(d.deadline(), Some(t0 + ms(200)));
        assert!(!d.take_due(t0 + ms(199)));
        assert!(d.take_due(t0 + ms(200)));
        assert_eq!(d.deadline(), None);
    }
}
