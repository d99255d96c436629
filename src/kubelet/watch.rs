//! Watching the device-plugin socket directory (inotify through notify): the
//! kubelet recreating `kubelet.sock`, or deleting a plugin's socket, shows up here.

use std::path::Path;

use notify::event::{EventKind, ModifyKind, RenameMode};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// A file appearing in or leaving the directory, by file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirEvent {
    Created(String),
    Removed(String),
}

/// Starts watching `dir`. Keep the returned watcher alive as long as events
/// are wanted.
pub fn watch_dir(
    dir: &Path,
) -> notify::Result<(RecommendedWatcher, mpsc::UnboundedReceiver<DirEvent>)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let event = match res {
            Ok(event) => event,
            Err(e) => {
                tracing::warn!(error = %e, "socket directory watch error");
                return;
            }
        };
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
    watcher.watch(dir, RecursiveMode::NonRecursive)?;
    Ok((watcher, rx))
}
