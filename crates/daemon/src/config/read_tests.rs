//! Tests of `config::read`: sizes around the cap, bad text, unreadable paths.
use super::*;

/// What a read should give: the text, or the error's kind.
#[derive(Debug, PartialEq)]
enum Want {
    Text(String),
    Io,
    TooLarge,
    NotUtf8(usize),
}

fn outcome(r: Result<String, ReadError>) -> Want {
    match r {
        Ok(text) => Want::Text(text),
        Err(ReadError::Io { .. }) => Want::Io,
        Err(ReadError::TooLarge { .. }) => Want::TooLarge,
        Err(ReadError::NotUtf8 { offset, .. }) => Want::NotUtf8(offset),
    }
}

#[test]
fn file_contents_against_the_cap() {
    // (case, content, max, outcome)
    let cases: [(&str, &[u8], u64, Want); 7] = [
        ("empty", b"", 8, Want::Text("".into())),
        (
            "under the cap",
            b"version: v1",
            64,
            Want::Text("version: v1".into()),
        ),
        (
            "exactly the cap",
            b"12345678",
            8,
            Want::Text("12345678".into()),
        ),
        ("one byte over", b"123456789", 8, Want::TooLarge),
        ("zero cap, empty file", b"", 0, Want::Text("".into())),
        (
            "invalid UTF-8 at offset 3",
            b"abc\xffdef",
            64,
            Want::NotUtf8(3),
        ),
        (
            "multi-byte UTF-8",
            "é: ü".as_bytes(),
            64,
            Want::Text("é: ü".into()),
        ),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    for (i, (case, content, max, want)) in cases.into_iter().enumerate() {
        let path = dir.path().join(format!("f{i}"));
        std::fs::write(&path, content).expect("write");
        assert_eq!(outcome(read_bounded(&path, max)), want, "{case}");
    }
}

#[test]
fn paths_that_cannot_be_read_are_io_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        ("missing file", dir.path().join("missing.yaml")),
        ("a directory", dir.path().to_path_buf()),
    ];
    for (case, path) in cases {
        assert_eq!(outcome(read_bounded(&path, 1024)), Want::Io, "{case}");
    }
}

#[test]
fn an_endless_file_stops_at_the_cap() {
    let got = read_bounded(Path::new("/dev/zero"), 1 << 20);
    assert_eq!(outcome(got), Want::TooLarge);
}

#[test]
fn messages_name_the_path_and_the_fix() {
    let path = PathBuf::from("/etc/plugin/config.yaml");
    let cases = [
        (
            ReadError::TooLarge {
                path: path.clone(),
                max: 1048576,
            },
            "/etc/plugin/config.yaml is larger than 1048576 bytes",
        ),
        (
            ReadError::NotUtf8 {
                path: path.clone(),
                offset: 7,
            },
            "offset 7); save it as UTF-8",
        ),
        (
            ReadError::Io {
                path: path.clone(),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            },
            "cannot read /etc/plugin/config.yaml: entity not found; check",
        ),
    ];
    for (err, part) in cases {
        assert!(err.to_string().contains(part), "{part:?} in {err}");
    }
}

#[test]
fn as_io_error_keeps_the_os_error_or_the_message() {
    let path = PathBuf::from("/n.yaml");
    let cases = [
        (
            ReadError::Io {
                path: path.clone(),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            },
            std::io::ErrorKind::NotFound,
            "entity not found",
        ),
        (
            ReadError::TooLarge {
                path: path.clone(),
                max: 10,
            },
            std::io::ErrorKind::InvalidData,
            "/n.yaml is larger than 10 bytes",
        ),
    ];
    for (err, kind, text) in cases {
        let io = std::io::Error::from(err);
        assert_eq!(io.kind(), kind, "{text}");
        assert!(io.to_string().starts_with(text), "{text:?} in {io}");
    }
}
