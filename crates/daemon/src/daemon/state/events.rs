//! Health inputs of the state machine: the event watch (its generations,
//! per-GPU faults, node-wide failures), recovery probes and MPS markers.

use super::*;

impl State {
    // ---- health ----

    pub(super) fn ensure_watch(&mut self, now: Instant, fx: &mut Vec<Effect>) {
        if self.opts.policy.checks_disabled() || !self.backend_up() {
            return;
        }
        let wanted: Vec<String> = self.health.present().iter().cloned().collect();
        if self.watch.gpus.as_ref() != Some(&wanted) && self.watch.retry_at.is_none() {
            self.start_watch(wanted, now, fx);
            return;
        }
        // A GPU the watch could not register but that answers again: retry it.
        let retry = self.health.watch_faults().keys().any(|gpu| {
            self.health.present().contains(gpu)
                && self.health.gpu_fault(gpu) == self.health.watch_faults().get(gpu)
        });
        if retry && self.watch.retry_at.is_none() {
            self.watch.retry_at = Some(now + self.watch.backoff.next_delay());
        }
    }

    pub(super) fn start_watch(&mut self, gpus: Vec<String>, now: Instant, fx: &mut Vec<Effect>) {
        self.watch.generation += 1;
        self.watch.gpus = Some(gpus.clone());
        self.watch.started_at = Some(now);
        self.watch.retry_at = None;
        fx.push(Effect::StartWatch {
            generation: self.watch.generation,
            gpus,
        });
    }

    pub(super) fn watch_msg(
        &mut self,
        generation: u64,
        msg: WatchMsg,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        if generation != self.watch.generation {
            return;
        }
        match msg {
            WatchMsg::Report(WatchReport::Watching {
                unwatched,
                unsupported,
            }) => {
                if self.health.node_failure().is_some() {
                    tracing::info!("health events are watched again");
                }
                self.health.set_watch_failure(None);
                if (unwatched.clone(), unsupported.clone()) != self.watch_logged {
                    for (gpu, kind) in &unwatched {
                        tracing::warn!(gpu = %gpu, fault = %fault_text(kind), "cannot watch the GPU for health events: its devices are unhealthy");
                    }
                    for gpu in &unsupported {
                        tracing::warn!(gpu = %gpu, "GPU is too old to support health checking");
                    }
                    self.watch_logged = (unwatched.clone(), unsupported);
                }
                if unwatched.is_empty() {
                    self.watch.backoff.reset();
                }
                self.health
                    .set_watch_faults(unwatched.into_iter().collect());
                self.publish(fx);
            }
            WatchMsg::Report(WatchReport::Event(event)) => {
                let xid = match event.kind {
                    crate::gpu::EventKind::Xid(x) => x,
                    crate::gpu::EventKind::DoubleBitEcc => 0,
                };
                if !self.opts.policy.is_critical(event.kind) {
                    fx.push(Effect::Count(Count::HealthEvent {
                        xid,
                        action: "ignored",
                    }));
                    tracing::debug!(event = ?event, "non-critical health event ignored");
                    return;
                }
                fx.push(Effect::Count(Count::HealthEvent {
                    xid,
                    action: "marked_unhealthy",
                }));
                let devices: usize = self
                    .prepared
                    .iter()
                    .flat_map(|d| d.resources.values())
                    .map(|p| affected_devices(&event, &p.resource.devices).len())
                    .sum();
                tracing::warn!(
                    event = %event_name(event.kind),
                    gpu = %event.gpu_uuid,
                    gpu_instance = ?event.gpu_instance_id,
                    compute_instance = ?event.compute_instance_id,
                    devices,
                    "critical health event: marking devices unhealthy"
                );
                self.health.mark(&event, now);
                self.publish(fx);
            }
            WatchMsg::Report(WatchReport::Fault { uuid, kind }) => {
                tracing::warn!(gpu = %uuid, fault = %fault_text(&kind), "GPU stopped answering: its devices are unhealthy");
                self.health.add_watch_fault(uuid, kind);
                self.publish(fx);
            }
            WatchMsg::Failed(e) => {
                if self
                    .watch
                    .started_at
                    .is_some_and(|at| now.duration_since(at) >= WATCH_STABLE)
                {
                    self.watch.backoff.reset();
                }
                let delay = self.watch.backoff.next_delay();
                if self.health.node_failure().is_none() {
                    tracing::error!(error = %e, retry_in_ms = delay.as_millis() as u64, "health events failed: every device is now unhealthy; retrying");
                } else {
                    tracing::debug!(error = %e, "health events still fail");
                }
                fx.push(Effect::Count(Count::NvmlError));
                self.health.set_watch_failure(Some(e));
                self.watch.gpus = None;
                self.watch.retry_at = Some(now + delay);
                self.publish(fx);
            }
        }
    }

    pub(super) fn probed(
        &mut self,
        gpu: &str,
        result: &Result<Probe, FaultKind>,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        match self.health.probed(gpu, result, now) {
            ProbeOutcome::Recovered(scopes) => {
                fx.push(Effect::Count(Count::RecoveryProbe("fit")));
                tracing::info!(
                    gpu,
                    marks = scopes.len(),
                    "quiet period over and the GPU is fit: devices are healthy again"
                );
                self.publish(fx);
            }
            ProbeOutcome::NotFit { reason, first } => {
                let result = if result.is_ok() { "not_fit" } else { "failed" };
                fx.push(Effect::Count(Count::RecoveryProbe(result)));
                let retry_in_s = self.opts.recovery.map_or(0, |d| d.as_secs());
                if first {
                    tracing::warn!(gpu, reason = %reason, retry_in_s, "GPU stays unhealthy: not fit for new work");
                } else {
                    tracing::debug!(gpu, reason = %reason, "GPU still not fit");
                }
            }
            ProbeOutcome::Stale => {}
        }
    }

    pub(super) fn mps_markers(
        &mut self,
        ready: BTreeSet<String>,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        let root = self.opts.mps_marker_root.clone();
        for name in self.mps_ready.difference(&ready) {
            let marker = mps_started_marker(&root, name);
            tracing::warn!(resource = %name, marker = %marker.display(), "the MPS control daemon's marker is gone: its devices are unhealthy until it is back");
        }
        for name in ready.intersection(&self.mps_seen) {
            if !self.mps_ready.contains(name) {
                let marker = mps_started_marker(&root, name);
                tracing::info!(resource = %name, marker = %marker.display(), "the MPS control daemon is back: its devices are healthy again");
            }
        }
        let first: Vec<String> = ready.difference(&self.mps_seen).cloned().collect();
        let changed = ready != self.mps_ready;
        self.mps_ready = ready;
        if !first.is_empty() {
            for name in &first {
                let marker = mps_started_marker(&root, name);
                tracing::info!(resource = %name, marker = %marker.display(), "the MPS control daemon has started: advertising");
            }
            self.mps_seen.extend(first);
            self.replan(now, fx);
        } else if changed {
            self.publish(fx);
        }
        // Markers are watched for as long as an MPS resource is planned.
        let any = self
            .prepared
            .as_ref()
            .is_some_and(|d| !mps_resources(d).is_empty());
        self.mps_check_at = any.then(|| now + MPS_RECHECK);
    }

    /// An MPS resource advertised once whose marker is absent now.
    pub(super) fn mps_down(&self, resource: &str) -> bool {
        self.mps_seen.contains(resource) && !self.mps_ready.contains(resource)
    }
}

/// The MPS resources of a plan, advertised or waiting for their marker.
pub(super) fn mps_resources(prepared: &Prepared) -> BTreeSet<String> {
    let advertised = prepared.resources.iter().filter(|(_, p)| {
        p.resource
            .sharing
            .as_ref()
            .is_some_and(|s| s.kind == crate::resources::SharingKind::Mps)
    });
    advertised
        .map(|(name, _)| name.clone())
        .chain(prepared.pending_mps.iter().cloned())
        .collect()
}
