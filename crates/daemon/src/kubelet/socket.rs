//! The identity of a socket file: a socket deleted and created again is a
//! different socket even when the filesystem reuses its inode number, because
//! its change time differs. Used to register once per kubelet start.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// Device, inode and change time of a socket file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketId {
    pub dev: u64,
    pub ino: u64,
    pub ctime_sec: i64,
    pub ctime_nsec: i64,
}

/// The identity of the socket at `path`; `None` when there is no socket there.
pub fn socket_id(path: &Path) -> Option<SocketId> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    meta.file_type().is_socket().then(|| SocketId {
        dev: meta.dev(),
        ino: meta.ino(),
        ctime_sec: meta.ctime(),
        ctime_nsec: meta.ctime_nsec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recreated_socket_has_a_new_identity() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubelet.sock");
        assert_eq!(socket_id(&path), None);
        let first = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let a = socket_id(&path).unwrap();
        assert_eq!(socket_id(&path), Some(a), "stable while the socket stays");
        drop(first);
        std::fs::remove_file(&path).unwrap();
        let _second = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let b = socket_id(&path).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn a_plain_file_is_not_a_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubelet_internal_checkpoint");
        std::fs::write(&path, "{}").unwrap();
        assert_eq!(socket_id(&path), None);
    }
}
