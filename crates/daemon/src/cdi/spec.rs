//! The CDI spec as data: the structs NVIDIA's nvcdi marshals (same field
//! names and order, so the JSON is byte-for-byte the shape it writes), the
//! minimum `cdiVersion` a spec's content needs, and the compact JSON text.

use serde::Serialize;

/// One CDI spec file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    pub cdi_version: String,
    /// `<vendor>/<class>`.
    pub kind: String,
    pub devices: Vec<Device>,
    /// Edits applied once for any device of the spec (always emitted, even empty).
    pub container_edits: ContainerEdits,
}

/// One named device of a spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    pub name: String,
    pub container_edits: ContainerEdits,
}

/// What the runtime changes in the container (OCI edits).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerEdits {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_nodes: Vec<DeviceNode>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<Hook>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<Mount>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub additional_gids: Vec<u32>,
}

impl ContainerEdits {
    pub fn is_empty(&self) -> bool {
        self.env.is_empty()
            && self.device_nodes.is_empty()
            && self.hooks.is_empty()
            && self.mounts.is_empty()
            && self.additional_gids.is_empty()
    }
}

/// A device node to create in the container.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceNode {
    /// Path in the container.
    pub path: String,
    /// Path on the host, when it differs from `path`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub host_path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub major: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minor: Option<i64>,
    /// Permission bits of the host node (e.g. 438 = 0666).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_mode: Option<u32>,
    pub permissions: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
}

/// A bind mount.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Mount {
    pub host_path: String,
    pub container_path: String,
    pub options: Vec<String>,
}

/// An OCI hook.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Hook {
    pub hook_name: String,
    pub path: String,
    pub args: Vec<String>,
    pub env: Vec<String>,
}

/// The versions nvcdi's minimum-version rule can choose.
const V030: &str = "0.3.0";
const V050: &str = "0.5.0";
const V070: &str = "0.7.0";

impl Spec {
    /// The lowest `cdiVersion` this content needs (CDI's `requiredVersion`
    /// for the fields this generator emits): a device name starting with a
    /// digit or any `hostPath` needs 0.5.0, `additionalGids` 0.7.0.
    pub fn minimum_version(&self) -> &'static str {
        let all_edits = || {
            std::iter::once(&self.container_edits)
                .chain(self.devices.iter().map(|d| &d.container_edits))
        };
        if all_edits().any(|e| !e.additional_gids.is_empty()) {
            return V070;
        }
        let digit_name = self
            .devices
            .iter()
            .any(|d| d.name.starts_with(|c: char| c.is_ascii_digit()));
        let host_path = all_edits()
            .flat_map(|e| e.device_nodes.iter())
            .any(|n| !n.host_path.is_empty());
        if digit_name || host_path {
            return V050;
        }
        V030
    }

    /// Compact JSON as Go's encoding/json writes it (no indentation, no
    /// trailing newline).
    pub fn to_json(&self) -> String {
        // Serializing these plain structs cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}
