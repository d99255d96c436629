//! The kubelet's plugin watcher dials a plugin's registration socket with a
//! bare path as its gRPC target, so grpc-go sends that path
//! (`/var/lib/kubelet/plugins_registry/…-reg.sock`) as the HTTP/2
//! `:authority`; h2 resets every such stream as malformed. For that one
//! socket this module sits between the connection and the gRPC server and
//! renames the `:authority` field of each request's header block to a
//! regular header of the same length (`x-authorit`), copying its value bytes
//! as they are. The HPACK dynamic tables of the client and of h2 stay in
//! step (an entry's size is its name length + value length + 32, and both
//! are unchanged), no Huffman string has to be decoded, and h2 sees a request
//! without an authority, which HTTP/2 allows. Everything else (the preface,
//! SETTINGS, DATA, the server's answers) passes byte for byte.
//!
//! Pure: [`ClientBytes::feed`] turns client bytes into the bytes h2 gets, and
//! [`rewrite_block`] rewrites one header block; both are bounded and return
//! an error (the connection is then closed) instead of panicking on any
//! input. The device-plugin sockets never go through this: a kubelet older
//! than 1.26 that sends a path there is still refused (README).

/// What replaces the `:authority` name: a regular header of the same length.
pub const RENAMED: &[u8; 10] = b"x-authorit";
const AUTHORITY: &[u8] = b":authority";
/// `:authority` in the HPACK static table (RFC 7541 Appendix A).
const AUTHORITY_INDEX: u64 = 1;
/// The HTTP/2 client connection preface.
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// The largest header block kept to rewrite (gRPC's header lists are a few KiB).
pub const MAX_BLOCK: usize = 256 * 1024;
/// The largest frame payload sent to h2: its default SETTINGS_MAX_FRAME_SIZE.
const MAX_OUT_FRAME: usize = 16_384;
/// The largest frame payload taken from the client: the same limit, which h2
/// would enforce itself (so at most one frame is ever buffered).
const MAX_IN_FRAME: usize = MAX_OUT_FRAME;
/// Frame types and flags (RFC 9113 §6).
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthorityError {
    #[error("not an HTTP/2 client connection (bad preface)")]
    Preface,
    #[error("malformed HTTP/2 frame: {0}")]
    Frame(&'static str),
    #[error("malformed HPACK header block: {0}")]
    Hpack(&'static str),
    #[error("header block larger than {MAX_BLOCK} bytes")]
    TooLarge,
}

/// An HPACK integer with an `n`-bit prefix at `buf[at]` (RFC 7541 §5.1):
/// its value and the position after it.
fn integer(buf: &[u8], at: usize, prefix_bits: u8) -> Result<(u64, usize), AuthorityError> {
    let first = *buf
        .get(at)
        .ok_or(AuthorityError::Hpack("truncated integer"))?;
    let max = (1u64 << prefix_bits) - 1;
    let mut value = u64::from(first) & max;
    let mut pos = at + 1;
    if value < max {
        return Ok((value, pos));
    }
    let mut shift = 0u32;
    loop {
        let b = *buf
            .get(pos)
            .ok_or(AuthorityError::Hpack("truncated integer"))?;
        pos += 1;
        if shift > 56 {
            return Err(AuthorityError::Hpack("integer too large"));
        }
        value += u64::from(b & 0x7f) << shift;
        shift += 7;
        if b & 0x80 == 0 {
            return Ok((value, pos));
        }
    }
}

/// The string literal at `at` (RFC 7541 §5.2): whether it is Huffman-coded,
/// its raw bytes, and the position after it.
fn string(buf: &[u8], at: usize) -> Result<(bool, &[u8], usize), AuthorityError> {
    let huffman = buf.get(at).is_some_and(|b| b & 0x80 != 0);
    let (len, start) = integer(buf, at, 7)?;
    let len = usize::try_from(len).map_err(|_| AuthorityError::Hpack("string too long"))?;
    let end = start
        .checked_add(len)
        .filter(|end| *end <= buf.len())
        .ok_or(AuthorityError::Hpack("truncated string"))?;
    Ok((huffman, &buf[start..end], end))
}

/// Appends an HPACK integer with an `n`-bit prefix whose other bits are `flags`.
fn put_integer(out: &mut Vec<u8>, flags: u8, prefix_bits: u8, mut value: u64) {
    let max = (1u64 << prefix_bits) - 1;
    if value < max {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | max as u8);
    value -= max;
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Rewrites one complete header block: every `:authority` field (by static
/// index or by a plain literal name) gets the name [`RENAMED`], with the
/// same representation kind and the same value bytes. Returns the block
/// unchanged when it holds no `:authority`.
pub fn rewrite_block(block: &[u8]) -> Result<Vec<u8>, AuthorityError> {
    if block.len() > MAX_BLOCK {
        return Err(AuthorityError::TooLarge);
    }
    let mut out = Vec::with_capacity(block.len() + 16);
    let mut pos = 0;
    while pos < block.len() {
        let first = block[pos];
        let start = pos;
        if first & 0x80 != 0 {
            // Indexed field. Static 1 is `:authority` with an empty value:
            // sent as an unindexed literal of the renamed header instead
            // (neither touches the dynamic table).
            let (index, next) = integer(block, pos, 7)?;
            if index == AUTHORITY_INDEX {
                out.push(0x00);
                put_integer(&mut out, 0x00, 7, RENAMED.len() as u64);
                out.extend_from_slice(RENAMED);
                out.push(0x00);
            } else {
                out.extend_from_slice(&block[start..next]);
            }
            pos = next;
            continue;
        }
        if first & 0xe0 == 0x20 {
            // Dynamic table size update.
            let (_, next) = integer(block, pos, 5)?;
            out.extend_from_slice(&block[start..next]);
            pos = next;
            continue;
        }
        // A literal: with incremental indexing (01), without (0000) or never
        // indexed (0001); the kind stays, only the name may change.
        let (kind, prefix_bits) = if first & 0xc0 == 0x40 {
            (0x40, 6)
        } else {
            (first & 0xf0, 4)
        };
        let (name_index, after_index) = integer(block, pos, prefix_bits)?;
        let (is_authority, value_at) = if name_index == 0 {
            let (huffman, name, after_name) = string(block, after_index)?;
            (!huffman && name == AUTHORITY, after_name)
        } else {
            (name_index == AUTHORITY_INDEX, after_index)
        };
        let (_, _, next) = string(block, value_at)?;
        if is_authority {
            out.push(kind);
            put_integer(&mut out, 0x00, 7, RENAMED.len() as u64);
            out.extend_from_slice(RENAMED);
            out.extend_from_slice(&block[value_at..next]);
        } else {
            out.extend_from_slice(&block[start..next]);
        }
        pos = next;
    }
    Ok(out)
}

/// A header block being collected across HEADERS and CONTINUATION frames.
#[derive(Debug)]
struct Pending {
    stream: u32,
    flags: u8,
    priority: Option<[u8; 5]>,
    block: Vec<u8>,
}

/// The client → server direction of one connection.
#[derive(Debug, Default)]
pub struct ClientBytes {
    buf: Vec<u8>,
    preface_seen: bool,
    pending: Option<Pending>,
}

impl ClientBytes {
    pub fn new() -> ClientBytes {
        ClientBytes::default()
    }

    /// Takes the next bytes from the client; appends to `out` what h2 gets.
    /// Incomplete frames wait for more input.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), AuthorityError> {
        self.buf.extend_from_slice(input);
        if !self.preface_seen {
            let have = self.buf.len().min(PREFACE.len());
            if self.buf[..have] != PREFACE[..have] {
                return Err(AuthorityError::Preface);
            }
            if have < PREFACE.len() {
                return Ok(());
            }
            out.extend_from_slice(PREFACE);
            self.buf.drain(..PREFACE.len());
            self.preface_seen = true;
        }
        let mut pos = 0;
        while let Some(head) = self.buf.get(pos..pos + 9) {
            let head: [u8; 9] = head
                .try_into()
                .map_err(|_| AuthorityError::Frame("short frame header"))?;
            let len =
                (usize::from(head[0]) << 16) | (usize::from(head[1]) << 8) | usize::from(head[2]);
            if len > MAX_IN_FRAME {
                return Err(AuthorityError::Frame(
                    "frame larger than SETTINGS_MAX_FRAME_SIZE",
                ));
            }
            let Some(payload) = self.buf.get(pos + 9..pos + 9 + len) else {
                break;
            };
            let payload = payload.to_vec();
            self.frame(head, &payload, out)?;
            pos += 9 + len;
        }
        self.buf.drain(..pos);
        Ok(())
    }

    fn frame(
        &mut self,
        head: [u8; 9],
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), AuthorityError> {
        let (kind, flags) = (head[3], head[4]);
        let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        match (kind, self.pending.as_mut()) {
            (CONTINUATION, Some(p)) if p.stream == stream => {
                if p.block.len() + payload.len() > MAX_BLOCK {
                    return Err(AuthorityError::TooLarge);
                }
                p.block.extend_from_slice(payload);
                if flags & END_HEADERS != 0 {
                    self.finish(out)?;
                }
                Ok(())
            }
            (_, Some(_)) => Err(AuthorityError::Frame(
                "a header block was interrupted by another frame",
            )),
            (HEADERS, None) => {
                let mut body = payload;
                let mut pad = 0usize;
                if flags & PADDED != 0 {
                    let (&n, rest) = body
                        .split_first()
                        .ok_or(AuthorityError::Frame("PADDED HEADERS without a pad length"))?;
                    pad = usize::from(n);
                    body = rest;
                }
                let mut priority = None;
                if flags & PRIORITY != 0 {
                    let fields: [u8; 5] = body
                        .get(..5)
                        .and_then(|p| p.try_into().ok())
                        .ok_or(AuthorityError::Frame("PRIORITY HEADERS too short"))?;
                    priority = Some(fields);
                    body = &body[5..];
                }
                let keep = body
                    .len()
                    .checked_sub(pad)
                    .ok_or(AuthorityError::Frame("padding longer than the frame"))?;
                let block = &body[..keep];
                self.pending = Some(Pending {
                    stream,
                    flags: flags & END_STREAM,
                    priority,
                    block: block.to_vec(),
                });
                if flags & END_HEADERS != 0 {
                    self.finish(out)?;
                }
                Ok(())
            }
            (CONTINUATION, None) => Err(AuthorityError::Frame("CONTINUATION without HEADERS")),
            _ => {
                out.extend_from_slice(&head);
                out.extend_from_slice(payload);
                Ok(())
            }
        }
    }

    /// Rewrites the collected block and sends it as HEADERS (+ CONTINUATION).
    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), AuthorityError> {
        let Some(p) = self.pending.take() else {
            return Ok(());
        };
        let block = rewrite_block(&p.block)?;
        let mut first = Vec::with_capacity(5 + block.len());
        let mut flags = p.flags;
        if let Some(fields) = p.priority {
            first.extend_from_slice(&fields);
            flags |= PRIORITY;
        }
        let room = MAX_OUT_FRAME - first.len();
        let (head_part, mut rest) = block.split_at(block.len().min(room));
        first.extend_from_slice(head_part);
        let mut kind = HEADERS;
        let mut chunk = first;
        loop {
            let last = rest.is_empty();
            let f = if last { flags | END_HEADERS } else { flags };
            put_frame(out, kind, f, p.stream, &chunk);
            if last {
                return Ok(());
            }
            let (next, after) = rest.split_at(rest.len().min(MAX_OUT_FRAME));
            chunk = next.to_vec();
            rest = after;
            kind = CONTINUATION;
            flags = 0;
        }
    }
}

fn put_frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = payload.len();
    out.extend_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags]);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(payload);
}

/// Puts the rewrite between an accepted connection and the gRPC server: the
/// returned stream is what the server reads and writes. The pumps end with
/// either side; a malformed client stream closes the connection.
pub fn rewrite_connection(conn: tokio::net::UnixStream) -> tokio::io::DuplexStream {
    let (server_side, pumped) = tokio::io::duplex(64 * 1024);
    tokio::spawn(pump(conn, pumped));
    server_side
}

/// Every connection accepted on `listener`, each behind [`rewrite_connection`].
pub fn rewriting_incoming(
    listener: tokio::net::UnixListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::io::DuplexStream>> {
    use tokio_stream::StreamExt;
    tokio_stream::wrappers::UnixListenerStream::new(listener)
        .map(|conn| conn.map(rewrite_connection))
}

async fn pump(conn: tokio::net::UnixStream, server: tokio::io::DuplexStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut client_read, mut client_write) = conn.into_split();
    let (mut server_read, mut server_write) = tokio::io::split(server);
    let up = async move {
        let mut rewrite = ClientBytes::new();
        let mut buf = vec![0u8; 16 * 1024];
        let mut out = Vec::with_capacity(buf.len() + 64);
        loop {
            let n = client_read.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            out.clear();
            rewrite
                .feed(&buf[..n], &mut out)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
            server_write.write_all(&out).await?;
        }
        server_write.shutdown().await
    };
    let down = async move {
        tokio::io::copy(&mut server_read, &mut client_write).await?;
        client_write.shutdown().await
    };
    tokio::pin!(up, down);
    // The client's end finishes the request side; the server's answers may
    // still be on their way. A rewrite error or the server's close ends both.
    let result = tokio::select! {
        r = &mut up => match r {
            Ok(()) => down.await,
            Err(e) => Err(e),
        },
        r = &mut down => r,
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "plugin registration connection closed");
    }
}

#[cfg(test)]
#[path = "authority_tests.rs"]
mod tests;
