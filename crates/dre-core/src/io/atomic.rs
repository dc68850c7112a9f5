//! Outputs appear whole or not at all: write to a hidden temporary file beside the
//! destination, then rename it over the destination (atomic on one filesystem), with the
//! file and its folder flushed to disk so that a crash or a full disk never leaves a
//! committed but truncated output.
//!
//! Every temporary this process has not yet committed is listed in a process-wide registry,
//! so that a signal handler can remove them ([`remove_live_temporaries`]) before exiting.
//! Temporaries are named `.NAME.PID-HOST.tmp` (files) and `.TAG.PID-HOST.tmp/` (scratch
//! folders); the first write into a folder removes those of processes of this host that no
//! longer run. The host keeps the tasks of a survey on several machines sharing a folder
//! from removing each other's temporaries (a PID means nothing on another machine).

use crate::error::{AtPath, Error, Result};
use std::collections::BTreeSet;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// The temporaries of this process not yet committed or removed.
struct Live {
    next: u64,
    entries: Vec<(u64, PathBuf, bool)>,
    /// Set by [`Registry::remove_all`]: no new temporary may start.
    stopping: bool,
    /// Folders already swept of stale temporaries by this process.
    swept: BTreeSet<PathBuf>,
}

/// The list of live temporaries. A temporary is made (the file or folder created on disk)
/// only under its lock, and removal takes the lock, so that a stop can never fall between a
/// temporary's creation and its removal: it is created before (and removed) or refused.
struct Registry(Mutex<Live>);

static LIVE: Registry = Registry::new();

impl Registry {
    const fn new() -> Registry {
        Registry(Mutex::new(Live {
            next: 0,
            entries: Vec::new(),
            stopping: false,
            swept: BTreeSet::new(),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, Live> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The list, locked, unless the process is stopping (`path`: the temporary asked for).
    fn open(&self, path: &Path) -> Result<MutexGuard<'_, Live>> {
        let l = self.lock();
        if l.stopping {
            return Err(Error::file(path, "the run is stopping"));
        }
        Ok(l)
    }

    /// Lists `path` (a file, or a folder when `dir`) as a live temporary and runs `make`,
    /// which creates it or nothing; refused once the process is stopping.
    fn register(&self, path: &Path, dir: bool, make: impl FnOnce() -> Result<()>) -> Result<u64> {
        let mut l = self.open(path)?;
        make()?;
        l.next += 1;
        let id = l.next;
        l.entries.push((id, path.to_path_buf(), dir));
        Ok(id)
    }

    fn unregister(&self, id: u64) {
        self.lock().entries.retain(|(i, _, _)| *i != id);
    }

    /// Runs `make`, which creates the registered temporary `path` (and no more: the lock is
    /// held meanwhile), unless the process is stopping.
    fn creating<T>(&self, path: &Path, make: impl FnOnce() -> Result<T>) -> Result<T> {
        let _l = self.open(path)?;
        make()
    }

    /// Removes every live temporary and refuses new ones; returns how many were removed.
    fn remove_all(&self) -> usize {
        let mut l = self.lock();
        l.stopping = true;
        let mut removed = 0;
        for (_, path, dir) in &l.entries {
            let gone = if *dir {
                // A child killed a moment ago may still have been writing into it: try twice.
                std::fs::remove_dir_all(path).or_else(|_| std::fs::remove_dir_all(path))
            } else {
                std::fs::remove_file(path)
            };
            if gone.is_ok() {
                removed += 1;
            }
        }
        removed
    }
}

/// Removes every temporary file and scratch folder this process has not committed, and
/// refuses new ones from then on (for a signal handler, right before the process exits).
/// A temporary being created meanwhile is waited for, then removed. Returns how many were
/// removed.
pub fn remove_live_temporaries() -> usize {
    LIVE.remove_all()
}

/// Removes, once per folder and process, the temporaries (`.NAME.PID.tmp` files,
/// `.TAG.PID.tmp/` folders) that processes no longer running left in `dir`.
fn sweep_once(dir: &Path) {
    let key = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    if LIVE.lock().swept.insert(key) {
        remove_stale_temporaries(dir);
    }
}

/// Removes the temporaries of dead processes from `dir` (not its sub-folders): hidden
/// entries `.NAME.PID.tmp` whose PID is not this process and no longer runs. Returns how
/// many were removed; a folder that cannot be read has none.
pub fn remove_stale_temporaries(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let me = std::process::id();
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(temporary_pid) else {
            continue;
        };
        let host = name.to_str().and_then(temporary_host);
        if pid == me || process_runs(pid) || host.is_some_and(|h| h != this_host()) {
            continue;
        }
        let path = e.path();
        let gone = match e.file_type() {
            Ok(t) if t.is_dir() => std::fs::remove_dir_all(&path),
            _ => std::fs::remove_file(&path),
        };
        if gone.is_ok() {
            removed += 1;
        }
    }
    removed
}

/// The PID of a temporary's name `.NAME.PID-HOST.tmp` or `.NAME.PID.tmp` (NAME not
/// empty), else None.
fn temporary_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (stem, owner) = rest.rsplit_once('.')?;
    let pid = owner.split_once('-').map_or(owner, |(pid, _)| pid);
    if stem.is_empty() || pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// The host of a temporary's name `.NAME.PID-HOST.tmp` (None: an older name without one).
fn temporary_host(name: &str) -> Option<&str> {
    temporary_pid(name)?;
    let rest = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (_, owner) = rest.rsplit_once('.')?;
    owner.split_once('-').map(|(_, host)| host)
}

/// This process in temporaries' names: `PID-HOST`.
fn owner_tag() -> String {
    format!("{}-{}", std::process::id(), this_host())
}

/// This machine's short host name, as it goes into names (letters, digits and `-`).
fn this_host() -> &'static str {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        let mut buf = [0u8; 256];
        // SAFETY: gethostname writes at most buf.len() bytes into buf.
        let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        let name = if r == 0 {
            String::from_utf8_lossy(&buf[..end]).into_owned()
        } else {
            String::new()
        };
        let short: String = name
            .split('.')
            .next()
            .unwrap_or_default()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        if short.is_empty() {
            "host".into()
        } else {
            short
        }
    })
}

/// Whether process `pid` exists (on this machine's PID namespace).
pub(crate) fn process_runs(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(p) = libc::pid_t::try_from(pid) else {
            return false;
        };
        if p <= 0 {
            return false;
        }
        // SAFETY: signal 0 only checks that the process exists and may be signalled.
        let r = unsafe { libc::kill(p, 0) };
        r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// Flushes a file's data to disk; a full disk shows up here if not before.
fn sync_file(path: &Path, dest: &Path) -> Result<()> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::file(dest, format!("cannot write to disk: {e}")))
}

/// Flushes a folder, so that a rename into it survives a crash. Filesystems that cannot
/// sync folders (EINVAL) are left as they are.
fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        match File::open(dir).and_then(|f| f.sync_all()) {
            Err(e) if e.raw_os_error() != Some(libc::EINVAL) => {
                Err(Error::file(dir, format!("cannot write to disk: {e}")))
            }
            _ => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A file being written. Dropped without [`PendingFile::commit`], the temporary is removed,
/// so an error or a panic never leaves a half-written output behind.
#[derive(Debug)]
pub struct PendingFile {
    tmp: PathBuf,
    dest: PathBuf,
    id: u64,
    committed: bool,
}

impl PendingFile {
    /// Makes the destination's folder and reserves a temporary name beside it (stale
    /// temporaries of interrupted runs are removed).
    pub fn new(dest: impl AsRef<Path>) -> Result<Self> {
        let dest = dest.as_ref().to_path_buf();
        let dir = parent_dir(&dest);
        std::fs::create_dir_all(&dir).at(&dir)?;
        sweep_once(&dir);
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{name}.{}.tmp", owner_tag()));
        let id = LIVE.register(&tmp, false, || Ok(()))?;
        let pending = PendingFile {
            tmp,
            dest,
            id,
            committed: false,
        };
        if pending.tmp.exists() {
            std::fs::remove_file(&pending.tmp).at(&pending.tmp)?;
        }
        Ok(pending)
    }

    /// Runs `make` on the temporary's path: it must create the file there, and write it
    /// afterwards, outside (every creation waits on one lock). The file is created only
    /// through here, so that a stop (SIGINT, SIGTERM, SIGHUP) removes it, or comes first and
    /// refuses it: none is left behind.
    pub fn create<T>(&self, make: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
        LIVE.creating(&self.dest, || make(&self.tmp))
    }

    /// The temporary's path (for tests).
    #[cfg(test)]
    fn path(&self) -> &Path {
        &self.tmp
    }

    /// Where the file will be once committed.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Flushes the finished file to disk and moves it into place, replacing any older
    /// output, then flushes the folder.
    pub fn commit(mut self) -> Result<()> {
        sync_file(&self.tmp, &self.dest)?;
        std::fs::rename(&self.tmp, &self.dest).at(&self.dest)?;
        self.committed = true;
        LIVE.unregister(self.id);
        sync_dir(&parent_dir(&self.dest))
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
            LIVE.unregister(self.id);
        }
    }
}

/// Writes `bytes` to `dest` whole or not at all (a [`PendingFile`] written in one go).
pub fn write_file(dest: &Path, bytes: &[u8]) -> Result<()> {
    let pending = PendingFile::new(dest)?;
    let cannot = |e: std::io::Error| Error::file(dest, format!("cannot write: {e}"));
    let mut f = pending.create(|tmp| File::create(tmp).map_err(cannot))?;
    f.write_all(bytes).map_err(cannot)?;
    drop(f);
    pending.commit()
}

/// A hidden folder beside the destinations for tools that write several files themselves
/// (SExtractor, PSFEx): they write into it, and [`ScratchDir::commit`] moves each file into
/// place once the run succeeded. Dropped, it is removed with whatever it still holds.
#[derive(Debug)]
pub struct ScratchDir {
    dir: PathBuf,
    id: u64,
}

impl ScratchDir {
    /// Makes `dest_dir` and a fresh scratch folder `.TAG.PID.tmp` in it (stale temporaries
    /// of interrupted runs are removed).
    pub fn new(dest_dir: impl AsRef<Path>, tag: &str) -> Result<Self> {
        let dest_dir = dest_dir.as_ref();
        std::fs::create_dir_all(dest_dir).at(dest_dir)?;
        sweep_once(dest_dir);
        let dir = dest_dir.join(format!(".{tag}.{}.tmp", owner_tag()));
        let id = LIVE.register(&dir, true, || {
            if dir.exists() {
                std::fs::remove_dir_all(&dir).at(&dir)?;
            }
            std::fs::create_dir(&dir).at(&dir)
        })?;
        Ok(ScratchDir { dir, id })
    }

    /// The scratch folder (absolute when its destination was given absolute).
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Flushes `name` of the scratch folder to disk and moves it to `dest`, replacing any
    /// older output, then flushes `dest`'s folder.
    pub fn commit(&self, name: &str, dest: impl AsRef<Path>) -> Result<()> {
        let dest = dest.as_ref();
        let from = self.dir.join(name);
        sync_file(&from, dest)?;
        std::fs::rename(&from, dest).at(dest)?;
        sync_dir(&parent_dir(dest))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        LIVE.unregister(self.id);
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
    fn write_file_writes_whole_or_names_the_file_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("state/t01.json");
        write_file(&dest, b"{\"done\": 1}").unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"{\"done\": 1}");
        // A folder in the file's place: the rename fails.
        let blocked = dir.path().join("state/t02.json");
        std::fs::create_dir(&blocked).unwrap();
        let e = write_file(&blocked, b"{}").unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}: ", blocked.display())), "{e}");
        let left: Vec<_> = std::fs::read_dir(dir.path().join("state"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 2, "{left:?}");
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

    #[test]
    fn temporary_names_give_their_pid() {
        assert_eq!(temporary_pid(".a_cuts.h5.1234.tmp"), Some(1234));
        assert_eq!(temporary_pid(".gold.sex_dre.77.tmp"), Some(77));
        assert_eq!(temporary_pid("a.1234.tmp"), None);
        assert_eq!(temporary_pid("..1234.tmp"), None);
        assert_eq!(temporary_pid(".a.12x4.tmp"), None);
        assert_eq!(temporary_pid(".a.tmp"), None);
        assert_eq!(temporary_pid(".a_cuts.h5.1234-node-7.tmp"), Some(1234));
        assert_eq!(temporary_host(".a_cuts.h5.1234-node-7.tmp"), Some("node-7"));
        assert_eq!(temporary_host(".a_cuts.h5.1234.tmp"), None);
        assert_eq!(temporary_pid(".a.x-node.tmp"), None);
        assert_eq!(temporary_pid(".a.1234.record"), None);
    }

    /// A PID that no process has: above the kernel's limit.
    const DEAD: u32 = 4_194_304 + 17;

    #[test]
    fn stale_temporaries_of_dead_processes_are_removed_once_per_folder() {
        assert!(!process_runs(DEAD));
        assert!(process_runs(std::process::id()));
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let dead_file = d.join(format!(".a_cuts.h5.{DEAD}.tmp"));
        let dead_dir = d.join(format!(".a.sex_dre.{DEAD}.tmp"));
        let alive = d.join(format!(".b_cuts.h5.{}.tmp", std::process::id()));
        let other = d.join("keep.1.tmp");
        std::fs::write(&dead_file, "half").unwrap();
        std::fs::create_dir(&dead_dir).unwrap();
        std::fs::write(dead_dir.join("a_cat.fits"), "half").unwrap();
        std::fs::write(&other, "").unwrap();
        // This process's own temporary of another writer is not touched.
        std::fs::write(&alive, "").unwrap();
        let p = PendingFile::new(d.join("c.txt")).unwrap();
        assert!(!dead_file.exists() && !dead_dir.exists());
        assert!(alive.exists() && other.exists());
        drop(p);
        // Once per folder: a new stale file is left to the next run.
        std::fs::write(&dead_file, "").unwrap();
        drop(PendingFile::new(d.join("c.txt")).unwrap());
        assert!(dead_file.exists());
        assert_eq!(remove_stale_temporaries(d), 1);
        // A PID of another machine (a survey's task on another node) says nothing here;
        // one of this machine's, new style, goes.
        let elsewhere = d.join(format!(".e_cuts.h5.{DEAD}-{}x.tmp", this_host()));
        let here = d.join(format!(".h_cuts.h5.{DEAD}-{}.tmp", this_host()));
        std::fs::write(&elsewhere, "").unwrap();
        std::fs::write(&here, "").unwrap();
        assert_eq!(remove_stale_temporaries(d), 1);
        assert!(elsewhere.exists() && !here.exists());
    }

    #[test]
    fn a_stop_waits_for_a_temporary_being_created_removes_it_and_refuses_new_ones() {
        let reg = Registry::new();
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join(".a.1.tmp"), dir.path().join(".b.1.tmp"));
        reg.register(&a, false, || Ok(())).unwrap();
        let (started, creating) = std::sync::mpsc::channel();
        std::thread::scope(|s| {
            s.spawn(|| {
                reg.creating(&a, || {
                    started.send(()).unwrap();
                    // A slow create: the stop arrives in the middle of it.
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    std::fs::write(&a, "half").at(&a)
                })
                .unwrap()
            });
            creating.recv().unwrap();
            assert_eq!(reg.remove_all(), 1);
        });
        assert!(!a.exists());
        let e = reg.creating(&b, || std::fs::write(&b, "x").at(&b));
        assert_eq!(
            e.unwrap_err().to_string(),
            format!("{}: the run is stopping", b.display())
        );
        assert!(reg
            .register(&b, true, || std::fs::create_dir(&b).at(&b))
            .is_err());
        assert!(!b.exists());
    }

    #[test]
    fn live_temporaries_are_registered_until_committed_or_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let p = PendingFile::new(dir.path().join("x")).unwrap();
        let s = ScratchDir::new(dir.path(), "y").unwrap();
        let listed = |path: &Path| LIVE.lock().entries.iter().any(|(_, e, _)| e == path);
        assert!(listed(p.path()) && listed(s.path()));
        let tmp = p.path().to_path_buf();
        std::fs::write(&tmp, "").unwrap();
        p.commit().unwrap();
        let sp = s.path().to_path_buf();
        drop(s);
        assert!(!listed(&tmp) && !listed(&sp));
    }
}
