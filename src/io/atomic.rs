//! Atomic file output: write to a temporary file in the target directory, flush it to disk,
//! then rename it into place, so that a killed run never leaves a half-written file.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// What to do when the target already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Fail (the rename refuses to replace an existing file, race-free).
    Refuse,
    /// Replace it.
    Replace,
}

/// Writes `bytes` to `target` atomically.
///
/// # Errors
/// [`Error::Io`] naming `target` (including "file exists" under [`Existing::Refuse`]).
pub fn write_atomic(target: &Path, bytes: &[u8], existing: Existing) -> Result<()> {
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let io_err = |e| Error::io(target, e);
    let mut builder = tempfile::Builder::new();
    builder.prefix(".csgis-").suffix(".tmp");
    // Temporary files are private (0600) by default; the output should get the usual
    // permissions (0666 minus the umask), as if it had been created directly.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let mut tmp = builder.tempfile_in(dir).map_err(io_err)?;
    tmp.write_all(bytes).map_err(io_err)?;
    tmp.as_file().sync_all().map_err(io_err)?;
    match existing {
        Existing::Replace => tmp.persist(target).map(drop).map_err(|e| io_err(e.error)),
        Existing::Refuse => tmp.persist_noclobber(target).map(drop).map_err(|e| io_err(e.error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_or_replaces_and_leaves_no_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.png");
        write_atomic(&target, b"one", Existing::Refuse).unwrap();
        assert!(write_atomic(&target, b"two", Existing::Refuse).is_err());
        assert_eq!(std::fs::read(&target).unwrap(), b"one");
        write_atomic(&target, b"three", Existing::Replace).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"three");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("out.png")]);
    }
}
