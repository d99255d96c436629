//! Prometheus metrics, liveness and readiness of the daemon. `Metrics` is a
//! cheap-to-clone handle (everything behind `Arc`); its methods only touch
//! atomics or short mutexes and never block. The RPC paths use per-resource
//! handles (`RpcMetrics`) resolved once per server, so they do no label
//! lookups or allocation per call. The HTTP side lives in `http.rs`.

mod families;
pub mod format;
mod http;
mod readiness;
mod rpc;

pub use http::{MetricsError, MetricsServer, parse_listen_address, serve};
pub use readiness::{Readiness, ReadyState};
pub use rpc::{Method, RpcMetrics, StreamGuard};

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::registry::Registry;

use families::{
    ConfigLabel, DevicesLabel, Families, HealthLabel, ResourceLabel, ResultLabel, RpcLabel,
    WatchLabel,
};

/// Prefix of every metric name.
pub const PREFIX: &str = "gpu_device_plugin";

struct Inner {
    registry: Registry,
    families: Families,
    ready: Mutex<ReadyState>,
    /// Problems reported by parts outside the state machine (the node
    /// label's config selection), by source.
    problems: Mutex<BTreeMap<&'static str, String>>,
    loops: Mutex<BTreeMap<&'static str, bool>>,
    usage: crate::usage::Store,
}

/// The daemon's metrics and health state. Clone freely.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Self {
        let (registry, families) = families::registered();
        Metrics {
            inner: Arc::new(Inner {
                registry,
                families,
                ready: Mutex::default(),
                problems: Mutex::default(),
                loops: Mutex::default(),
                usage: crate::usage::Store::default(),
            }),
        }
    }

    fn f(&self) -> &Families {
        &self.inner.families
    }

    /// Per-resource handles for one gRPC server; resolve once, use per call.
    pub fn rpc(&self, resource: &str) -> RpcMetrics {
        let label = |method: Method| RpcLabel {
            resource: resource.to_string(),
            method: method.as_str(),
        };
        let f = self.f();
        let one = |m: Method| {
            (
                f.rpc_requests.get_or_create_owned(&label(m)),
                f.rpc_errors.get_or_create_owned(&label(m)),
                f.rpc_duration.get_or_create_owned(&label(m)),
            )
        };
        let streams = f.streams.get_or_create_owned(&ResourceLabel {
            resource: resource.to_string(),
        });
        RpcMetrics::new(
            one(Method::Allocate),
            one(Method::GetPreferredAllocation),
            streams,
        )
        .with_usage(self.inner.usage.clone())
    }

    /// The usage samples and attribution `/metrics` renders.
    pub fn usage(&self) -> &crate::usage::Store {
        &self.inner.usage
    }

    /// A registration of `resource` with the kubelet succeeded.
    pub fn registered(&self, resource: &str) {
        self.f()
            .registrations
            .get_or_create(&ResourceLabel {
                resource: resource.to_string(),
            })
            .inc();
    }

    /// `kubelet.sock` was (re)created.
    pub fn kubelet_restart(&self) {
        self.f().kubelet_restarts.inc();
    }

    /// A configuration reload was applied (`true`) or rejected (`false`).
    pub fn reload(&self, ok: bool) {
        let result = if ok { "ok" } else { "rejected" };
        self.f()
            .reloads
            .get_or_create(&ResultLabel { result })
            .inc();
        if !ok {
            self.f().last_rejected.set(unix_now());
        }
    }

    /// A health event with this XID led to `action` (e.g. `unhealthy`, `ignored`).
    pub fn health_event(&self, xid: u64, action: &str) {
        self.f()
            .health_events
            .get_or_create(&HealthLabel {
                xid: xid.to_string(),
                action: action.to_string(),
            })
            .inc();
    }

    /// An inventory read ended (`true`: it answered).
    pub fn inventory_read(&self, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.f()
            .inventory_reads
            .get_or_create(&ResultLabel { result })
            .inc();
    }

    /// A recovery probe ended with `result` (`fit`, `not_fit`, `failed`).
    pub fn recovery_probe(&self, result: &'static str) {
        self.f()
            .recovery_probes
            .get_or_create(&ResultLabel { result })
            .inc();
    }

    /// An NVML call failed.
    pub fn nvml_error(&self) {
        self.f().nvml_errors.inc();
    }

    /// Sets the device gauges of one resource.
    pub fn set_devices(&self, resource: &str, total: usize, healthy: usize) {
        let gauge = |health| {
            self.f().devices.get_or_create_owned(&DevicesLabel {
                resource: resource.to_string(),
                health,
            })
        };
        gauge("healthy").set(saturating_i64(healthy));
        gauge("unhealthy").set(saturating_i64(total.saturating_sub(healthy)));
    }

    /// Forgets a resource that is no longer served.
    pub fn remove_resource(&self, resource: &str) {
        let f = self.f();
        for health in ["healthy", "unhealthy"] {
            f.devices.remove(&DevicesLabel {
                resource: resource.to_string(),
                health,
            });
        }
        f.streams.remove(&ResourceLabel {
            resource: resource.to_string(),
        });
    }

    /// What readiness is computed from, as the daemon's state says now.
    pub fn set_ready(&self, state: ReadyState) {
        *lock(&self.inner.ready) = state;
    }

    /// Current readiness, with the reasons when not ready.
    pub fn readiness(&self) -> Readiness {
        let mut state = lock(&self.inner.ready).clone();
        state
            .problems
            .extend(lock(&self.inner.problems).values().cloned());
        state.readiness()
    }

    /// Sets (`Some`) or clears (`None`) a readiness problem of `source`.
    pub fn set_problem(&self, source: &'static str, problem: Option<String>) {
        let mut problems = lock(&self.inner.problems);
        match problem {
            Some(p) => problems.insert(source, p),
            None => problems.remove(source),
        };
    }

    /// The node-label watch answered (`true`) or failed one attempt (`false`).
    pub fn kube_api(&self, ok: bool) {
        self.f()
            .kube_api_up
            .get_or_create(&WatchLabel { watch: "node" })
            .set(i64::from(ok));
        if !ok {
            self.f().kube_api_errors.inc();
        }
    }

    /// Who serves each GPU (`dra` or `device-plugin`), replacing the last set.
    pub fn set_gpu_owners(&self, owners: &[(String, bool)]) {
        let f = self.f();
        f.gpu_owner.clear();
        for (uuid, dra) in owners {
            let owner = if *dra { "dra" } else { "device-plugin" };
            f.gpu_owner
                .get_or_create(&families::OwnerLabel {
                    uuid: uuid.clone(),
                    owner,
                })
                .set(1);
        }
    }

    /// The named config now selected by the node label (`None`: the empty config).
    pub fn set_config_selected(&self, name: Option<&str>) {
        let f = self.f();
        f.config_selected.clear();
        if let Some(config) = name {
            f.config_selected
                .get_or_create(&ConfigLabel {
                    config: config.to_string(),
                })
                .set(1);
        }
    }

    /// Marks a long-lived loop alive until the returned guard is dropped;
    /// `/healthz` fails once any marked loop has ended.
    pub fn alive(&self, name: &'static str) -> LoopGuard {
        lock(&self.inner.loops).insert(name, true);
        LoopGuard {
            metrics: self.clone(),
            name,
        }
    }

    /// Names of loops that have ended (empty while healthy).
    pub fn dead_loops(&self) -> Vec<&'static str> {
        lock(&self.inner.loops)
            .iter()
            .filter(|(_, alive)| !**alive)
            .map(|(name, _)| *name)
            .collect()
    }

    /// The metrics in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        if let Err(e) =
            prometheus_client::encoding::text::encode_registry(&mut out, &self.inner.registry)
        {
            tracing::warn!(error = %e, "cannot encode metrics");
        }
        out.push_str(&self.inner.usage.render());
        if let Err(e) = prometheus_client::encoding::text::encode_eof(&mut out) {
            tracing::warn!(error = %e, "cannot encode metrics");
        }
        out
    }

    /// The metrics in `format`.
    pub fn encode_as(&self, format: format::Format) -> String {
        match format {
            format::Format::OpenMetrics => self.encode(),
            format::Format::PrometheusText => format::to_prometheus_text(&self.encode()),
        }
    }
}

/// A new `Metrics`, served over HTTP when `address` is given. The server
/// runs until the returned `MetricsServer` is dropped.
pub async fn start(
    address: Option<&str>,
) -> Result<(Metrics, Option<MetricsServer>), MetricsError> {
    let metrics = Metrics::new();
    let server = match address {
        Some(address) => Some(serve(address, metrics.clone()).await?),
        None => None,
    };
    Ok((metrics, server))
}

/// Keeps a loop marked alive; see [`Metrics::alive`].
pub struct LoopGuard {
    metrics: Metrics,
    name: &'static str,
}

impl Drop for LoopGuard {
    fn drop(&mut self) {
        lock(&self.metrics.inner.loops).insert(self.name, false);
    }
}

/// Locks a mutex, recovering the data if a holder panicked (the state is
/// plain data, always consistent between statements).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn saturating_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
