//! The fake kubelet: devkit's `LocalKubelet` (Registration server that
//! dials plugins back and follows ListAndWatch) in its own temp directory.

use std::path::{Path, PathBuf};

use devkit::kubelet::{KubeletView, LocalKubelet, SeenResource};
use tempfile::TempDir;

/// What the fake kubelet has seen (for tests that name the type).
pub type View = KubeletView;

/// A temp socket directory with a kubelet serving in it (or not, yet).
pub struct FakeKubelet {
    pub dir: TempDir,
    pub kubelet: Option<LocalKubelet>,
}

impl FakeKubelet {
    /// A directory with a running kubelet.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let kubelet = LocalKubelet::start(dir.path()).expect("kubelet starts");
        FakeKubelet {
            dir,
            kubelet: Some(kubelet),
        }
    }

    /// A directory whose kubelet has not started yet.
    pub fn absent() -> Self {
        FakeKubelet {
            dir: tempfile::tempdir().expect("tempdir"),
            kubelet: None,
        }
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("kubelet.sock")
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn get(&self) -> &LocalKubelet {
        self.kubelet.as_ref().expect("kubelet is running")
    }

    /// Stops the kubelet (removing kubelet.sock) and starts a new one, which
    /// deletes every socket in the directory first, as a restarted kubelet does.
    pub async fn restart(&mut self) {
        if let Some(k) = self.kubelet.take() {
            k.stop().await;
        }
        self.kubelet = Some(LocalKubelet::start(self.dir.path()).expect("kubelet restarts"));
    }

    /// Starts the kubelet in a directory that had none.
    pub fn start_now(&mut self) {
        self.kubelet = Some(LocalKubelet::start(self.dir.path()).expect("kubelet starts"));
    }
}

impl FakeKubelet {
    /// Waits until `resource` is seen and `pred` holds for it; panics with the
    /// plugin's log on timeout.
    pub async fn wait_resource(
        &self,
        plugin: &super::process::Plugin,
        resource: &str,
        pred: impl Fn(&SeenResource) -> bool,
    ) -> KubeletView {
        self.get()
            .wait_for(super::WAIT, |v| {
                v.resources.get(resource).is_some_and(&pred)
            })
            .await
            .unwrap_or_else(|e| panic!("{resource}: {e}; log:\n{}", plugin.log()))
    }

    /// Waits until `resource` has exactly `n` devices.
    pub async fn wait_devices(
        &self,
        plugin: &super::process::Plugin,
        resource: &str,
        n: usize,
    ) -> KubeletView {
        self.wait_resource(plugin, resource, |r| r.devices.len() == n)
            .await
    }
}
