//! A future on its own OS thread and single-threaded runtime, the way the
//! daemon runs in its own process: the bench's clients then do not share a
//! scheduler with the server they measure.

use std::future::Future;

use tokio::sync::watch;

/// A running background thread; stopped (and joined) by `stop`.
pub struct Background {
    stop: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Background {
    /// Runs `make(stop)` on a new thread until it returns.
    pub fn spawn<F, Fut>(name: &str, make: F) -> std::io::Result<Self>
    where
        F: FnOnce(watch::Receiver<bool>) -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        let (stop, stop_rx) = watch::channel(false);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || runtime.block_on(make(stop_rx)))?;
        Ok(Background {
            stop,
            thread: Some(thread),
        })
    }

    /// Signals the future to stop and waits for the thread, off the caller's runtime.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
