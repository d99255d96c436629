//! Reading a config or node file with a size cap, so that a huge or endless
//! file (a wrong path, a ConfigMap mistake, `/dev/zero`) cannot take the
//! plugin's memory: at most `max + 1` bytes are ever read.

use std::io::Read;
use std::path::{Path, PathBuf};

/// Why a bounded read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {}: {source}; check that the file exists and is readable", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{} is larger than {max} bytes, the most the plugin reads; check that the path points at the intended file and shorten it", path.display()
    )]
    TooLarge { path: PathBuf, max: u64 },
    #[error("{} is not UTF-8 text (invalid byte at offset {offset}); save it as UTF-8", path.display())]
    NotUtf8 { path: PathBuf, offset: usize },
}

/// For callers whose errors carry an `io::Error`: the read's own error for
/// `Io`, the whole message (kind `InvalidData`) otherwise.
impl From<ReadError> for std::io::Error {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Io { source, .. } => source,
            other => std::io::Error::new(std::io::ErrorKind::InvalidData, other),
        }
    }
}

/// Reads `path` as UTF-8 text of at most `max` bytes.
pub fn read_bounded(path: &Path, max: u64) -> Result<String, ReadError> {
    let io = |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if u64::try_from(bytes.len()).map_or(true, |n| n > max) {
        return Err(ReadError::TooLarge {
            path: path.to_path_buf(),
            max,
        });
    }
    String::from_utf8(bytes).map_err(|e| ReadError::NotUtf8 {
        path: path.to_path_buf(),
        offset: e.utf8_error().valid_up_to(),
    })
}

#[cfg(test)]
#[path = "read_tests.rs"]
mod tests;
