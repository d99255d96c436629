//! Writing a spec file as CDI's cache does: into a temporary file in the
//! same directory, mode 0644, then renamed over the target, so a reader
//! (the runtime resolving a device) sees the old spec or the new one, never
//! a half-written file.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{CdiError, Spec};

/// NVIDIA's spec directory (`--cdi-root` / `CDI_ROOT`).
pub const DEFAULT_CDI_ROOT: &str = "/var/run/cdi";

/// Tells the temp files of concurrent writers in one process apart.
static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// Writes `spec` as `<dir>/<file_name>`; returns the path written.
pub fn write_spec(dir: &Path, file_name: &str, spec: &Spec) -> Result<PathBuf, CdiError> {
    let target = dir.join(file_name);
    let err = |path: &Path| {
        let path = path.display().to_string();
        move |source| CdiError::Write { path, source }
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .map_err(err(dir))?;
    let n = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!("spec.{}-{n}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&tmp)?;
        file.write_all(spec.to_json().as_bytes())?;
        // The umask may have narrowed the mode given at creation.
        file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
        file.sync_all()?;
        std::fs::rename(&tmp, &target)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(err(&target)(e));
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cdi::spec::{ContainerEdits, Device};
    use std::os::unix::fs::PermissionsExt;

    fn spec(name: &str) -> Spec {
        Spec {
            cdi_version: "0.3.0".into(),
            kind: crate::cdi::KIND.into(),
            devices: vec![Device {
                name: name.into(),
                container_edits: ContainerEdits {
                    env: vec!["A=b".into()],
                    ..ContainerEdits::default()
                },
            }],
            container_edits: ContainerEdits::default(),
        }
    }

    #[test]
    fn the_spec_replaces_the_old_file_with_mode_0644_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("run/cdi");
        write_spec(&sub, "x.json", &spec("a")).unwrap();
        let path = write_spec(&sub, "x.json", &spec("b")).unwrap();
        assert_eq!(path, sub.join("x.json"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(r#""name":"b""#), "{text}");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        let names: Vec<_> = std::fs::read_dir(&sub)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("x.json")]);
    }

    #[test]
    fn a_directory_that_cannot_be_made_is_a_write_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain-file");
        std::fs::write(&file, "").unwrap();
        let e = write_spec(&file.join("cdi"), "x.json", &spec("a")).unwrap_err();
        assert!(e.to_string().contains("plain-file/cdi"), "{e}");
    }
}
