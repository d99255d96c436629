//! A health watch whose NVML waits run in a thread of their own, so that the
//! caller's thread can return the moment it is stopped: NVML has no way to
//! interrupt `nvmlEventSetWait` (no user event, and freeing a set another
//! thread waits on is undefined), so the wait thread is left to finish its
//! current wait and end by itself. Reports travel through a mailbox whose
//! pushes wake the caller through its [`StopSignal`].

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::events;
use crate::gpu::watch::Waker;
use crate::gpu::{GpuError, StopSignal, WatchReport};

#[derive(Default)]
struct Mail {
    reports: VecDeque<WatchReport>,
    /// How the wait thread's watch ended.
    done: Option<Result<(), GpuError>>,
    /// The caller has returned: the wait thread should end.
    closed: bool,
}

struct Mailbox {
    mail: Mutex<Mail>,
    waker: Waker,
}

impl Mailbox {
    // The mail is plain data, consistent whatever a panicking holder did.
    fn lock(&self) -> MutexGuard<'_, Mail> {
        self.mail.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn update(&self, f: impl FnOnce(&mut Mail)) {
        f(&mut self.lock());
        self.waker.wake();
    }

    fn closed(&self) -> bool {
        self.lock().closed
    }

    fn take(&self) -> (Vec<WatchReport>, Option<Result<(), GpuError>>) {
        let mut mail = self.lock();
        (mail.reports.drain(..).collect(), mail.done.take())
    }
}

/// Closes the mailbox however the caller returns (a panicking sink too).
struct CloseOnDrop<'a>(&'a Mailbox);

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.update(|mail| mail.closed = true);
    }
}

/// Runs [`events::watch`] in a new thread and hands its reports to `sink`
/// on this one until `stop` is stopped or the watch ends.
pub fn watch_in_thread(
    lib: Arc<nvml_wrapper::Nvml>,
    gpus: Vec<String>,
    sink: &mut dyn FnMut(WatchReport),
    stop: &StopSignal,
) -> Result<(), GpuError> {
    let mailbox = Arc::new(Mailbox {
        mail: Mutex::new(Mail::default()),
        waker: stop.waker(),
    });
    let (theirs, signal) = (mailbox.clone(), stop.clone());
    std::thread::Builder::new()
        .name("nvml-events".into())
        .spawn(move || {
            let quit = || theirs.closed() || signal.is_stopped();
            // With nothing to wait on, sleep until stopped or closed.
            let idle = || {
                let seen = signal.wakes();
                if !quit() {
                    signal.wait(seen, None);
                }
            };
            let result = events::watch(
                &lib,
                &gpus,
                &mut |r| theirs.update(|m| m.reports.push_back(r)),
                &quit,
                &idle,
            );
            theirs.update(|mail| mail.done = Some(result));
        })
        .map_err(|e| GpuError::Events(format!("cannot start the NVML event thread: {e}")))?;
    let _close = CloseOnDrop(&mailbox);
    loop {
        let seen = stop.wakes();
        let (reports, done) = mailbox.take();
        for report in reports {
            if stop.is_stopped() {
                return Ok(());
            }
            sink(report);
        }
        if let Some(result) = done {
            return result;
        }
        if stop.wait(seen, None) {
            return Ok(());
        }
    }
}
