//! `[[files]] source`: reading a host file or directory to copy into the target byte for byte,
//! with its modes. Everything is read at validation, so a missing, unreadable or oversized
//! source stops the run before any container starts, and the bytes installed are the bytes
//! checked (a file changed while the run goes on does not matter).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use crate::scenario::load::describe_file_type;

/// The most a scenario's `source`s may hold together: enough for a statically linked service
/// binary and its data, little enough to keep in memory and to pipe into a target as one tar.
pub const MAX_SOURCE_BYTES: u64 = 64 << 20;
/// The most files a scenario's `source` directories may hold together.
pub const MAX_SOURCE_FILES: usize = 10_000;
/// How deeply a source directory is walked.
const MAX_DEPTH: usize = 32;

/// One regular file read from a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// Its path below the source directory; empty when the source is the file itself.
    pub relative: PathBuf,
    pub bytes: Vec<u8>,
    /// Permission bits on the host.
    pub mode: u32,
}

/// What a source turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(SourceFile),
    /// A directory's regular files, in path order.
    Dir(Vec<SourceFile>),
}

/// What is left of the per-scenario limits while its sources are read.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub bytes: u64,
    pub files: usize,
}

impl Default for Budget {
    fn default() -> Budget {
        Budget { bytes: MAX_SOURCE_BYTES, files: MAX_SOURCE_FILES }
    }
}

/// Read `path` (a file, followed if it is a symlink, or a directory). Inside a directory,
/// a symlink is copied as the regular file it points to when that file is inside the
/// directory too; one that points outside (it would copy a host file nobody named), at a
/// directory, or nowhere is refused, like FIFOs, devices and sockets. `Err` says why, naming
/// the offending path.
pub fn read_source(path: &Path, budget: &mut Budget) -> Result<Source, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    if meta.is_file() {
        return read_file(path, path, &meta, PathBuf::new(), budget).map(Source::File);
    }
    if !meta.is_dir() {
        return Err(format!("`{}` is {}, not a file or directory", path.display(), describe_file_type(&meta.file_type())));
    }
    let root = std::fs::canonicalize(path).map_err(|e| format!("cannot resolve `{}`: {e}", path.display()))?;
    let mut out = Vec::new();
    walk(&root, path, &root, 0, budget, &mut out)?;
    if out.is_empty() {
        return Err(format!("directory `{}` holds no file", path.display()));
    }
    Ok(Source::Dir(out))
}

/// Walk `dir` below the canonical `root`; messages name paths as the scenario wrote them
/// (`shown` for the root), not as resolved on this machine.
fn walk(root: &Path, shown: &Path, dir: &Path, depth: usize, budget: &mut Budget, out: &mut Vec<SourceFile>) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("`{}` is nested more than {MAX_DEPTH} directories deep", shown.join(dir.strip_prefix(root).unwrap_or(dir)).display()));
    }
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot list `{}`: {e}", dir.display()))?;
    let mut paths: Vec<PathBuf> = entries.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>().map_err(|e| format!("cannot list `{}`: {e}", dir.display()))?;
    paths.sort();
    for path in paths {
        let relative = path.strip_prefix(root).expect("walked below the root").to_path_buf();
        let named = shown.join(&relative);
        let meta = std::fs::symlink_metadata(&path).map_err(|e| format!("cannot read `{}`: {e}", named.display()))?;
        let kind_of = meta.file_type();
        if kind_of.is_symlink() {
            let written = std::fs::read_link(&path).map(|t| t.display().to_string()).unwrap_or_default();
            let target = std::fs::canonicalize(&path).map_err(|e| format!("symlink `{}` cannot be followed: {e}", named.display()))?;
            if !target.starts_with(root) {
                return Err(format!("symlink `{}` escapes the source directory (it points to `{written}`)", named.display()));
            }
            let target_meta = std::fs::metadata(&target).map_err(|e| format!("cannot read `{}`: {e}", named.display()))?;
            if !target_meta.is_file() {
                return Err(format!("symlink `{}` points to {}, not a regular file", named.display(), describe_file_type(&target_meta.file_type())));
            }
            out.push(read_file(&target, &named, &target_meta, relative, budget)?);
        } else if kind_of.is_dir() {
            walk(root, shown, &path, depth + 1, budget, out)?;
        } else if kind_of.is_file() {
            out.push(read_file(&path, &named, &meta, relative, budget)?);
        } else {
            return Err(format!("`{}` is {}, which cannot be copied", named.display(), describe_file_type(&kind_of)));
        }
    }
    Ok(())
}

/// Read one regular file; `named` is how messages name it.
fn read_file(path: &Path, named: &Path, meta: &std::fs::Metadata, relative: PathBuf, budget: &mut Budget) -> Result<SourceFile, String> {
    if budget.files == 0 {
        return Err(format!("more than {MAX_SOURCE_FILES} files in the scenario's sources (at `{}`)", named.display()));
    }
    if meta.len() > budget.bytes {
        return Err(format!(
            "`{}` ({} bytes) goes over the limit of {} MiB for all of a scenario's sources together",
            named.display(),
            meta.len(),
            MAX_SOURCE_BYTES >> 20
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read `{}`: {e}", named.display()))?;
    // The file may have grown since it was measured.
    budget.bytes = budget.bytes.checked_sub(bytes.len() as u64).ok_or_else(|| format!("`{}` grew over the limit of {} MiB while it was read", named.display(), MAX_SOURCE_BYTES >> 20))?;
    budget.files -= 1;
    Ok(SourceFile { relative, bytes, mode: meta.permissions().mode() & 0o7777 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn write(path: &Path, bytes: &[u8], mode: u32) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_file_keeps_its_bytes_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("app");
        let bytes: Vec<u8> = (0..=255u8).chain([0, 0xff, b'\n']).collect();
        write(&bin, &bytes, 0o751);
        let mut budget = Budget::default();
        let Source::File(f) = read_source(&bin, &mut budget).unwrap() else { panic!("a file") };
        assert_eq!((f.bytes, f.mode, f.relative), (bytes, 0o751, PathBuf::new()));
        assert_eq!(budget.bytes, MAX_SOURCE_BYTES - 259);
    }

    #[test]
    fn a_directory_is_walked_in_order_with_inner_symlinks_followed() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("share");
        write(&src.join("b/run.sh"), b"#!/bin/sh\n", 0o755);
        write(&src.join("a.conf"), b"x=1\n", 0o600);
        symlink("a.conf", src.join("c-link.conf")).unwrap();
        let Source::Dir(files) = read_source(&src, &mut Budget::default()).unwrap() else { panic!("a dir") };
        let got: Vec<(String, u32)> = files.iter().map(|f| (f.relative.display().to_string(), f.mode)).collect();
        assert_eq!(got, [("a.conf".into(), 0o600), ("b/run.sh".into(), 0o755), ("c-link.conf".into(), 0o600)]);
        assert_eq!(files[2].bytes, b"x=1\n");
    }

    #[test]
    fn escaping_symlinks_specials_empties_and_the_limit_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        write(&src.join("ok"), b"1", 0o644);
        write(&dir.path().join("secret"), b"s", 0o600);
        symlink("../secret", src.join("leak")).unwrap();
        let e = read_source(&src, &mut Budget::default()).unwrap_err();
        assert!(e.contains("escapes the source directory"), "{e}");

        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        assert!(read_source(&empty, &mut Budget::default()).unwrap_err().contains("holds no file"));

        let missing = read_source(&dir.path().join("nope"), &mut Budget::default()).unwrap_err();
        assert!(missing.contains("No such file"), "{missing}");

        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        assert!(read_source(&fifo, &mut Budget::default()).unwrap_err().contains("a FIFO"));

        let big = dir.path().join("big");
        write(&big, &[7u8; 100], 0o644);
        let mut small = Budget { bytes: 99, files: 10 };
        assert!(read_source(&big, &mut small).unwrap_err().contains("goes over the limit of 64 MiB"));
        let mut one = Budget { bytes: 1000, files: 1 };
        read_source(&big, &mut one).unwrap();
        assert!(read_source(&big, &mut one).unwrap_err().contains("more than 10000 files"));
    }
}
