//! Shared by the CLI tests: a scratch working directory laid out like the original's.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{RwLock, RwLockWriteGuard};

/// HDF5 opens (and locks) files without close-on-exec: a binary spawned while a test writes
/// an HDF5 file in this process would inherit the file and keep it locked until it exits.
/// Every test shares this one process, so spawns ([`output`]) and in-process HDF5 writes
/// ([`hdf5_writing`]) never overlap.
static SPAWNING: RwLock<()> = RwLock::new(());

/// Held while a test writes HDF5 files itself: no binary starts meanwhile.
pub fn hdf5_writing() -> RwLockWriteGuard<'static, ()> {
    SPAWNING.write().unwrap_or_else(|e| e.into_inner())
}

/// `cmd.output()`, spawned outside any in-process HDF5 write.
pub fn output(cmd: &mut Command) -> Output {
    let child = {
        let _spawning = SPAWNING.read().unwrap_or_else(|e| e.into_inner());
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("binary runs")
    };
    child.wait_with_output().expect("binary runs")
}

/// `cmd.spawn()` with its output piped, outside any in-process HDF5 write (for tests that
/// signal the process while it runs).
pub fn spawn(cmd: &mut Command) -> std::process::Child {
    let _spawning = SPAWNING.read().unwrap_or_else(|e| e.into_inner());
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs")
}

/// A temporary working directory holding copies of the named golden folders/files.
pub fn golden_workdir(items: &[&str]) -> tempfile::TempDir {
    let g = dre_testdata::golden();
    let dir = tempfile::tempdir().unwrap();
    for item in items {
        copy_tree(&g.join(item), &dir.path().join(item));
    }
    dir
}

pub fn copy_tree(src: &Path, dst: &Path) {
    if src.is_dir() {
        std::fs::create_dir_all(dst).unwrap();
        for e in std::fs::read_dir(src).unwrap() {
            let e = e.unwrap();
            copy_tree(&e.path(), &dst.join(e.file_name()));
        }
    } else {
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(src, dst).unwrap();
    }
}

/// Runs a binary in `dir` with `args`.
pub fn run_in(bin: &str, dir: &Path, args: &[&str]) -> Output {
    output(Command::new(bin).current_dir(dir).args(args))
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn golden_cube() -> PathBuf {
    dre_testdata::golden().join("cube_small.fits")
}

/// Every file below `dir` but the runs' bookkeeping ([`is_bookkeeping`]), for checking
/// that no temporary file was left behind.
pub fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(all_files(&p));
            } else if !is_bookkeeping(&p) {
                out.push(p);
            }
        }
    }
    out
}

/// The hidden files a run leaves beside its outputs on purpose: the output folder's lock
/// `.dre.lock` and the records `.NAME.TOOL.record` that `--resume` reads.
pub fn is_bookkeeping(p: &Path) -> bool {
    let name = p.file_name().unwrap_or_default().to_string_lossy();
    name == dre::LOCK_FILE || (name.starts_with('.') && name.ends_with(".record"))
}
