//! Watching directories (inotify through notify), the one place the daemon
//! does it: a file changing the way ConfigMap volumes change it, and files
//! appearing in or leaving the device-plugin socket directory.
//!
//! A file is watched through its directory (a ConfigMap update swaps the
//! `..data` symlink and never touches the file's own name), reporting any
//! event on the file's name or on `..data`. Watching the file itself would
//! miss every update after the first.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind, RenameMode};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// The symlink a ConfigMap volume swaps on every update.
const CONFIGMAP_DATA: &str = "..data";

/// True for events that may mean new content (not our own reads).
fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// Calls `on_change` (on the watcher's thread) whenever `file` may have
/// changed. Keep the returned watcher alive for as long as changes are wanted.
pub fn on_file_change(
    file: &Path,
    on_change: impl Fn() + Send + 'static,
) -> notify::Result<RecommendedWatcher> {
    let dir: PathBuf = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name: Option<OsString> = file.file_name().map(|n| n.to_os_string());
    on_dir_event(&dir, move |event| {
        if !is_change(&event.kind) {
            return;
        }
        let relevant = event.paths.iter().any(|p| {
            let n = p.file_name();
            n == name.as_deref() || n == Some(std::ffi::OsStr::new(CONFIGMAP_DATA))
        });
        if relevant {
            on_change();
        }
    })
}

/// Calls `on_change` (on the watcher's thread) whenever anything in `dir`
/// (not below it) may have changed: a file written, added, removed or
/// renamed, or a ConfigMap's `..data` swapped. Reads are not changes.
pub fn on_any_change(
    dir: &Path,
    on_change: impl Fn() + Send + 'static,
) -> notify::Result<RecommendedWatcher> {
    on_dir_event(dir, move |event| {
        if is_change(&event.kind) {
            on_change();
        }
    })
}

/// Calls `on_event` (on the watcher's thread) for every event in `dir`, not
/// below it; watch errors are logged. Keep the returned watcher alive for as
/// long as events are wanted.
fn on_dir_event(
    dir: &Path,
    on_event: impl Fn(notify::Event) + Send + 'static,
) -> notify::Result<RecommendedWatcher> {
    let mut watcher =
        notify::recommended_watcher(move |res: notify::Result<notify::Event>| match res {
            Ok(event) => on_event(event),
            Err(e) => tracing::warn!(error = %e, "directory watch error"),
        })?;
    watcher.watch(dir, RecursiveMode::NonRecursive)?;
    Ok(watcher)
}

/// A file appearing in or leaving a watched directory, by file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirEvent {
    Created(String),
    Removed(String),
}

/// Starts watching `dir` for files appearing and leaving (the kubelet
/// recreating `kubelet.sock`, a plugin's socket deleted). Keep the returned
/// watcher alive as long as events are wanted.
pub fn watch_dir(
    dir: &Path,
) -> notify::Result<(RecommendedWatcher, mpsc::UnboundedReceiver<DirEvent>)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let watcher = on_dir_event(dir, move |event| {
        let make: fn(String) -> DirEvent = match event.kind {
            EventKind::Create(_) | EventKind::Modify(ModifyKind::Name(RenameMode::To)) => {
                DirEvent::Created
            }
            EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(RenameMode::From)) => {
                DirEvent::Removed
            }
            _ => return,
        };
        for path in event.paths {
            if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
                let _ = tx.send(make(name.to_string()));
            }
        }
    })?;
    Ok((watcher, rx))
}

/// Sends `tag` on `tx` whenever `file` may have changed.
pub fn watch_file<T: Clone + Send + 'static>(
    file: &Path,
    tag: T,
    tx: mpsc::UnboundedSender<T>,
) -> notify::Result<RecommendedWatcher> {
    on_file_change(file, move || {
        let _ = tx.send(tag.clone());
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn next(rx: &mut mpsc::UnboundedReceiver<u8>) -> Option<u8> {
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .ok()
            .flatten()
    }

    /// Lays out a ConfigMap volume like the kubelet's AtomicWriter.
    fn configmap_update(dir: &Path, ts: &str, content: &str) {
        let ts_dir = dir.join(ts);
        std::fs::create_dir(&ts_dir).unwrap();
        std::fs::write(ts_dir.join("config.yaml"), content).unwrap();
        let tmp = dir.join("..data_tmp");
        std::os::unix::fs::symlink(ts, &tmp).unwrap();
        std::fs::rename(&tmp, dir.join("..data")).unwrap();
    }

    #[tokio::test]
    async fn every_configmap_symlink_swap_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        configmap_update(dir.path(), "..ts1", "a");
        std::os::unix::fs::symlink("..data/config.yaml", dir.path().join("config.yaml")).unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let _w = watch_file(&dir.path().join("config.yaml"), 1u8, tx).unwrap();
        for (i, ts) in ["..ts2", "..ts3"].iter().enumerate() {
            configmap_update(dir.path(), ts, &format!("v{i}"));
            assert_eq!(next(&mut rx).await, Some(1), "update {ts}");
            while rx.try_recv().is_ok() {}
        }
    }

    #[tokio::test]
    async fn plain_writes_and_editor_renames_are_seen() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.yaml");
        std::fs::write(&file, "a").unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let _w = watch_file(&file, 7u8, tx).unwrap();
        std::fs::write(&file, "b").unwrap();
        assert_eq!(next(&mut rx).await, Some(7));
        while rx.try_recv().is_ok() {}
        let tmp = dir.path().join(".config.yaml.swp");
        std::fs::write(&tmp, "c").unwrap();
        std::fs::rename(&tmp, &file).unwrap();
        assert_eq!(next(&mut rx).await, Some(7));
    }

    #[test]
    fn reads_are_not_changes() {
        use notify::event::{CreateKind, DataChange, ModifyKind};
        let cases = [
            (EventKind::Access(AccessKind::Open(AccessMode::Any)), false),
            (
                EventKind::Access(AccessKind::Close(AccessMode::Read)),
                false,
            ),
            (EventKind::Access(AccessKind::Read), false),
            (
                EventKind::Access(AccessKind::Close(AccessMode::Write)),
                true,
            ),
            (EventKind::Modify(ModifyKind::Data(DataChange::Any)), true),
            (EventKind::Create(CreateKind::File), true),
        ];
        for (kind, want) in cases {
            assert_eq!(is_change(&kind), want, "{kind:?}");
        }
    }
}
