//! A bounded parser of glibc's `ld.so.cache`: the old `ld.so-1.7.0` format,
//! the new `glibc-ld.so.cache1.1` format, and the old format followed by the
//! new one (what glibc wrote before 2.32). The file comes from the driver
//! root, so it is untrusted input: every offset and count is checked against
//! the bytes actually there, and a corrupt file is an error, never a panic.

/// Largest cache accepted (a real one is a few hundred KiB).
pub const MAX_CACHE_BYTES: usize = 16 << 20;

const OLD_MAGIC: &[u8] = b"ld.so-1.7.0";
const NEW_MAGIC: &[u8] = b"glibc-ld.so.cache1.1";
/// Old header: 11 magic bytes, padding to 12, `nlibs`.
const OLD_HEADER: usize = 16;
/// Old entry: flags, key, value.
const OLD_ENTRY: usize = 12;
/// New header: magic+version (20), nlibs, len_strings, flags+3 padding,
/// extension_offset, 3 unused words.
const NEW_HEADER: usize = 48;
/// New entry: flags, key, value, osversion, hwcap (u64).
const NEW_ENTRY: usize = 24;

/// Entry flag bits (glibc `dl-cache.h`).
const FLAG_TYPE_MASK: i32 = 0x00ff;
const FLAG_ELF_LIBC6: i32 = 0x0003;
const FLAG_REQUIRED_MASK: i32 = 0xff00;
const FLAG_X8664_LIB64: i32 = 0x0300;
const FLAG_AARCH64_LIB64: i32 = 0x0a00;

/// One library of the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The SONAME-style key, e.g. `libcuda.so.1`.
    pub key: String,
    /// The path ldconfig recorded, e.g. `/usr/lib/x86_64-linux-gnu/libcuda.so.1`.
    pub path: String,
    pub flags: i32,
}

impl Entry {
    /// A 64-bit ELF libc6 library of x86-64 or aarch64 (the entries nvcdi uses).
    pub fn is_64bit(&self) -> bool {
        let arch = self.flags & FLAG_REQUIRED_MASK;
        self.flags & FLAG_TYPE_MASK == FLAG_ELF_LIBC6
            && (arch == FLAG_X8664_LIB64 || arch == FLAG_AARCH64_LIB64)
    }
}

/// Why a cache could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LdCacheError {
    #[error("ld.so.cache is {0} bytes, larger than the {MAX_CACHE_BYTES} accepted")]
    TooLarge(usize),
    #[error("ld.so.cache has neither the ld.so-1.7.0 nor the glibc-ld.so.cache1.1 magic")]
    BadMagic,
    #[error("ld.so.cache is truncated: its {what} needs {needed} bytes, the file has {have}")]
    Truncated {
        what: &'static str,
        needed: usize,
        have: usize,
    },
    #[error("ld.so.cache entry {index}: {which} offset {offset} is outside the file's strings")]
    BadOffset {
        index: usize,
        which: &'static str,
        offset: u32,
    },
    #[error("ld.so.cache entry {index}: {which} is not NUL-terminated UTF-8")]
    BadString { index: usize, which: &'static str },
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let bytes = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

fn need(what: &'static str, needed: usize, have: usize) -> Result<(), LdCacheError> {
    if needed > have {
        return Err(LdCacheError::Truncated { what, needed, have });
    }
    Ok(())
}

/// The entries of a cache, in file order. A file with both formats is read
/// from its new part (as glibc does).
pub fn parse(bytes: &[u8]) -> Result<Vec<Entry>, LdCacheError> {
    if bytes.len() > MAX_CACHE_BYTES {
        return Err(LdCacheError::TooLarge(bytes.len()));
    }
    if bytes.starts_with(NEW_MAGIC) {
        return parse_new(bytes);
    }
    if !bytes.starts_with(OLD_MAGIC) {
        return Err(LdCacheError::BadMagic);
    }
    need("header", OLD_HEADER, bytes.len())?;
    let nlibs = u32_at(bytes, 12).unwrap_or(0) as usize;
    let entries_end = nlibs
        .checked_mul(OLD_ENTRY)
        .and_then(|n| n.checked_add(OLD_HEADER))
        .unwrap_or(usize::MAX);
    need("entry table", entries_end, bytes.len())?;
    // glibc aligns the new part to 8 bytes after the old entries.
    let new_at = entries_end.next_multiple_of(8);
    if let Some(rest) = bytes.get(new_at..)
        && rest.starts_with(NEW_MAGIC)
    {
        return parse_new(rest);
    }
    // Old format: string offsets count from the end of the entry table.
    let strings = bytes.get(entries_end..).unwrap_or_default();
    (0..nlibs)
        .map(|i| {
            let at = OLD_HEADER + i * OLD_ENTRY;
            let word = |k: usize| u32_at(bytes, at + 4 * k).unwrap_or(0);
            entry(strings, i, word(0) as i32, word(1), word(2))
        })
        .collect()
}

/// The new format; `bytes` starts at its magic, string offsets count from there.
fn parse_new(bytes: &[u8]) -> Result<Vec<Entry>, LdCacheError> {
    need("header", NEW_HEADER, bytes.len())?;
    let nlibs = u32_at(bytes, 20).unwrap_or(0) as usize;
    let entries_end = nlibs
        .checked_mul(NEW_ENTRY)
        .and_then(|n| n.checked_add(NEW_HEADER))
        .unwrap_or(usize::MAX);
    need("entry table", entries_end, bytes.len())?;
    (0..nlibs)
        .map(|i| {
            let at = NEW_HEADER + i * NEW_ENTRY;
            let word = |k: usize| u32_at(bytes, at + 4 * k).unwrap_or(0);
            entry(bytes, i, word(0) as i32, word(1), word(2))
        })
        .collect()
}

fn entry(
    strings: &[u8],
    index: usize,
    flags: i32,
    key: u32,
    value: u32,
) -> Result<Entry, LdCacheError> {
    Ok(Entry {
        key: string(strings, index, "key", key)?,
        path: string(strings, index, "value", value)?,
        flags,
    })
}

fn string(
    b: &[u8],
    index: usize,
    which: &'static str,
    offset: u32,
) -> Result<String, LdCacheError> {
    let tail =
        b.get(offset as usize..)
            .filter(|t| !t.is_empty())
            .ok_or(LdCacheError::BadOffset {
                index,
                which,
                offset,
            })?;
    let end = tail
        .iter()
        .position(|&c| c == 0)
        .ok_or(LdCacheError::BadString { index, which })?;
    std::str::from_utf8(&tail[..end])
        .map(str::to_string)
        .map_err(|_| LdCacheError::BadString { index, which })
}

/// Builds a cache in the new format from (key, path, flags) entries: what
/// tests and the fuzz target start from (and what `ldconfig` writes, minus
/// the hwcap and extension sections, which readers ignore).
pub fn build_new(entries: &[(&str, &str, i32)]) -> Vec<u8> {
    let strings_at = NEW_HEADER + entries.len() * NEW_ENTRY;
    let mut strings = Vec::new();
    let mut table = Vec::new();
    for (key, path, flags) in entries {
        let key_at = strings_at + strings.len();
        strings.extend_from_slice(key.as_bytes());
        strings.push(0);
        let path_at = strings_at + strings.len();
        strings.extend_from_slice(path.as_bytes());
        strings.push(0);
        table.extend_from_slice(&flags.to_le_bytes());
        table.extend_from_slice(&(key_at as u32).to_le_bytes());
        table.extend_from_slice(&(path_at as u32).to_le_bytes());
        table.extend_from_slice(&0u32.to_le_bytes());
        table.extend_from_slice(&0u64.to_le_bytes());
    }
    let mut out = Vec::with_capacity(strings_at + strings.len());
    out.extend_from_slice(NEW_MAGIC);
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    out.extend_from_slice(&(strings.len() as u32).to_le_bytes());
    out.extend_from_slice(&[0u8; 4]);
    out.extend_from_slice(&[0u8; 16]);
    out.extend_from_slice(&table);
    out.extend_from_slice(&strings);
    out
}

/// Builds a cache in the old format (string offsets from the end of the table).
pub fn build_old(entries: &[(&str, &str, i32)]) -> Vec<u8> {
    let mut strings = Vec::new();
    let mut table = Vec::new();
    for (key, path, flags) in entries {
        let key_at = strings.len();
        strings.extend_from_slice(key.as_bytes());
        strings.push(0);
        let path_at = strings.len();
        strings.extend_from_slice(path.as_bytes());
        strings.push(0);
        table.extend_from_slice(&flags.to_le_bytes());
        table.extend_from_slice(&(key_at as u32).to_le_bytes());
        table.extend_from_slice(&(path_at as u32).to_le_bytes());
    }
    let mut out = Vec::new();
    out.extend_from_slice(OLD_MAGIC);
    out.push(0);
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    out.extend_from_slice(&table);
    out.extend_from_slice(&strings);
    out
}

/// The flags ldconfig gives a 64-bit x86-64 libc6 library.
pub const FLAGS_X86_64: i32 = FLAG_ELF_LIBC6 | FLAG_X8664_LIB64;

#[cfg(test)]
#[path = "ldcache_tests.rs"]
mod tests;
