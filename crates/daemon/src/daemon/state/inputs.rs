//! The state machine's three inputs: the config (reloads, rejections), the
//! backend and its inventory (per-GPU faults, node-wide failures), and the
//! plan built from the current value of each.

use super::*;

impl State {
    /// The part of `inventory` the device plugin serves: without the GPUs
    /// DRA owns (one GPU, one owner).
    pub(super) fn device_plugin_inventory<'a>(
        &self,
        inventory: &'a crate::gpu::Inventory,
    ) -> std::borrow::Cow<'a, crate::gpu::Inventory> {
        match &self.opts.dra {
            None => std::borrow::Cow::Borrowed(inventory),
            Some(devices) => std::borrow::Cow::Owned(crate::dra::without_owned(
                inventory,
                &devices.owned(inventory),
            )),
        }
    }

    // ---- config ----

    pub(super) fn log_config(&mut self, config: &LoadedConfig, message: &str) {
        if config.ignored != self.ignored_logged {
            for ignored in &config.ignored {
                tracing::warn!("{ignored}");
            }
            self.ignored_logged = config.ignored.clone();
        }
        tracing::info!(config = %config.effective, "{message}");
    }

    pub(super) fn config_loaded(
        &mut self,
        result: Result<Arc<LoadedConfig>, String>,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        self.config_read.in_flight = false;
        if std::mem::take(&mut self.config_read.again) {
            self.config_debounce.poke(now);
        }
        let config = match result {
            Ok(config) => config,
            Err(e) => return self.reject(&e, fx),
        };
        if *config == *self.config {
            tracing::debug!("configuration unchanged");
            fx.push(Effect::Count(Count::Reload { ok: true }));
            return;
        }
        if let Some(inventory) = &self.hardware.inventory {
            let ready = |r: &str| self.mps_seen.contains(r);
            match prepare(
                &self.device_plugin_inventory(inventory),
                &config.settings,
                &config.file,
                &self.opts.control_nodes,
                &ready,
            ) {
                Ok(prepared) => {
                    self.commit_config(config, fx);
                    self.plan_error = None;
                    self.apply_plan(prepared, now, fx);
                }
                Err(e) => self.reject(&e.to_string(), fx),
            }
        } else {
            self.commit_config(config, fx);
        }
    }

    pub(super) fn commit_config(&mut self, config: Arc<LoadedConfig>, fx: &mut Vec<Effect>) {
        self.log_config(&config, "configuration reloaded");
        self.config = config;
        fx.push(Effect::Count(Count::Reload { ok: true }));
    }

    pub(super) fn reject(&mut self, error: &str, fx: &mut Vec<Effect>) {
        tracing::error!(
            error,
            "reload rejected; the previous configuration keeps serving"
        );
        fx.push(Effect::Count(Count::Reload { ok: false }));
    }

    // ---- backend and inventory ----

    pub(super) fn backend_started(
        &mut self,
        result: Result<(), String>,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        match result {
            Ok(()) => {
                self.backend = BackendState::Up;
                self.backend_error = None;
                self.request_inventory(fx);
            }
            Err(e) if self.config.settings.fail_on_init_error => fx.push(Effect::Exit(e)),
            Err(e) => {
                let delay = self.backend_backoff.next_delay();
                if self.backend_error.as_deref() != Some(e.as_str()) {
                    tracing::error!(
                        error = %e,
                        retry_in_s = delay.as_secs(),
                        "GPU discovery failed and failOnInitError is false: advertising no devices \
                         until it succeeds. Set FAIL_ON_INIT_ERROR=true to make this fatal."
                    );
                } else {
                    tracing::debug!(error = %e, "GPU discovery still fails");
                }
                fx.push(Effect::Count(Count::NvmlError));
                self.backend_error = Some(e);
                self.backend = BackendState::Down {
                    retry_at: now + delay,
                };
            }
        }
    }

    pub(super) fn request_inventory(&mut self, fx: &mut Vec<Effect>) {
        if !self.backend_up() {
            return;
        }
        if self.inventory_read.in_flight {
            self.inventory_read.again = true;
        } else {
            self.inventory_read.in_flight = true;
            fx.push(Effect::ReadInventory);
        }
    }

    pub(super) fn inventory_read(
        &mut self,
        result: Result<crate::gpu::Inventory, String>,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        self.inventory_read.in_flight = false;
        if std::mem::take(&mut self.inventory_read.again) {
            self.request_inventory(fx);
        }
        fx.push(Effect::Count(Count::InventoryRead { ok: result.is_ok() }));
        self.rescan_at = self.opts.rescan.map(|every| now + every);
        let read = match result {
            Ok(read) => read,
            Err(e) => {
                if self.hardware.inventory.is_none() && self.config.settings.fail_on_init_error {
                    fx.push(Effect::Exit(e));
                    return;
                }
                if self.inventory_error.as_deref() != Some(e.as_str()) {
                    tracing::error!(error = %e, "the GPU inventory cannot be read: every device is now unhealthy; retrying");
                }
                fx.push(Effect::Count(Count::NvmlError));
                self.health.set_inventory_failure(Some(e.clone()));
                self.inventory_error = Some(e);
                self.read_retry_at = Some(now + self.read_backoff.next_delay());
                self.publish(fx);
                return;
            }
        };
        if self.inventory_error.take().is_some() {
            tracing::info!("the GPU inventory answers again");
        }
        self.read_backoff.reset();
        self.read_retry_at = None;
        self.health.set_inventory_failure(None);
        let merged = self.hardware.apply(read);
        self.log_faults(&merged);
        self.health
            .set_inventory(merged.present, merged.faults, now);
        if merged.changed {
            self.replan(now, fx);
        } else {
            self.publish(fx);
        }
        self.ensure_watch(now, fx);
    }

    pub(super) fn log_faults(&mut self, merged: &Merged) {
        for (gpu, kind) in &merged.faults {
            if self.faults_logged.get(gpu) != Some(kind) {
                tracing::warn!(gpu = %gpu, fault = %fault_text(kind), "GPU fault: its devices are unhealthy");
            }
        }
        for gpu in self.faults_logged.keys() {
            if !merged.faults.contains_key(gpu) {
                tracing::info!(gpu = %gpu, "GPU fault cleared");
            }
        }
        self.faults_logged = merged.faults.clone();
        for fault in &merged.unknown {
            if !self.unknown_logged.contains(fault) {
                tracing::error!(
                    index = fault.index,
                    fault = %fault_text(&fault.kind),
                    "a GPU that never answered cannot be advertised"
                );
            }
        }
        self.unknown_logged = merged.unknown.clone();
    }

    /// Plans from the current config and hardware. A plan that fails on new
    /// hardware keeps the previous plan serving (reported by `/readyz`).
    pub(super) fn replan(&mut self, now: Instant, fx: &mut Vec<Effect>) {
        let Some(inventory) = &self.hardware.inventory else {
            return;
        };
        let ready = |r: &str| self.mps_seen.contains(r);
        match prepare(
            &self.device_plugin_inventory(inventory),
            &self.config.settings,
            &self.config.file,
            &self.opts.control_nodes,
            &ready,
        ) {
            Ok(prepared) => {
                self.plan_error = None;
                self.apply_plan(prepared, now, fx);
            }
            Err(e) => {
                let e = e.to_string();
                if self.prepared.is_none() && self.config.settings.fail_on_init_error {
                    // As NVIDIA's plugin: a node that cannot be planned at
                    // start-up is fatal unless failOnInitError is false.
                    fx.push(Effect::Exit(e));
                    return;
                }
                if self.plan_error.as_deref() != Some(e.as_str()) {
                    tracing::error!(error = %e, "the node's GPUs cannot be planned with the current config; the previous plan keeps serving");
                }
                self.plan_error = Some(e);
                self.publish(fx);
            }
        }
    }

    pub(super) fn apply_plan(&mut self, prepared: Prepared, now: Instant, fx: &mut Vec<Effect>) {
        // With a CDI strategy, a plan is served only once its spec is on disk.
        let Some(prepared) = self.needs_spec(prepared, fx) else {
            return;
        };
        let pending: BTreeSet<String> = prepared.pending_mps.iter().cloned().collect();
        for name in pending.difference(&self.mps_waiting_logged) {
            let marker = mps_started_marker(&self.opts.mps_marker_root, name);
            tracing::info!(resource = %name, marker = %marker.display(), "waiting for the MPS control daemon to start before advertising");
        }
        // A resource that leaves the plan waits for its marker again if it comes back.
        let mps = mps_resources(&prepared);
        self.mps_seen.retain(|r| mps.contains(r));
        self.mps_ready.retain(|r| mps.contains(r));
        // Check the markers now unless a check is already scheduled.
        self.mps_check_at = if mps.is_empty() {
            None
        } else {
            Some(self.mps_check_at.unwrap_or(now))
        };
        self.mps_waiting_logged = pending;
        if prepared.resources.is_empty() {
            tracing::warn!(
                "no devices to advertise; waiting for a configuration or hardware change"
            );
        }
        let gone: Vec<String> = self
            .serving
            .keys()
            .filter(|name| !prepared.resources.contains_key(*name))
            .cloned()
            .collect();
        for name in gone {
            tracing::info!(resource = %name, "resource no longer planned; stopping it");
            self.serving.remove(&name);
            fx.push(Effect::StopServing { resource: name });
        }
        self.prepared = Some(prepared);
        self.publish(fx);
        let new: Vec<(String, String)> = self
            .prepared
            .iter()
            .flat_map(|d| d.resources.iter())
            .filter(|(name, _)| !self.serving.contains_key(*name))
            .map(|(name, planned)| (name.clone(), planned.resource.socket_name()))
            .collect();
        for (name, socket_name) in new {
            self.serving
                .insert(name.clone(), Serving::new(socket_name.clone()));
            fx.push(Effect::Serve {
                resource: name,
                socket_name,
            });
        }
    }

    /// Hands every resource its snapshot with the current health.
    pub(super) fn publish(&self, fx: &mut Vec<Effect>) {
        let Some(prepared) = &self.prepared else {
            return;
        };
        // An MPS resource whose control daemon went away keeps its capacity,
        // every device Unhealthy.
        let healthy = |resource: &str, d: &crate::resources::Device| {
            !self.mps_down(resource) && self.health.is_healthy(d)
        };
        for (resource, snapshot) in prepared.snapshots(&healthy) {
            fx.push(Effect::Publish { resource, snapshot });
        }
    }
}
