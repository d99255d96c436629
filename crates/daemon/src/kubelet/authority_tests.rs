//! Tests of the `:authority` rename: header blocks as tables of cases, the
//! frame layer (padding, CONTINUATION, byte-by-byte input, errors), seeded
//! garbage that must never panic, and real h2 behind a tonic server that
//! resets a path authority without the rename and answers with it.
use super::*;

const PATH: &[u8] = b"/var/lib/kubelet/plugins_registry/gpu.nvidia.com-reg.sock";

/// A raw (not Huffman) HPACK string literal.
fn raw(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    put_integer(&mut out, 0x00, 7, s.len() as u64);
    out.extend_from_slice(s);
    out
}

fn renamed_name() -> Vec<u8> {
    raw(RENAMED)
}

/// What grpc-go sends for a registration call: method, scheme, path,
/// authority (literal with incremental indexing, static name), content type, te.
fn grpc_block(authority: &[u8]) -> Vec<u8> {
    let mut b = vec![0x83, 0x86, 0x44];
    b.extend(raw(b"/pluginregistration.Registration/GetInfo"));
    b.extend(authority);
    b.push(0x5f);
    b.extend(raw(b"application/grpc"));
    b.push(0x00);
    b.extend(raw(b"te"));
    b.extend(raw(b"trailers"));
    b
}

#[test]
fn the_rename_keeps_the_entry_size_of_the_dynamic_table() {
    assert_eq!(RENAMED.len(), AUTHORITY.len());
}

#[test]
fn every_authority_representation_is_renamed_and_nothing_else_changes() {
    let value = raw(PATH);
    let huffman_value = [0x83, 0xaa, 0xbb, 0xcc]; // opaque: never decoded
    let cat = |parts: &[&[u8]]| parts.concat();
    let cases: Vec<(&str, Vec<u8>, Vec<u8>)> = vec![
        (
            "incremental indexing, static name",
            cat(&[&[0x41], &value]),
            cat(&[&[0x40], &renamed_name(), &value]),
        ),
        (
            "incremental indexing, Huffman value kept as is",
            cat(&[&[0x41], &huffman_value]),
            cat(&[&[0x40], &renamed_name(), &huffman_value]),
        ),
        (
            "without indexing, static name",
            cat(&[&[0x01], &value]),
            cat(&[&[0x00], &renamed_name(), &value]),
        ),
        (
            "never indexed, static name",
            cat(&[&[0x11], &value]),
            cat(&[&[0x10], &renamed_name(), &value]),
        ),
        (
            "literal name :authority",
            cat(&[&[0x40], &raw(b":authority"), &value]),
            cat(&[&[0x40], &renamed_name(), &value]),
        ),
        (
            "indexed static 1 (empty authority)",
            vec![0x81],
            cat(&[&[0x00], &renamed_name(), &[0x00]]),
        ),
        ("indexed :method GET", vec![0x82], vec![0x82]),
        ("indexed dynamic entry", vec![0xbe], vec![0xbe]),
        (
            "table size update 4096",
            vec![0x3f, 0xe1, 0x1f],
            vec![0x3f, 0xe1, 0x1f],
        ),
        (
            "multi-byte name index (content-type without indexing)",
            cat(&[&[0x0f, 0x10], &raw(b"application/grpc")]),
            cat(&[&[0x0f, 0x10], &raw(b"application/grpc")]),
        ),
        (
            "Huffman-coded literal name is left alone",
            cat(&[&[0x40, 0x81, 0xff], &value]),
            cat(&[&[0x40, 0x81, 0xff], &value]),
        ),
        ("empty block", vec![], vec![]),
    ];
    for (name, input, want) in cases {
        assert_eq!(rewrite_block(&input).as_ref(), Ok(&want), "{name}");
    }
    let got = rewrite_block(&grpc_block(&cat(&[&[0x41], &value]))).unwrap();
    assert_eq!(got, grpc_block(&cat(&[&[0x40], &renamed_name(), &value])));
}

#[test]
fn truncated_blocks_are_errors() {
    for input in [
        &[0x41][..],
        &[0x41, 0x05, b'a'],
        &[0x3f],
        &[
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ],
        &[0x00, 0x7f],
    ] {
        assert!(rewrite_block(input).is_err(), "{input:x?}");
    }
    assert_eq!(
        rewrite_block(&vec![0x82; MAX_BLOCK + 1]),
        Err(AuthorityError::TooLarge)
    );
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    put_frame(&mut out, kind, flags, stream, payload);
    out
}

fn feed_all(chunks: &[&[u8]]) -> Result<Vec<u8>, AuthorityError> {
    let mut c = ClientBytes::new();
    let mut out = Vec::new();
    for chunk in chunks {
        c.feed(chunk, &mut out)?;
    }
    Ok(out)
}

#[test]
fn a_padded_block_split_over_continuation_comes_out_as_one_headers_frame() {
    let authority = [&[0x41][..], &raw(PATH)].concat();
    let block = grpc_block(&authority);
    let (a, b) = block.split_at(10);
    let settings = frame(0x4, 0, 0, &[0, 3, 0, 0, 0, 100]);
    let mut padded = vec![3u8];
    padded.extend_from_slice(a);
    padded.extend_from_slice(&[0, 0, 0]);
    let headers = frame(HEADERS, PADDED | END_STREAM, 1, &padded);
    let cont = frame(CONTINUATION, END_HEADERS, 1, b);
    let data = frame(0x0, END_STREAM, 3, &[0, 0, 0, 0, 0]);
    let input = [&PREFACE[..], &settings, &headers, &cont, &data].concat();

    let rewritten = grpc_block(&[&[0x40][..], &renamed_name(), &raw(PATH)].concat());
    let want = [
        &PREFACE[..],
        &settings,
        &frame(HEADERS, END_STREAM | END_HEADERS, 1, &rewritten),
        &data,
    ]
    .concat();
    assert_eq!(feed_all(&[&input]).unwrap(), want);
    // Byte by byte, the same.
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(feed_all(&bytes).unwrap(), want);
}

#[test]
fn priority_fields_are_kept_and_a_grown_block_is_split() {
    let mut block = vec![0x41];
    block.extend(raw(PATH));
    // Fill to just below one frame; the rename makes it one frame too long.
    while block.len() < MAX_OUT_FRAME - 5 - 2 {
        block.push(0x82);
    }
    let mut payload = vec![0, 0, 0, 0, 16];
    payload.extend_from_slice(&block);
    let input = [
        &PREFACE[..],
        &frame(HEADERS, PRIORITY | END_HEADERS, 5, &payload),
    ]
    .concat();
    let out = feed_all(&[&input]).unwrap();
    let first_len =
        (usize::from(out[24]) << 16) | (usize::from(out[25]) << 8) | usize::from(out[26]);
    assert_eq!(first_len, MAX_OUT_FRAME);
    assert_eq!(
        (out[27], out[28]),
        (HEADERS, PRIORITY),
        "no END_HEADERS yet"
    );
    assert_eq!(&out[33..38], &[0, 0, 0, 0, 16]);
    let second = &out[24 + 9 + first_len..];
    assert_eq!((second[3], second[4]), (CONTINUATION, END_HEADERS));
    let second_len =
        (usize::from(second[0]) << 16) | (usize::from(second[1]) << 8) | usize::from(second[2]);
    let rewritten = rewrite_block(&block).unwrap();
    assert_eq!(first_len - 5 + second_len, rewritten.len());
}

#[test]
fn broken_frame_sequences_are_errors() {
    let h = |flags| frame(HEADERS, flags, 1, &[0x82]);
    let cases: Vec<(&str, Vec<u8>, AuthorityError)> = vec![
        (
            "bad preface",
            b"GET / HTTP/1.1\r\n\r\n".to_vec(),
            AuthorityError::Preface,
        ),
        (
            "CONTINUATION without HEADERS",
            [&PREFACE[..], &frame(CONTINUATION, END_HEADERS, 1, &[0x82])].concat(),
            AuthorityError::Frame("CONTINUATION without HEADERS"),
        ),
        (
            "another frame inside a header block",
            [&PREFACE[..], &h(0), &frame(0x0, 0, 1, &[])].concat(),
            AuthorityError::Frame("a header block was interrupted by another frame"),
        ),
        (
            "padding longer than the frame",
            [
                &PREFACE[..],
                &frame(HEADERS, PADDED | END_HEADERS, 1, &[9, 0x82]),
            ]
            .concat(),
            AuthorityError::Frame("padding longer than the frame"),
        ),
        (
            "a frame over 16 KiB",
            [&PREFACE[..], &[0x01, 0x00, 0x00, 0x0, 0, 0, 0, 0, 1][..]].concat(),
            AuthorityError::Frame("frame larger than SETTINGS_MAX_FRAME_SIZE"),
        ),
    ];
    for (name, input, want) in cases {
        assert_eq!(feed_all(&[&input]), Err(want), "{name}");
    }
}

/// A small deterministic generator (xorshift), so the garbage is the same each run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn mutated_and_random_input_never_panics() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let sample = grpc_block(&[&[0x41][..], &raw(PATH)].concat());
    let (mut ok, mut err) = (0, 0);
    for round in 0..20_000 {
        let mut input = if round % 4 == 0 {
            (0..rng.below(64)).map(|_| rng.next() as u8).collect()
        } else {
            sample.clone()
        };
        for _ in 0..1 + rng.below(4) {
            if input.is_empty() {
                break;
            }
            let at = rng.below(input.len());
            match rng.below(3) {
                0 => input[at] = rng.next() as u8,
                1 => input.truncate(at),
                _ => input.insert(at, rng.next() as u8),
            }
        }
        match rewrite_block(&input) {
            Ok(_) => ok += 1,
            Err(_) => err += 1,
        }
        let framed = [
            &PREFACE[..],
            &frame(HEADERS, END_HEADERS, 1, &input),
            &input,
        ]
        .concat();
        let _ = feed_all(&[&framed]);
    }
    assert!(
        ok > 100 && err > 100,
        "both outcomes exercised: {ok} ok, {err} errors"
    );
}

mod through_h2 {
    //! The real h2 (through tonic) with a raw client that sends a path as
    //! `:authority`, as the kubelet's plugin watcher does.
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{UnixListener, UnixStream};

    use super::*;
    use crate::podresources_v1::pod_resources_lister_server::{
        PodResourcesLister, PodResourcesListerServer,
    };
    use crate::podresources_v1::*;

    struct Empty;

    #[tonic::async_trait]
    impl PodResourcesLister for Empty {
        async fn list(
            &self,
            _: tonic::Request<ListPodResourcesRequest>,
        ) -> Result<tonic::Response<ListPodResourcesResponse>, tonic::Status> {
            Ok(tonic::Response::new(ListPodResourcesResponse::default()))
        }
        async fn get_allocatable_resources(
            &self,
            _: tonic::Request<AllocatableResourcesRequest>,
        ) -> Result<tonic::Response<AllocatableResourcesResponse>, tonic::Status> {
            Err(tonic::Status::unimplemented("test"))
        }
        async fn get(
            &self,
            _: tonic::Request<GetPodResourcesRequest>,
        ) -> Result<tonic::Response<GetPodResourcesResponse>, tonic::Status> {
            Err(tonic::Status::unimplemented("test"))
        }
    }

    /// Frame types the server sent on stream 1 before closing or 5 s.
    async fn call_with_path_authority(socket: &std::path::Path) -> Vec<u8> {
        let mut s = UnixStream::connect(socket).await.unwrap();
        let mut block = vec![0x83, 0x86, 0x44];
        block.extend(raw(b"/v1.PodResourcesLister/List"));
        block.push(0x41);
        block.extend(raw(PATH));
        block.push(0x5f);
        block.extend(raw(b"application/grpc"));
        block.push(0x00);
        block.extend(raw(b"te"));
        block.extend(raw(b"trailers"));
        let request = [
            &PREFACE[..],
            &frame(0x4, 0, 0, &[]),
            &frame(HEADERS, END_HEADERS, 1, &block),
            &frame(0x0, END_STREAM, 1, &[0, 0, 0, 0, 0]),
        ]
        .concat();
        s.write_all(&request).await.unwrap();
        let mut seen = Vec::new();
        let mut buf = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let mut chunk = [0u8; 4096];
            let n = match tokio::time::timeout_at(deadline, s.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => n,
                _ => break,
            };
            buf.extend_from_slice(&chunk[..n]);
            while buf.len() >= 9 {
                let len =
                    (usize::from(buf[0]) << 16) | (usize::from(buf[1]) << 8) | usize::from(buf[2]);
                if buf.len() < 9 + len {
                    break;
                }
                let stream = u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]]);
                if stream == 1 {
                    seen.push(buf[3]);
                    if buf[4] & END_STREAM != 0 || buf[3] == 0x3 {
                        return seen;
                    }
                }
                buf.drain(..9 + len);
            }
        }
        seen
    }

    async fn serve(rewrite: bool) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("reg.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let router =
            tonic::transport::Server::builder().add_service(PodResourcesListerServer::new(Empty));
        if rewrite {
            tokio::spawn(router.serve_with_incoming(rewriting_incoming(listener)));
        } else {
            tokio::spawn(
                router
                    .serve_with_incoming(tokio_stream::wrappers::UnixListenerStream::new(listener)),
            );
        }
        (dir, socket)
    }

    #[tokio::test]
    async fn h2_resets_a_path_authority_without_the_rename() {
        let (_dir, socket) = serve(false).await;
        assert_eq!(
            call_with_path_authority(&socket).await,
            vec![0x3],
            "RST_STREAM only"
        );
    }

    #[tokio::test]
    async fn with_the_rename_the_call_is_answered() {
        let (_dir, socket) = serve(true).await;
        let seen = call_with_path_authority(&socket).await;
        // HEADERS (200), DATA (the empty List answer), HEADERS (grpc-status), no reset.
        assert_eq!(seen, vec![HEADERS, 0x0, HEADERS], "{seen:x?}");
    }
}
