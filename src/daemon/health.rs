//! The health event source in its own thread: runs the backend's blocking
//! event wait, and when it fails, reports the failure and retries with backoff
//! until the backend answers again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::gpu::{Backend, HealthEvent};

/// First and last delay between retries after a failure.
const RETRY_MIN: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(30);
/// An event source that ran this long before failing starts its retries
/// from `RETRY_MIN` again; one that keeps failing backs off further each time.
const STABLE: Duration = Duration::from_secs(60);

/// What the health thread reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthMsg {
    Event(HealthEvent),
    /// The event source or the backend failed.
    Failed(String),
    /// The backend answers again after a failure.
    Recovered,
}

/// A running health thread; dropping it stops the thread at its next poll.
pub struct HealthWatcher {
    stop: Arc<AtomicBool>,
}

impl Drop for HealthWatcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Starts watching `gpus` (UUIDs). A plain thread, so that it never holds up
/// the runtime's shutdown.
pub fn spawn(
    backend: Arc<dyn Backend>,
    gpus: Vec<String>,
    tx: mpsc::UnboundedSender<HealthMsg>,
) -> std::io::Result<HealthWatcher> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::Builder::new()
        .name("health-events".into())
        .spawn(move || run(backend.as_ref(), &gpus, &tx, &flag))?;
    Ok(HealthWatcher { stop })
}

fn run(
    backend: &dyn Backend,
    gpus: &[String],
    tx: &mpsc::UnboundedSender<HealthMsg>,
    stop: &AtomicBool,
) {
    let stopped = || stop.load(Ordering::Relaxed) || tx.is_closed();
    let mut delay = RETRY_MIN;
    while !stopped() {
        let mut sink = |report| {
            if let crate::gpu::WatchReport::Event(event) = report {
                let _ = tx.send(HealthMsg::Event(event));
            }
        };
        let started = std::time::Instant::now();
        match backend.watch_health(gpus, &mut sink, &stopped) {
            Ok(()) => return,
            Err(e) => {
                let _ = tx.send(HealthMsg::Failed(e.to_string()));
            }
        }
        if started.elapsed() >= STABLE {
            delay = RETRY_MIN;
        }
        // Retry until the backend answers again.
        loop {
            if wait(delay, &stopped) {
                return;
            }
            delay = (delay * 2).min(RETRY_MAX);
            if backend.inventory().is_ok() {
                let _ = tx.send(HealthMsg::Recovered);
                break;
            }
        }
    }
}

/// Sleeps `delay` in short steps; true when asked to stop meanwhile.
fn wait(delay: Duration, stopped: &dyn Fn() -> bool) -> bool {
    let step = Duration::from_millis(100);
    let mut left = delay;
    while !left.is_zero() {
        if stopped() {
            return true;
        }
        let d = left.min(step);
        std::thread::sleep(d);
        left -= d;
    }
    stopped()
}
