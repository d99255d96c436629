//! The CDI spec in the state machine: with a `cdi-*` strategy, a new plan is
//! served only once the spec of its inventory is on disk, so the kubelet is
//! never handed a CDI name the runtime cannot resolve. One write is in flight
//! at a time (a newer plan waits for it, so writes never land out of order);
//! a failed write keeps the previous plan serving, is logged once, shows in
//! `/readyz`, and is retried with backoff.

use super::timers::Backoff;
use super::*;
use crate::gpu::Inventory;

/// Retry delays of a failed spec write.
const CDI_RETRY: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(30));

/// What a spec was (or is being) written from.
type SpecKey = (Inventory, Settings);

/// The spec on disk and the plan waiting for it.
pub struct CdiSpec {
    /// What the spec on disk was written from, and the gated classes written.
    written: Option<(SpecKey, Vec<String>)>,
    /// What the write in flight writes.
    writing: Option<SpecKey>,
    /// The newest plan, held back until its spec is on disk.
    pending: Option<Prepared>,
    /// The last write error (cleared by a success).
    pub error: Option<String>,
    retry_at: Option<Instant>,
    backoff: Backoff,
}

impl Default for CdiSpec {
    fn default() -> Self {
        CdiSpec {
            written: None,
            writing: None,
            pending: None,
            error: None,
            retry_at: None,
            backoff: Backoff::new(CDI_RETRY.0, CDI_RETRY.1),
        }
    }
}

impl CdiSpec {
    pub fn deadline(&self) -> Option<Instant> {
        self.retry_at
    }
}

impl State {
    /// Holds `prepared` back when its spec is not on disk yet (and starts
    /// writing it); gives it back when it can be served now.
    pub(super) fn needs_spec(
        &mut self,
        prepared: Prepared,
        fx: &mut Vec<Effect>,
    ) -> Option<Prepared> {
        let settings = &self.config.settings;
        // No CDI strategy, or nothing to name (an empty spec is invalid).
        if !settings.uses_cdi() || prepared.resources.is_empty() {
            // No spec is wanted any more: an earlier write failure is moot.
            self.cdi.pending = None;
            self.cdi.error = None;
            self.cdi.retry_at = None;
            return Some(prepared);
        }
        let key = (prepared.inventory.clone(), settings.clone());
        if let Some((written, gated)) = &self.cdi.written
            && *written == key
        {
            let mut prepared = prepared;
            with_gated(&mut prepared, gated);
            self.cdi.pending = None;
            return Some(prepared);
        }
        self.cdi.pending = Some(prepared);
        self.cdi.retry_at = None;
        self.write_spec(fx);
        None
    }

    fn write_spec(&mut self, fx: &mut Vec<Effect>) {
        if self.cdi.writing.is_some() {
            return; // The result comes back first; the newest plan is written then.
        }
        let Some(pending) = &self.cdi.pending else {
            return;
        };
        let key = (pending.inventory.clone(), self.config.settings.clone());
        self.cdi.writing = Some(key.clone());
        fx.push(Effect::WriteCdi {
            inventory: key.0,
            settings: Box::new(key.1),
        });
    }

    /// A spec write finished.
    pub(super) fn cdi_written(
        &mut self,
        result: Result<crate::cdi::Written, String>,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        let key = self.cdi.writing.take();
        match result {
            Ok(written) => {
                let paths: Vec<String> = written
                    .paths
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect();
                let again = self.cdi.error.take().is_some();
                tracing::info!(paths = %paths.join(","), again, "CDI specs written");
                self.cdi.written = key.map(|k| (k, written.gated));
                self.cdi.backoff.reset();
                if let Some(p) = self.cdi.pending.take() {
                    // Served now if it is what was written, else written next.
                    self.apply_plan(p, now, fx);
                }
            }
            Err(e) => {
                let delay = self.cdi.backoff.next_delay();
                if self.cdi.error.as_deref() != Some(e.as_str()) {
                    tracing::error!(error = %e, retry_in_ms = delay.as_millis() as u64, "cannot write the CDI spec: the devices it would name are not advertised; the previous plan keeps serving");
                }
                self.cdi.error = Some(e);
                self.cdi.retry_at = Some(now + delay);
            }
        }
    }

    /// Retries a failed write when its time has come.
    pub(super) fn cdi_due(&mut self, now: Instant, fx: &mut Vec<Effect>) {
        if take_due(&mut self.cdi.retry_at, now) {
            self.write_spec(fx);
        }
    }
}

/// Names the gated specs just written in the plan's Allocate options.
fn with_gated(prepared: &mut Prepared, gated: &[String]) {
    let mut options = (*prepared.options).clone();
    if let Some(cdi) = &mut options.cdi {
        cdi.gated = gated
            .iter()
            .map(|c| crate::cdi::gated::gated_name(c))
            .collect();
    }
    prepared.options = Arc::new(options);
}
