//! Tests of `gpu::nvml::loading` (tables of cases).
use super::*;
use std::os::unix::fs::symlink;

fn touch(path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, b"ELF").unwrap();
}

#[test]
fn root_slash_or_empty_uses_the_bare_name() {
    for root in ["/", ""] {
        assert_eq!(
            library_path(Path::new(root), None),
            PathBuf::from(LIB_NAME),
            "{root:?}"
        );
    }
}

#[test]
fn an_explicit_path_wins() {
    let explicit = Path::new("/opt/nvidia/libnvidia-ml.so.1");
    assert_eq!(
        library_path(Path::new("/driver-root"), Some(explicit)),
        explicit
    );
}

#[test]
fn nothing_under_the_root_falls_back_to_the_bare_name() {
    let root = tempfile::tempdir().unwrap();
    assert_eq!(library_path(root.path(), None), PathBuf::from(LIB_NAME));
}

#[test]
fn directories_are_searched_in_nvidia_order() {
    let root = tempfile::tempdir().unwrap();
    let debian = root.path().join("usr/lib/x86_64-linux-gnu").join(LIB_NAME);
    let lib64 = root.path().join("lib64").join(LIB_NAME);
    touch(&debian);
    touch(&lib64);
    assert_eq!(library_path(root.path(), None), debian);
    let first = root.path().join("usr/lib64").join(LIB_NAME);
    touch(&first);
    assert_eq!(library_path(root.path(), None), first);
}

#[test]
fn symlinks_resolve_inside_the_root() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("usr/lib64");
    let real = dir.join("libnvidia-ml.so.550.54.15");
    touch(&real);
    // Relative link, as the driver installer makes it.
    symlink("libnvidia-ml.so.550.54.15", dir.join(LIB_NAME)).unwrap();
    assert_eq!(library_path(root.path(), None), real);
}

#[test]
fn absolute_symlinks_are_taken_relative_to_the_root() {
    let root = tempfile::tempdir().unwrap();
    let real = root.path().join("lib64/libnvidia-ml.so.550.54.15");
    touch(&real);
    let dir = root.path().join("usr/lib64");
    std::fs::create_dir_all(&dir).unwrap();
    symlink("/lib64/libnvidia-ml.so.550.54.15", dir.join(LIB_NAME)).unwrap();
    assert_eq!(library_path(root.path(), None), real);
}

#[test]
fn dangling_or_looping_symlinks_are_skipped() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("usr/lib64");
    std::fs::create_dir_all(&dir).unwrap();
    symlink("missing.so", dir.join(LIB_NAME)).unwrap();
    let loop_dir = root.path().join("lib64");
    std::fs::create_dir_all(&loop_dir).unwrap();
    symlink(LIB_NAME, loop_dir.join(LIB_NAME)).unwrap();
    assert_eq!(library_path(root.path(), None), PathBuf::from(LIB_NAME));
}

#[test]
fn parent_components_cannot_escape_the_root() {
    let root = Path::new("/driver-root");
    assert_eq!(
        join_inside(root, Path::new("/usr/../../../etc/passwd")),
        PathBuf::from("/driver-root/etc/passwd")
    );
}
