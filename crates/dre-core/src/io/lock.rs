//! One run at a time per output folder: an advisory lock (`flock`) on a hidden file
//! `.dre.lock` in the folder, holding the PID and the tool of the run that holds it. A
//! second run into the same folder is refused at once with the first run's PID, so that two
//! runs never mix their tiles. The kernel releases the lock when the process ends, however
//! it ends (a `kill -9` leaves no stale lock).

use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// The lock file's name in each output folder.
pub const LOCK_FILE: &str = ".dre.lock";

/// The folders this process holds locks on (one `flock` per folder: a second `flock` on
/// another descriptor of the same file would conflict with the first).
static HELD: Mutex<BTreeMap<PathBuf, Arc<File>>> = Mutex::new(BTreeMap::new());

fn held() -> MutexGuard<'static, BTreeMap<PathBuf, Arc<File>>> {
    HELD.lock().unwrap_or_else(|e| e.into_inner())
}

/// A held lock on an output folder, released when dropped (and when the process ends).
#[derive(Debug)]
pub struct OutputLock {
    key: Option<(PathBuf, Arc<File>)>,
}

impl OutputLock {
    /// Whether the folder is actually locked: a folder that cannot be made or written is
    /// not, and writing into it fails on its own.
    pub fn is_locked(&self) -> bool {
        self.key.is_some()
    }
}

impl Drop for OutputLock {
    fn drop(&mut self) {
        if let Some((key, file)) = self.key.take() {
            let mut h = held();
            // The map's copy and this one: the last user of the folder's lock lets it go.
            if Arc::strong_count(&file) <= 2 {
                h.remove(&key);
            }
        }
    }
}

/// Set by [`share_output_locks`]: this process works on named tiles only.
static SHARED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// From now on this process locks output folders shared (`flock(LOCK_SH)`): it works on
/// named tiles only (`--tiles`), so several such runs (the tasks of a survey, each on its
/// own tiles) may write into one folder at once, while a run on every tile is refused
/// beside them, and they beside it. Two runs on the same tile are the caller's to avoid.
pub fn share_output_locks() {
    SHARED.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Locks output folder `dir` for this run of `tool` (made if missing). Fails, naming the
/// other run's PID, when another process holds it. A folder that cannot be made or holds
/// no writable lock file is not locked (writing into it fails later with its own message).
/// The same folder locked twice by one process is one lock.
pub fn lock_output_dir(dir: &Path, tool: &str) -> Result<OutputLock> {
    if std::fs::create_dir_all(dir).is_err() {
        return Ok(OutputLock { key: None });
    }
    let Ok(key) = std::fs::canonicalize(dir) else {
        return Ok(OutputLock { key: None });
    };
    let mut h = held();
    if let Some(file) = h.get(&key) {
        return Ok(OutputLock {
            key: Some((key, file.clone())),
        });
    }
    let path = dir.join(LOCK_FILE);
    let Ok(mut file) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
    else {
        return Ok(OutputLock { key: None });
    };
    match try_lock(&file) {
        Ok(true) => {}
        Ok(false) => {
            let mut owner = String::new();
            let _ = file.read_to_string(&mut owner);
            return Err(Error::file(dir, held_by(&owner)));
        }
        // No flock on this filesystem: run unlocked, as before.
        Err(_) => return Ok(OutputLock { key: None }),
    }
    // Best effort: the PID is only for the message of a second run.
    let _ = file
        .set_len(0)
        .and_then(|_| file.rewind())
        .and_then(|_| writeln!(file, "{} {tool}", std::process::id()));
    let file = Arc::new(file);
    h.insert(key.clone(), file.clone());
    Ok(OutputLock {
        key: Some((key, file)),
    })
}

/// The refusal, from the lock file's `PID TOOL`.
fn held_by(owner: &str) -> String {
    let mut words = owner.split_whitespace();
    let who = match (words.next(), words.next()) {
        (Some(pid), Some(tool)) => format!("{tool} (PID {pid})"),
        (Some(pid), None) => format!("PID {pid}"),
        _ => "a process that has not written its PID yet".to_string(),
    };
    format!(
        "another run is writing into this folder: {who}; wait for it to finish or choose \
         another output folder"
    )
}

/// `flock(LOCK_EX | LOCK_NB)` (`LOCK_SH` after [`share_output_locks`]): Ok(false) when
/// another open file holds the lock.
fn try_lock(file: &File) -> std::io::Result<bool> {
    #[cfg(unix)]
    {
        use std::os::unix::io::AsRawFd;
        loop {
            let mode = if SHARED.load(std::sync::atomic::Ordering::SeqCst) {
                libc::LOCK_SH
            } else {
                libc::LOCK_EX
            };
            // SAFETY: flock on a descriptor this File owns.
            let r = unsafe { libc::flock(file.as_raw_fd(), mode | libc::LOCK_NB) };
            if r == 0 {
                return Ok(true);
            }
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EWOULDBLOCK) => return Ok(false),
                _ => return Err(e),
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_process_locks_a_folder_once_and_others_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("Out");
        let a = lock_output_dir(&out, "dre").unwrap();
        assert!(a.is_locked());
        // The same folder by another name, in the same process: the same lock.
        let b = lock_output_dir(&dir.path().join("Out/../Out"), "dre").unwrap();
        assert!(b.is_locked());
        let pid = std::process::id();
        assert_eq!(
            std::fs::read_to_string(out.join(LOCK_FILE)).unwrap(),
            format!("{pid} dre\n")
        );
        // Another open file of the lock (as another process would have) is refused.
        let other = File::open(out.join(LOCK_FILE)).unwrap();
        assert!(!try_lock(&other).unwrap());
        drop(a);
        assert!(!try_lock(&other).unwrap(), "b still holds it");
        drop(b);
        assert!(try_lock(&other).unwrap());
    }

    #[test]
    fn the_refusal_names_the_other_run() {
        assert!(held_by("123 make_cuts\n").contains("make_cuts (PID 123)"));
        assert!(held_by("123").contains("PID 123"));
        assert!(held_by("").contains("not written its PID"));
    }

    #[test]
    fn an_unmakeable_folder_is_not_locked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("file"), "").unwrap();
        let l = lock_output_dir(&dir.path().join("file/Out"), "dre").unwrap();
        assert!(!l.is_locked());
    }
}
