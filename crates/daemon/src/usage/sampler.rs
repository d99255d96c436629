//! The two loops behind the [`Store`]: the sampler thread (blocking backend
//! calls, every interval and whenever the served devices change) and the
//! PodResources task (async gRPC, every interval and soon after an
//! Allocate nudge). A device that does not answer is left out of that
//! sample only; a missing or failing socket is logged once (and again once
//! it answers) and leaves the metrics unattributed.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tokio::task::JoinHandle;

use super::{Store, UsageOptions, podresources};

/// The kubelet records an allocation right after Allocate returns; list
/// this long after a nudge so the new holder is in the answer.
const SETTLE: Duration = Duration::from_millis(250);

/// Both loops; dropping it stops them.
pub struct Running {
    store: Store,
    task: JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.store.inner.signal.stop();
        self.task.abort();
    }
}

/// Starts sampling into `store` (and enables its families), unless the
/// interval is `never`. Call from within the tokio runtime.
pub fn start(store: &Store, opts: &UsageOptions) -> std::io::Result<Option<Running>> {
    let Some(interval) = opts.interval else {
        return Ok(None);
    };
    store.enable(opts.dcgm_compatible);
    let sampler = store.clone();
    std::thread::Builder::new()
        .name("usage-sampler".into())
        .spawn(move || sample_loop(&sampler, interval))?;
    let lister = store.clone();
    let socket = opts.pod_resources_socket.clone();
    let task = tokio::spawn(async move { list_loop(lister, socket, interval).await });
    Ok(Some(Running {
        store: store.clone(),
        task,
    }))
}

fn sample_loop(store: &Store, interval: Duration) {
    let signal = store.inner.signal.clone();
    let mut failing: HashSet<String> = HashSet::new();
    loop {
        let seen = signal.wakes();
        if signal.is_stopped() {
            return;
        }
        let (backend, uuids) = store.targets();
        if let Some(backend) = backend {
            let mut samples = HashMap::with_capacity(uuids.len());
            let answers = backend.usage_many(&uuids);
            for (uuid, answer) in uuids.into_iter().zip(answers) {
                match answer {
                    Ok(usage) => {
                        if failing.remove(&uuid) {
                            tracing::info!(device = uuid, "usage readable again");
                        }
                        samples.insert(uuid, usage);
                    }
                    Err(kind) => {
                        if failing.insert(uuid.clone()) {
                            tracing::warn!(device = uuid, error = %kind, "cannot read usage; the device has no usage metrics until it answers");
                        }
                    }
                }
            }
            store.put_samples(samples);
        }
        if signal.wait(seen, Some(interval)) {
            return;
        }
    }
}

async fn list_loop(store: Store, socket: std::path::PathBuf, interval: Duration) {
    let mut failed = false;
    let mut truncated = false;
    loop {
        match podresources::list(&socket).await {
            Ok(listed) => {
                if failed {
                    tracing::info!(socket = %socket.display(), "kubelet PodResources answers; usage metrics carry pod labels again");
                    failed = false;
                }
                if listed.dropped > 0 && !truncated {
                    tracing::warn!(
                        dropped = listed.dropped,
                        "kubelet PodResources listed more device IDs than {} ; the rest is not attributed",
                        podresources::MAX_ASSIGNMENTS
                    );
                }
                truncated = listed.dropped > 0;
                store.put_assignments(listed.assignments);
            }
            Err(e) => {
                if !failed {
                    match e {
                        podresources::PodResourcesError::Missing(_) => tracing::info!("{e}"),
                        _ => tracing::warn!("{e}; usage metrics stay without pod labels"),
                    }
                    failed = true;
                }
                store.put_assignments(Vec::new());
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = store.inner.nudge.notified() => tokio::time::sleep(SETTLE).await,
        }
    }
}
