//! The metric families and their labels, registered under the
//! `gpu_device_plugin_` prefix.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use super::PREFIX;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ResourceLabel {
    pub resource: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct DevicesLabel {
    pub resource: String,
    pub health: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct RpcLabel {
    pub resource: String,
    pub method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ResultLabel {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct HealthLabel {
    pub xid: String,
    pub action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct OwnerLabel {
    pub uuid: String,
    pub owner: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ConfigLabel {
    pub config: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct WatchLabel {
    pub watch: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct BuildLabel {
    pub version: &'static str,
}

type RpcHistograms = Family<RpcLabel, Histogram, fn() -> Histogram>;

fn rpc_histogram() -> Histogram {
    // 10 µs … about 2.4 s.
    Histogram::new(exponential_buckets(0.000_01, 2.5, 12))
}

pub(super) struct Families {
    pub devices: Family<DevicesLabel, Gauge>,
    pub rpc_requests: Family<RpcLabel, Counter>,
    pub rpc_errors: Family<RpcLabel, Counter>,
    pub rpc_duration: RpcHistograms,
    pub streams: Family<ResourceLabel, Gauge>,
    pub registrations: Family<ResourceLabel, Counter>,
    pub kubelet_restarts: Counter,
    pub reloads: Family<ResultLabel, Counter>,
    pub last_rejected: Gauge,
    pub health_events: Family<HealthLabel, Counter>,
    pub nvml_errors: Counter,
    pub inventory_reads: Family<ResultLabel, Counter>,
    pub recovery_probes: Family<ResultLabel, Counter>,
    pub config_selected: Family<ConfigLabel, Gauge>,
    pub kube_api_up: Family<WatchLabel, Gauge>,
    pub kube_api_errors: Counter,
    pub gpu_owner: Family<OwnerLabel, Gauge>,
}

pub(super) fn registered() -> (Registry, Families) {
    let families = Families {
        devices: Family::default(),
        rpc_requests: Family::default(),
        rpc_errors: Family::default(),
        rpc_duration: Family::new_with_constructor(rpc_histogram),
        streams: Family::default(),
        registrations: Family::default(),
        kubelet_restarts: Counter::default(),
        reloads: Family::default(),
        last_rejected: Gauge::default(),
        health_events: Family::default(),
        nvml_errors: Counter::default(),
        inventory_reads: Family::default(),
        recovery_probes: Family::default(),
        config_selected: Family::default(),
        kube_api_up: Family::default(),
        kube_api_errors: Counter::default(),
        gpu_owner: Family::default(),
    };
    let mut registry = Registry::with_prefix(PREFIX);
    let f = &families;
    registry.register(
        "build",
        "Version of this plugin",
        Info::new(BuildLabel {
            version: env!("CARGO_PKG_VERSION"),
        }),
    );
    registry.register(
        "devices",
        "Devices advertised per resource and health",
        f.devices.clone(),
    );
    registry.register(
        "rpc_requests",
        "Allocate and GetPreferredAllocation calls per resource",
        f.rpc_requests.clone(),
    );
    registry.register(
        "rpc_errors",
        "Allocate and GetPreferredAllocation calls answered with an error",
        f.rpc_errors.clone(),
    );
    registry.register_with_unit(
        "rpc_duration",
        "Time spent answering Allocate and GetPreferredAllocation",
        Unit::Seconds,
        f.rpc_duration.clone(),
    );
    registry.register(
        "list_and_watch_streams",
        "ListAndWatch streams open per resource",
        f.streams.clone(),
    );
    registry.register(
        "registrations",
        "Successful registrations with the kubelet per resource",
        f.registrations.clone(),
    );
    registry.register(
        "kubelet_restarts",
        "Times kubelet.sock was (re)created while the plugin ran",
        f.kubelet_restarts.clone(),
    );
    registry.register(
        "config_reloads",
        "Configuration reloads by result (ok, rejected)",
        f.reloads.clone(),
    );
    registry.register(
        "config_last_rejected_reload_timestamp_seconds",
        "Unix time of the last rejected configuration reload (0: none)",
        f.last_rejected.clone(),
    );
    registry.register(
        "health_events",
        "GPU health events by XID and the action taken",
        f.health_events.clone(),
    );
    registry.register(
        "nvml_errors",
        "NVML calls that failed",
        f.nvml_errors.clone(),
    );
    registry.register(
        "inventory_reads",
        "GPU inventory reads (start, rescans, node-file changes) by result (ok, error)",
        f.inventory_reads.clone(),
    );
    registry.register(
        "recovery_probes",
        "Probes of a GPU whose devices were marked unhealthy, by result (fit, not_fit, failed)",
        f.recovery_probes.clone(),
    );
    registry.register(
        "config_selected",
        "1 for the named config the node label selected (per-node configuration)",
        f.config_selected.clone(),
    );
    registry.register(
        "kube_api_up",
        "1 while the API watch (watch=node: this node's labels) answers, 0 while it fails; absent when not watching",
        f.kube_api_up.clone(),
    );
    registry.register(
        "kube_api_errors",
        "Failed attempts of the watch of this node's labels (each retried with backoff)",
        f.kube_api_errors.clone(),
    );
    registry.register(
        "gpu_owner",
        "1 per GPU with who serves it (owner=dra: DRA ResourceSlices, owner=device-plugin: the device plugin's resources); present only with --dra",
        f.gpu_owner.clone(),
    );
    (registry, families)
}
