//! Interim bounded read (replaced by the feat/bounds branch).

use std::io::Read;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("larger than {0} bytes")]
    TooBig(u64),
    #[error("not UTF-8")]
    NotUtf8,
}

pub fn read_bounded(path: &Path, max: u64) -> Result<String, ReadError> {
    let mut buf = Vec::new();
    std::fs::File::open(path)?
        .take(max + 1)
        .read_to_end(&mut buf)?;
    if buf.len() as u64 > max {
        return Err(ReadError::TooBig(max));
    }
    String::from_utf8(buf).map_err(|_| ReadError::NotUtf8)
}
