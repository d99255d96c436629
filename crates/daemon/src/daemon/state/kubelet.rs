//! The kubelet side of the state machine: its socket appearing and going,
//! our sockets being served, registrations, and every deadline acted on.

use super::*;

impl State {
    // ---- kubelet and sockets ----

    pub(super) fn kubelet_socket(
        &mut self,
        id: Option<SocketId>,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        if id == self.kubelet {
            return;
        }
        match id {
            Some(_) => {
                if self.kubelet_seen {
                    tracing::info!("kubelet socket created; registering every resource");
                    fx.push(Effect::Count(Count::KubeletRestart));
                }
                self.kubelet_seen = true;
                self.kubelet_warn_at = None;
            }
            None => {
                tracing::debug!("kubelet socket removed");
                self.kubelet_warn_at
                    .get_or_insert(now + KUBELET_ABSENT_GRACE);
            }
        }
        self.kubelet = id;
    }

    pub(super) fn socket_file(
        &mut self,
        name: &str,
        id: Option<SocketId>,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        for (resource, serving) in &mut self.serving {
            if serving.socket_name != name {
                continue;
            }
            if serving.lost_socket(id) {
                tracing::info!(resource = %resource, "plugin socket was deleted or replaced; serving it again");
                serving.server = Server::Binding;
                fx.push(Effect::Serve {
                    resource: resource.clone(),
                    socket_name: serving.socket_name.clone(),
                });
            } else if id.is_none()
                && let Server::Down { retry_at, .. } = &mut serving.server
            {
                // The socket that blocked us is gone: bind now.
                *retry_at = now;
            }
        }
    }

    pub(super) fn served(
        &mut self,
        resource: &str,
        result: Result<SocketId, String>,
        now: Instant,
    ) {
        let Some(serving) = self.serving.get_mut(resource) else {
            return;
        };
        match &result {
            Ok(_) => tracing::debug!(resource, socket = %serving.socket_name, "serving resource"),
            Err(e) => tracing::error!(resource, error = %e, "cannot serve the resource; retrying"),
        }
        serving.bound(result, now);
    }

    pub(super) fn registered(
        &mut self,
        resource: &str,
        attempt: u64,
        reached: Option<SocketId>,
        result: &Result<(), RegisterFailure>,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        let Some(serving) = self.serving.get_mut(resource) else {
            return;
        };
        if !serving.finished(attempt, reached, result, now) {
            return;
        }
        match result {
            Ok(()) => {
                tracing::info!(resource, "registered with the kubelet");
                fx.push(Effect::Count(Count::Registered(resource.to_string())));
                // The attempt stat'ed the kubelet socket right before dialing:
                // that is newer than what the state knows.
                if reached.is_some() && reached != self.kubelet {
                    self.kubelet_socket(reached, now, fx);
                }
            }
            Err(failure) if failure.socket_gone => {
                // Our socket file was deleted (the kubelet does that when it
                // starts): serve it again, then register once.
                tracing::debug!(resource, "plugin socket gone before registering");
                let (name, observed) = (serving.socket_name.clone(), failure.observed);
                self.socket_file(&name, observed, now, fx);
            }
            Err(failure) => {
                if serving.should_warn(failure, now) {
                    tracing::warn!(resource, error = %failure.message, failures = serving.failures, "registration failed; retrying");
                } else {
                    tracing::debug!(resource, error = %failure.message, "registration failed; retrying");
                }
            }
        }
    }

    // ---- deadlines ----

    /// Acts on every deadline that has passed, and on registrations that are due.
    pub(super) fn after(&mut self, now: Instant, fx: &mut Vec<Effect>) {
        if self.config_debounce.take_due(now) {
            if self.config_read.in_flight {
                self.config_read.again = true;
            } else {
                self.config_read.in_flight = true;
                fx.push(Effect::ReadConfig);
            }
        }
        let node_due = self.node_debounce.take_due(now);
        let rescan_due = take_due(&mut self.rescan_at, now);
        let retry_due = take_due(&mut self.read_retry_at, now);
        if node_due || rescan_due || retry_due {
            self.request_inventory(fx);
        }
        if let BackendState::Down { retry_at } = self.backend
            && retry_at <= now
        {
            self.backend = BackendState::Starting;
            fx.push(Effect::StartBackend);
        }
        self.cdi_due(now, fx);
        if take_due(&mut self.mps_check_at, now) {
            self.check_mps(fx);
        }
        if self.backend_up() {
            for gpu in self.health.due_probes(now) {
                fx.push(Effect::Probe(gpu));
            }
        }
        if take_due(&mut self.watch.retry_at, now) {
            let gpus = self.health.present().iter().cloned().collect();
            self.start_watch(gpus, now, fx);
        }
        if take_due(&mut self.kubelet_warn_at, now) && self.kubelet.is_none() {
            tracing::warn!(
                socket = %self.opts.kubelet_socket.display(),
                "the kubelet socket does not exist: is the kubelet running, and is --kubelet-socket / KUBELET_SOCKET right? Waiting for it"
            );
            self.kubelet_warn_at = Some(now + KUBELET_ABSENT_EVERY);
            fx.push(Effect::StatKubelet);
        }
        let kubelet = self.kubelet;
        for (resource, serving) in &mut self.serving {
            if serving.bind_due(now) {
                serving.server = Server::Binding;
                fx.push(Effect::Serve {
                    resource: resource.clone(),
                    socket_name: serving.socket_name.clone(),
                });
            }
            match serving.decide(kubelet, now, self.next_attempt) {
                Action::Nothing => {}
                Action::Register(attempt) => {
                    self.next_attempt += 1;
                    serving.started(attempt);
                    fx.push(Effect::Register {
                        resource: resource.clone(),
                        endpoint: serving.socket_name.clone(),
                        attempt: attempt.id,
                        server: attempt.server,
                    });
                }
            }
            serving.expire_retry(now);
        }
    }

    pub(super) fn check_mps(&self, fx: &mut Vec<Effect>) {
        let Some(prepared) = &self.prepared else {
            return;
        };
        // Every MPS resource: the answer replaces the whole ready set.
        let root = &self.opts.mps_marker_root;
        let markers = events::mps_resources(prepared)
            .into_iter()
            .map(|r| {
                let path = mps_started_marker(root, &r);
                (r, path)
            })
            .collect();
        fx.push(Effect::CheckMps(markers));
    }
}
