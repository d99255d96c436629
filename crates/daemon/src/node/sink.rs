//! Where GPU feature labels are written: NFD's `features.d` file (atomic
//! replace, removed on exit) or an NFD `NodeFeature` object in the daemon's
//! namespace (get, then create or update; never deleted by us, so a
//! restart does not drop the node's labels; the owner reference to the pod
//! lets the garbage collector remove it with the pod's DaemonSet).

use std::io::Write;
use std::path::{Path, PathBuf};

use kube::api::{ObjectMeta, PostParams};
use kube::core::{ApiResource, DynamicObject};
use kube::{Api, Client};
use serde_json::json;

use super::labels::Labels;

/// The NodeFeature object's API (NFD `nfd.k8s-sigs.io/v1alpha1`).
pub fn node_feature_resource() -> ApiResource {
    ApiResource {
        group: "nfd.k8s-sigs.io".into(),
        version: "v1alpha1".into(),
        api_version: "nfd.k8s-sigs.io/v1alpha1".into(),
        kind: "NodeFeature".into(),
        plural: "nodefeatures".into(),
    }
}

/// GFD's object name for a node.
pub fn node_feature_name(node: &str) -> String {
    format!("nvidia-features-for-{node}")
}

/// The file's content: one `key=value` line per label, sorted by key.
pub fn file_content(labels: &Labels) -> String {
    labels.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
}

/// Replaces `path` atomically (a temporary file in the same directory,
/// synced, then renamed over it), mode 0644.
pub fn write_atomic(path: &Path, content: &str) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("gfd");
    let tmp: PathBuf = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(content.as_bytes())?;
        f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The NodeFeature writer of one node.
pub struct NodeFeatureSink {
    api: Api<DynamicObject>,
    name: String,
    node: String,
    owner: Option<(String, String)>,
}

impl NodeFeatureSink {
    /// `owner`: the pod's (name, uid), when both are known.
    pub fn new(
        client: Client,
        namespace: &str,
        node: &str,
        owner: Option<(String, String)>,
    ) -> Self {
        NodeFeatureSink {
            api: Api::namespaced_with(client, namespace, &node_feature_resource()),
            name: node_feature_name(node),
            node: node.to_string(),
            owner,
        }
    }

    /// The object as it should be.
    pub fn desired(&self, labels: &Labels) -> DynamicObject {
        let owner_references = self.owner.as_ref().map(|(name, uid)| {
            vec![
                k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
                    api_version: "v1".into(),
                    kind: "Pod".into(),
                    name: name.clone(),
                    uid: uid.clone(),
                    ..Default::default()
                },
            ]
        });
        let mut obj = DynamicObject::new(&self.name, &node_feature_resource()).data(json!({
            "spec": {
                "features": {"flags": {}, "attributes": {}, "instances": {}},
                "labels": labels,
            }
        }));
        obj.metadata = ObjectMeta {
            name: Some(self.name.clone()),
            labels: Some(
                [(
                    "nfd.node.kubernetes.io/node-name".to_string(),
                    self.node.clone(),
                )]
                .into(),
            ),
            owner_references,
            ..ObjectMeta::default()
        };
        obj
    }

    /// Makes the object carry `labels`: create when absent, update when it
    /// differs, nothing otherwise. Returns whether anything was written.
    pub async fn apply(&self, labels: &Labels) -> Result<bool, kube::Error> {
        let mut want = self.desired(labels);
        match self.api.get_opt(&self.name).await? {
            None => {
                self.api.create(&PostParams::default(), &want).await?;
                Ok(true)
            }
            Some(current) => {
                let same = current.data.get("spec") == want.data.get("spec")
                    && current.metadata.labels == want.metadata.labels
                    && current.metadata.owner_references == want.metadata.owner_references;
                if same {
                    return Ok(false);
                }
                want.metadata.resource_version = current.metadata.resource_version;
                self.api
                    .replace(&self.name, &PostParams::default(), &want)
                    .await?;
                Ok(true)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_sorted_key_value_lines() {
        let labels: Labels = [("nvidia.com/gpu.count", "8"), ("nvidia.com/gpu.a", "x")]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .into();
        assert_eq!(
            file_content(&labels),
            "nvidia.com/gpu.a=x\nnvidia.com/gpu.count=8\n"
        );
    }

    #[test]
    fn write_atomic_replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gfd");
        write_atomic(&path, "a=1\n").unwrap();
        write_atomic(&path, "a=2\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a=2\n");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("gfd")]);
    }
}
