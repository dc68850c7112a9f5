//! Outputs appear whole or not at all: write to a hidden temporary file beside the
//! destination, then rename it over the destination (atomic on one filesystem).

use crate::error::{AtPath, Result};
use std::path::{Path, PathBuf};

/// A file being written. Dropped without [`PendingFile::commit`], the temporary is removed,
/// so an error or a panic never leaves a half-written output behind.
#[derive(Debug)]
pub struct PendingFile {
    tmp: PathBuf,
    dest: PathBuf,
    committed: bool,
}

impl PendingFile {
    /// Makes the destination's folder and reserves a temporary name beside it
    /// (a stale temporary of an interrupted run is removed).
    pub fn new(dest: impl AsRef<Path>) -> Result<Self> {
        let dest = dest.as_ref().to_path_buf();
        let dir = match dest.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir).at(&dir)?;
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        if tmp.exists() {
            std::fs::remove_file(&tmp).at(&tmp)?;
        }
        Ok(PendingFile {
            tmp,
            dest,
            committed: false,
        })
    }

    /// Where to write.
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// Where the file will be once committed.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Moves the finished file into place, replacing any older output.
    pub fn commit(mut self) -> Result<()> {
        std::fs::rename(&self.tmp, &self.dest).at(&self.dest)?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_replaces_and_drop_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("sub/out.txt");
        let p = PendingFile::new(&dest).unwrap();
        std::fs::write(p.path(), "new").unwrap();
        assert!(!dest.exists());
        p.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&dest).unwrap(), "new");

        let p = PendingFile::new(&dest).unwrap();
        std::fs::write(p.path(), "half").unwrap();
        let tmp = p.path().to_path_buf();
        drop(p);
        assert!(!tmp.exists());
        assert_eq!(std::fs::read_to_string(&dest).unwrap(), "new");
    }
}
