//! The health event source in its own thread: runs the backend's blocking
//! event watch and forwards what it reports, tagged with the watch's
//! generation so the state machine can ignore a watch it has replaced.
//! A stopped watch ends within the backend's wake interval (5 s); nobody
//! waits for it, so stopping never holds up the loop or the process exit.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::mpsc;

use super::state::{Event, WatchMsg};
use crate::gpu::Backend;

/// A running watch; dropping it asks the thread to stop.
pub struct Watcher {
    stop: Arc<AtomicBool>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Starts watching `gpus` (UUIDs) for health events.
pub fn spawn(
    backend: Arc<dyn Backend>,
    generation: u64,
    gpus: Vec<String>,
    tx: mpsc::UnboundedSender<Event>,
) -> std::io::Result<Watcher> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::Builder::new()
        .name("health-events".into())
        .spawn(move || {
            let stopped = || flag.load(Ordering::Relaxed) || tx.is_closed();
            let send = |msg| {
                let _ = tx.send(Event::Watch { generation, msg });
            };
            let result = backend.watch_health(&gpus, &mut |r| send(WatchMsg::Report(r)), &stopped);
            if let Err(e) = result
                && !stopped()
            {
                send(WatchMsg::Failed(e.to_string()));
            }
        })?;
    Ok(Watcher { stop })
}
