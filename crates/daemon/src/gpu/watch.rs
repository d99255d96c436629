//! Stopping a health watch at once: a stop flag that a watching thread blocks
//! on together with its backend's own wake-ups (an event from a helper thread,
//! a change of the node file), so that it needs no periodic wake to notice a
//! stop and ends as soon as it is asked to.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// A stop request for [`Backend::watch_health_until`](super::Backend::watch_health_until).
/// Clones share one flag; once stopped it stays stopped.
#[derive(Debug, Clone, Default)]
pub struct StopSignal {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Debug, Default, Clone, Copy)]
struct State {
    stopped: bool,
    /// Bumped by every [`Waker::wake`]; a waiter compares it with what it saw.
    wakes: u64,
}

/// Wakes the threads waiting on a [`StopSignal`] without stopping them.
#[derive(Debug, Clone)]
pub(crate) struct Waker {
    shared: Arc<Shared>,
}

impl Shared {
    // The state is two plain values, valid whatever a panicking holder did.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl StopSignal {
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks every watch using this signal (or a clone) to end.
    pub fn stop(&self) {
        self.shared.lock().stopped = true;
        self.shared.changed.notify_all();
    }

    pub fn is_stopped(&self) -> bool {
        self.shared.lock().stopped
    }

    pub(crate) fn waker(&self) -> Waker {
        Waker {
            shared: self.shared.clone(),
        }
    }

    /// The wake count now; pass it to [`StopSignal::wait`] after looking at
    /// whatever the wakes announce, so that no wake is missed.
    pub(crate) fn wakes(&self) -> u64 {
        self.shared.lock().wakes
    }

    /// Blocks until stopped, woken since `seen`, or `timeout` passed (never,
    /// when `None`). True when stopped.
    pub(crate) fn wait(&self, seen: u64, timeout: Option<Duration>) -> bool {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut state = self.shared.lock();
        while !state.stopped && state.wakes == seen {
            match deadline {
                None => {
                    state = self
                        .shared
                        .changed
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                }
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    state = self
                        .shared
                        .changed
                        .wait_timeout(state, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
            }
        }
        state.stopped
    }
}

impl Waker {
    pub(crate) fn wake(&self) {
        let mut state = self.shared.lock();
        state.wakes = state.wakes.wrapping_add(1);
        drop(state);
        self.shared.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_returns_on_stop_wake_or_timeout() {
        let signal = StopSignal::new();
        // Timeout: nothing happened.
        let seen = signal.wakes();
        assert!(!signal.wait(seen, Some(Duration::from_millis(1))));
        // A wake before the wait is not missed.
        signal.waker().wake();
        assert!(!signal.wait(seen, None));
        assert_ne!(signal.wakes(), seen);
        // A stop from another thread ends an unbounded wait.
        let other = signal.clone();
        let seen = signal.wakes();
        std::thread::scope(|s| {
            s.spawn(|| other.stop());
            assert!(signal.wait(seen, None));
        });
        assert!(signal.is_stopped());
        assert!(signal.wait(signal.wakes(), None), "stays stopped");
    }

    #[test]
    fn a_wake_from_another_thread_ends_an_unbounded_wait() {
        let signal = StopSignal::new();
        let waker = signal.waker();
        let seen = signal.wakes();
        std::thread::scope(|s| {
            s.spawn(move || waker.wake());
            assert!(!signal.wait(seen, None));
        });
        assert!(!signal.is_stopped());
    }
}
