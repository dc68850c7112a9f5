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

/// A hidden folder beside the destinations for tools that write several files themselves
/// (SExtractor, PSFEx): they write into it, and [`ScratchDir::commit`] moves each file into
/// place once the run succeeded. Dropped, it is removed with whatever it still holds.
#[derive(Debug)]
pub struct ScratchDir {
    dir: PathBuf,
}

impl ScratchDir {
    /// Makes `dest_dir` and a fresh scratch folder `.TAG.PID.tmp` in it.
    pub fn new(dest_dir: impl AsRef<Path>, tag: &str) -> Result<Self> {
        let dest_dir = dest_dir.as_ref();
        std::fs::create_dir_all(dest_dir).at(dest_dir)?;
        let dir = dest_dir.join(format!(".{tag}.{}.tmp", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).at(&dir)?;
        }
        std::fs::create_dir(&dir).at(&dir)?;
        Ok(ScratchDir { dir })
    }

    /// The scratch folder (absolute when its destination was given absolute).
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Moves `name` from the scratch folder to `dest`, replacing any older output.
    pub fn commit(&self, name: &str, dest: impl AsRef<Path>) -> Result<()> {
        let dest = dest.as_ref();
        std::fs::rename(self.dir.join(name), dest).at(dest)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
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

    #[test]
    fn scratch_dir_commits_files_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let s = ScratchDir::new(&out, "t").unwrap();
        std::fs::write(s.path().join("a"), "a").unwrap();
        std::fs::write(s.path().join("b"), "b").unwrap();
        s.commit("a", out.join("a.txt")).unwrap();
        let scratch = s.path().to_path_buf();
        drop(s);
        assert!(!scratch.exists());
        assert_eq!(std::fs::read_to_string(out.join("a.txt")).unwrap(), "a");
        assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1);
    }
}
