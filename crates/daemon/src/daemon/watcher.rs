//! The health event source in its own thread: runs the backend's blocking
//! event watch and forwards what it reports, tagged with the watch's
//! generation so the state machine can ignore a watch it has replaced.
//! A stopped watch ends at once (the backend's NVML wait thread finishes its
//! current 5 s wait on its own); nobody waits for it, so stopping never holds
//! up the loop or the process exit.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::state::{Event, WatchMsg};
use crate::gpu::{Backend, StopSignal};

/// A running watch; dropping it asks the thread to stop.
pub struct Watcher {
    stop: StopSignal,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.stop();
    }
}

/// Starts watching `gpus` (UUIDs) for health events.
pub fn spawn(
    backend: Arc<dyn Backend>,
    generation: u64,
    gpus: Vec<String>,
    tx: mpsc::UnboundedSender<Event>,
) -> std::io::Result<Watcher> {
    let stop = StopSignal::new();
    let flag = stop.clone();
    std::thread::Builder::new()
        .name("health-events".into())
        .spawn(move || {
            let send = |msg| {
                let _ = tx.send(Event::Watch { generation, msg });
            };
            let result =
                backend.watch_health_until(&gpus, &mut |r| send(WatchMsg::Report(r)), &flag);
            if let Err(e) = result
                && !flag.is_stopped()
            {
                send(WatchMsg::Failed(e.to_string()));
            }
        })?;
    Ok(Watcher { stop })
}
