//! The daemon's node features, started before anything is served: the API
//! client (only when a feature needs it), per-node config selection (which
//! file the shell reads on each reload) and the GPU feature label publisher.

use tokio::sync::mpsc;

use super::state::Event;
use super::{DaemonConfig, DaemonError};
use crate::dra::DraError;
use crate::dra::side::DraSide;
use crate::metrics::Metrics;
use crate::node::client::make_client;
use crate::node::features::{Features, Writer};
use crate::node::selector::{self, ConfigSlot, Selection};
use crate::node::sink::NodeFeatureSink;
use crate::node::{FeatureSink, NodeError, NodeOptions};

pub struct NodeSide {
    /// The config file the next reload reads.
    pub slot: ConfigSlot,
    pub features: Option<Features>,
    /// The DRA kubelet plugin, when on.
    pub dra: Option<DraSide>,
    selection: Option<Selection>,
}

impl NodeSide {
    /// Starts what `node` turns on. With per-node config the selected file
    /// replaces `cfg.config_file` (which is then ignored, and not watched).
    pub async fn start(
        cfg: &mut DaemonConfig,
        node: &NodeOptions,
        metrics: &Metrics,
        tx: &mpsc::UnboundedSender<Event>,
    ) -> Result<Self, DaemonError> {
        let client = if node.needs_api() {
            if node.node_name.is_none() {
                return Err(NodeError::NoNodeName.into());
            }
            Some(make_client(node.kubeconfig.as_deref()).await?)
        } else {
            None
        };
        let mut side = NodeSide {
            slot: ConfigSlot::new(cfg.config_file.clone()),
            features: None,
            dra: None,
            selection: None,
        };
        if let (Some(dir), Some(client)) = (&node.config_dir, &client) {
            if let Some(file) = cfg.config_file.take() {
                tracing::info!(ignored = %file.display(), dir = %dir.display(), "per-node config is on: the config file comes from the config directory");
            }
            let tx = tx.clone();
            let selection = selector::start(client.clone(), node, metrics.clone(), move || {
                let _ = tx.send(Event::ConfigFileChanged);
            })
            .await?;
            side.slot = selection.slot.clone();
            side.selection = Some(selection);
        }
        side.features = match (node.feature_labels, &client, &node.node_name) {
            (FeatureSink::None, _, _) => None,
            (FeatureSink::File, _, _) => {
                Some(Features::start(Writer::File(node.feature_file.clone())))
            }
            (FeatureSink::NodeFeature, Some(client), Some(name)) => {
                let owner = node.pod_name.clone().zip(node.pod_uid.clone());
                if owner.is_none() {
                    tracing::info!(
                        "POD_NAME or POD_UID unknown: the NodeFeature object gets no owner and stays after the plugin is removed"
                    );
                }
                let sink = NodeFeatureSink::new(client.clone(), &node.namespace, name, owner);
                Some(Features::start(Writer::NodeFeature(Box::new(sink))))
            }
            (FeatureSink::NodeFeature, _, _) => return Err(NodeError::NoNodeName.into()),
        };
        if let (Some(dra), Some(client)) = (&node.dra, &client) {
            let name = node
                .node_name
                .clone()
                .ok_or(NodeError::from(DraError::NoNodeName))?;
            side.dra = Some(
                DraSide::start(client.clone(), name, dra.clone())
                    .await
                    .map_err(NodeError::from)?,
            );
        }
        Ok(side)
    }

    /// Stops the label watch and the publisher (removing a features file).
    pub async fn shutdown(self) {
        drop(self.selection);
        if let Some(dra) = self.dra {
            dra.shutdown().await;
        }
        if let Some(features) = self.features {
            features.shutdown().await;
        }
    }
}
