//! The DRA side of the running daemon: the loop hands over the inventory,
//! health and settings after every event ([`DraSide::update`], a no-op
//! unless the view changed); the publisher and the gRPC servers read the
//! view. [`Preparer`] answers NodePrepareResources / NodeUnprepareResources.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use serde_json::Value;
use tokio::sync::watch;

use super::claims::{ClaimError, allocated, check_uid};
use super::prepare::{cdi_id, claim_spec, prepared_claims, remove_claim_spec, write_claim_spec};
use super::publish::{ApiVersion, Publisher};
use super::server::Servers;
use super::slices::{DraDevice, SliceInput, dra_devices};
use super::{DraError, DraOptions};
use crate::config::Settings;
use crate::dra_v1 as v1;
use crate::gpu::{FaultKind, Inventory};
use crate::health::HealthModel;
use crate::resources::{Device, MigPlacement};

/// An API call of prepare that has not answered by then fails the claim.
const API_TIMEOUT: Duration = Duration::from_secs(10);
/// At most this many claims in one prepare or unprepare call.
const MAX_CLAIMS: usize = 1024;

/// What the DRA side serves now.
#[derive(Debug, Clone, PartialEq)]
pub struct View {
    pub input: SliceInput,
    /// The devices DRA owns (healthy or not).
    pub devices: Vec<DraDevice>,
    pub settings: Settings,
}

/// The unhealthy devices (GPU or MIG UUID → why) of the owned GPUs.
pub fn unhealthy(inventory: &Inventory, health: &HealthModel) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for gpu in &inventory.gpus {
        let base = Device {
            id: gpu.uuid.clone(),
            uuid: gpu.uuid.clone(),
            index: gpu.index.to_string(),
            gpu_uuid: gpu.uuid.clone(),
            gpu_index: gpu.index,
            mig: None,
            replica: None,
            numa_node: gpu.numa_node,
            paths: Vec::new(),
        };
        let reason = |d: &Device| {
            if health.is_healthy(d) {
                return None;
            }
            let mark = health
                .marks()
                .iter()
                .find(|(scope, _)| scope.covers(d))
                .map(|(_, m)| m.cause.clone());
            Some(match (health.gpu_fault(&d.gpu_uuid), mark) {
                (Some(kind), _) => kind.to_string(),
                (None, Some(cause)) => cause,
                (None, None) => health.node_failure().unwrap_or("unhealthy").to_string(),
            })
        };
        // A GPU in MIG mode is published as its MIG devices only.
        if !gpu.mig_enabled
            && let Some(r) = reason(&base)
        {
            out.insert(gpu.uuid.clone(), r);
        }
        for mig in &gpu.mig_devices {
            let d = Device {
                id: mig.uuid.clone(),
                uuid: mig.uuid.clone(),
                mig: Some(MigPlacement {
                    gpu_instance_id: mig.gpu_instance_id,
                    compute_instance_id: mig.compute_instance_id,
                }),
                ..base.clone()
            };
            if let Some(r) = reason(&d) {
                out.insert(mig.uuid.clone(), r);
            }
        }
    }
    out
}

/// Reads claims and writes their CDI specs.
pub struct Preparer {
    client: Client,
    version: ApiVersion,
    view: watch::Receiver<Option<Arc<View>>>,
}

impl Preparer {
    async fn read_claim(&self, claim: &v1::Claim) -> Result<Value, ClaimError> {
        let api = self.version.claims(self.client.clone(), &claim.namespace);
        let what = format!("{}/{}", claim.namespace, claim.name);
        let got = tokio::time::timeout(API_TIMEOUT, api.get_opt(&claim.name))
            .await
            .map_err(|_| ClaimError::Api {
                claim: what.clone(),
                error: format!("no answer in {API_TIMEOUT:?}"),
            })?
            .map_err(|e| ClaimError::Api {
                claim: what.clone(),
                error: e.to_string(),
            })?;
        let obj = got.ok_or(ClaimError::NotFound(what.clone()))?;
        serde_json::to_value(obj).map_err(|e| ClaimError::Api {
            claim: what,
            error: e.to_string(),
        })
    }

    async fn prepare_one(&self, claim: &v1::Claim) -> Result<Vec<v1::Device>, ClaimError> {
        check_uid(&claim.uid)?;
        let what = format!("{}/{}", claim.namespace, claim.name);
        let json = self.read_claim(claim).await?;
        let results = allocated(&json, &what, &claim.uid)?;
        let Some(view) = self.view.borrow().clone() else {
            return Err(ClaimError::Cdi {
                claim: what,
                error: "the node's devices are not known yet".into(),
            });
        };
        let by_name: HashMap<&str, &DraDevice> =
            view.devices.iter().map(|d| (d.name.as_str(), d)).collect();
        let mut devices = Vec::new();
        for r in &results {
            match by_name.get(r.device.as_str()) {
                Some(d) if r.pool == view.input.node => devices.push((*d).clone()),
                _ => {
                    return Err(ClaimError::UnknownDevice {
                        claim: what,
                        pool: r.pool.clone(),
                        device: r.device.clone(),
                    });
                }
            }
        }
        let uid = claim.uid.clone();
        let view2 = view.clone();
        let devices2 = devices.clone();
        let written = tokio::task::spawn_blocking(move || write_claim(&view2, &devices2, &uid))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r);
        written.map_err(|error| ClaimError::Cdi { claim: what, error })?;
        Ok(results
            .into_iter()
            .map(|r| v1::Device {
                cdi_device_ids: vec![cdi_id(&claim.uid, &r.device)],
                request_names: r.requests,
                pool_name: r.pool,
                device_name: r.device,
                share_id: r.share_id,
            })
            .collect())
    }

    /// NodePrepareResources: one answer per claim UID, an error per claim.
    pub async fn prepare(&self, claims: Vec<v1::Claim>) -> v1::NodePrepareResourcesResponse {
        let mut out = HashMap::new();
        for claim in claims.into_iter().take(MAX_CLAIMS) {
            let answer = match self.prepare_one(&claim).await {
                Ok(devices) => {
                    tracing::info!(claim = %format!("{}/{}", claim.namespace, claim.name), uid = %claim.uid, devices = devices.len(), "claim prepared");
                    v1::NodePrepareResourceResponse {
                        devices,
                        error: String::new(),
                    }
                }
                Err(e) => {
                    tracing::warn!(uid = %claim.uid, error = %e, "claim not prepared");
                    v1::NodePrepareResourceResponse {
                        devices: Vec::new(),
                        error: e.to_string(),
                    }
                }
            };
            out.insert(claim.uid, answer);
        }
        v1::NodePrepareResourcesResponse { claims: out }
    }

    /// NodeUnprepareResources: removes each claim's spec (absent: done).
    pub async fn unprepare(&self, claims: Vec<v1::Claim>) -> v1::NodeUnprepareResourcesResponse {
        let root = self
            .view
            .borrow()
            .as_ref()
            .map(|v| v.settings.cdi.root.clone());
        let mut out = HashMap::new();
        for claim in claims.into_iter().take(MAX_CLAIMS) {
            let error = match &root {
                None => "the node's settings are not known yet".to_string(),
                Some(root) => match check_uid(&claim.uid)
                    .map_err(|e| e.to_string())
                    .and_then(|()| remove_claim_spec(root, &claim.uid).map_err(|e| e.to_string()))
                {
                    Ok(()) => {
                        tracing::info!(uid = %claim.uid, "claim unprepared");
                        String::new()
                    }
                    Err(e) => e,
                },
            };
            out.insert(claim.uid, v1::NodeUnprepareResourceResponse { error });
        }
        v1::NodeUnprepareResourcesResponse { claims: out }
    }
}

/// Discovers the driver files for the claim's devices and writes its spec.
fn write_claim(view: &View, devices: &[DraDevice], uid: &str) -> Result<(), String> {
    let opts = crate::cdi::node::options(&view.settings);
    let cut = super::prepare::claim_inventory(&view.input.inventory, devices);
    let files =
        crate::cdi::discover(&cut, &opts.roots, Path::new("/sys")).map_err(|e| e.to_string())?;
    let spec = claim_spec(&view.input.inventory, devices, &files, &opts, uid)
        .map_err(|e| e.to_string())?;
    write_claim_spec(&view.settings.cdi.root, uid, &spec).map_err(|e| e.to_string())?;
    Ok(())
}

/// The running DRA side.
pub struct DraSide {
    node: String,
    options: DraOptions,
    tx: watch::Sender<Option<Arc<View>>>,
    publisher: Publisher,
    servers: Servers,
}

impl DraSide {
    /// Finds the API version, starts the publisher and serves the sockets.
    pub async fn start(
        client: Client,
        node: String,
        options: DraOptions,
    ) -> Result<Self, DraError> {
        let reg = super::registration_socket(&options.kubelet_dir);
        if std::os::unix::net::UnixStream::connect(&reg).is_ok() {
            return Err(DraError::InUse(reg.display().to_string()));
        }
        let version = ApiVersion::discover(&client).await;
        tracing::info!(api = %version.api_version(), node = %node, "DRA is on: this daemon publishes the node's ResourceSlices");
        let (tx, rx) = watch::channel(None);
        let publisher = Publisher::start(client.clone(), version.clone(), node.clone(), rx.clone());
        let preparer = Arc::new(Preparer {
            client,
            version,
            view: rx.clone(),
        });
        let servers = Servers::start(&options.kubelet_dir, preparer, rx)?;
        Ok(DraSide {
            node,
            options,
            tx,
            publisher,
            servers,
        })
    }

    /// Hands over the daemon's current state; the view is replaced (and
    /// published) only when it changed.
    pub fn update(
        &self,
        inventory: Option<&Inventory>,
        health: &HealthModel,
        settings: &Settings,
        metrics: &crate::metrics::Metrics,
    ) {
        let Some(inventory) = inventory else { return };
        let all_owned = self.options.devices.owned(inventory);
        // A lost GPU cannot be used at all: it leaves the slice (it comes
        // back when it answers again); other faults taint.
        let mut owned = all_owned.clone();
        owned.retain(|uuid| !is_lost(inventory, health, uuid));
        let unhealthy = unhealthy(inventory, health);
        self.tx.send_if_modified(|cur| {
            // Compared in place: the inventory is copied only when it changed.
            let same = cur.as_ref().is_some_and(|v| {
                v.input.inventory == *inventory
                    && v.input.owned == owned
                    && v.input.unhealthy == unhealthy
                    && v.settings == *settings
            });
            if !same {
                let first = cur.is_none();
                let devices = dra_devices(inventory, &owned);
                let owners: Vec<(String, bool)> = inventory
                    .gpus
                    .iter()
                    .map(|g| (g.uuid.clone(), all_owned.contains(&g.uuid)))
                    .collect();
                metrics.set_gpu_owners(&owners);
                if first {
                    let prepared = prepared_claims(&settings.cdi.root);
                    let dra: Vec<&str> = all_owned.iter().map(String::as_str).collect();
                    tracing::info!(
                        gpus = ?dra,
                        devices = devices.len(),
                        device_plugin_gpus = inventory.gpus.len().saturating_sub(all_owned.len()),
                        prepared_claims = prepared.len(),
                        "DRA serves these GPUs; the device plugin leaves them out"
                    );
                }
                let input = SliceInput {
                    node: self.node.clone(),
                    inventory: inventory.clone(),
                    owned,
                    unhealthy,
                    pcie_roots: pcie_roots(inventory),
                };
                *cur = Some(Arc::new(View {
                    input,
                    devices,
                    settings: settings.clone(),
                }));
            }
            !same
        });
    }

    /// Stops serving and publishing (the slices stay: the kubelet removes
    /// them when the plugin is gone for good).
    pub async fn shutdown(self) {
        self.servers.shutdown().await;
        self.publisher.shutdown().await;
    }
}

fn is_lost(inventory: &Inventory, health: &HealthModel, uuid: &str) -> bool {
    matches!(health.gpu_fault(uuid), Some(FaultKind::Lost))
        || inventory
            .faults
            .iter()
            .any(|f| f.kind == FaultKind::Lost && f.uuid.as_deref() == Some(uuid))
}

/// The PCIe root of each GPU from sysfs (`/sys/bus/pci/devices/<bus>`
/// resolves to `/sys/devices/pci<domain>:<bus>/…`); absent ones are unknown.
fn pcie_roots(inventory: &Inventory) -> BTreeMap<String, String> {
    inventory
        .gpus
        .iter()
        .filter_map(|g| {
            let real = std::fs::canonicalize(Path::new("/sys/bus/pci/devices").join(&g.pci_bus_id))
                .ok()?;
            let root = real
                .components()
                .filter_map(|c| c.as_os_str().to_str())
                .find(|c| c.starts_with("pci") && c.len() > 3)?
                .to_string();
            Some((g.pci_bus_id.clone(), root))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::{EventKind, HealthEvent};

    fn h100() -> Inventory {
        crate::gpu::simulated::parse_node(
            include_str!("../../../../config/nodes/h100-mig.yaml"),
            "h100",
        )
        .unwrap()
        .inventory
    }

    fn xid(gpu: &str, gi: Option<u32>) -> HealthEvent {
        HealthEvent {
            gpu_uuid: gpu.into(),
            kind: EventKind::Xid(79),
            gpu_instance_id: gi,
            compute_instance_id: None,
        }
    }

    #[test]
    fn a_mig_event_marks_its_mig_device_and_a_gpu_event_all_of_the_gpu() {
        let inv = h100();
        let gpu0 = &inv.gpus[0];
        let mut health = HealthModel::new(None);
        assert!(unhealthy(&inv, &health).is_empty());
        health.mark(&xid(&gpu0.uuid, Some(9)), std::time::Instant::now());
        let bad = unhealthy(&inv, &health);
        let mig9 = gpu0
            .mig_devices
            .iter()
            .find(|m| m.gpu_instance_id == 9)
            .unwrap();
        assert_eq!(bad.keys().collect::<Vec<_>>(), [&mig9.uuid]);
        assert_eq!(bad[&mig9.uuid], "XID 79");
        let gpu4 = &inv.gpus[4];
        health.mark(&xid(&gpu4.uuid, None), std::time::Instant::now());
        let bad = unhealthy(&inv, &health);
        assert!(bad.contains_key(&gpu4.uuid));
        assert_eq!(bad.len(), 2);
    }

    #[test]
    fn the_health_message_names_each_device_in_the_nodes_pool() {
        let inv = h100();
        let owned = inv.gpus.iter().map(|g| g.uuid.clone()).collect();
        let devices = dra_devices(&inv, &owned);
        let mut unhealthy = BTreeMap::new();
        unhealthy.insert(inv.gpus[5].uuid.clone(), "XID 79".to_string());
        let msg = super::super::server::health_message("n1", &devices, &unhealthy);
        assert_eq!(msg.devices.len(), devices.len());
        let gpu5 = msg
            .devices
            .iter()
            .find(|d| d.device.as_ref().unwrap().device_name == "gpu-5")
            .unwrap();
        assert_eq!(
            gpu5.health,
            crate::dra_health_v1alpha1::HealthStatus::Unhealthy as i32
        );
        assert_eq!(gpu5.message, "XID 79");
        assert_eq!(gpu5.device.as_ref().unwrap().pool_name, "n1");
        let healthy = msg
            .devices
            .iter()
            .filter(|d| d.health == crate::dra_health_v1alpha1::HealthStatus::Healthy as i32)
            .count();
        assert_eq!(healthy, devices.len() - 1);
    }
}
