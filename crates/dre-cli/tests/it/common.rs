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

// ---- A small synthetic tile for the bad-input tests -------------------------------------

/// Stamp size of the small tile.
pub const B: usize = 32;

/// The small tile's grid: one n, two q, two theta and the radii `logh`.
pub fn small_grid(logh: dre::Axis) -> dre::Grid {
    dre::Grid {
        index: dre::Axis::new(4.0, 0.0, 1),
        axrat: dre::Axis::new(0.5, 0.5, 2),
        posang: dre::Axis::new(0.0, 90.0, 2),
        logh,
        boxsize: B,
    }
}

/// A round blob whose width grows with `k`, at pixel `p` of a B x B stamp.
pub fn blob(k: usize, p: usize) -> f32 {
    let c = (B as f32 - 1.0) / 2.0;
    let (x, y) = ((p % B) as f32 - c, (p / B) as f32 - c);
    (-(x * x + y * y) / (4.0 + 3.0 * k as f32)).exp()
}

/// A 12-model cube of three radii (blobs 0, 1, 2) written to `path`.
pub fn write_small_cube(path: &Path) {
    let g = small_grid(dre::Axis::new(0.2, 0.2, 3));
    let data = (0..g.n_models())
        .flat_map(|k| (0..B * B).map(move |p| blob(k % 3, p)))
        .collect();
    dre::write_cube(path, &dre::ModelCube { grid: g, data }, &[]).unwrap();
}

/// A cut of blob 1 with a little deterministic noise, a round segment of radius 6.
pub fn small_cut(name: &str) -> dre::Cut {
    let c = (B as f32 - 1.0) / 2.0;
    dre::Cut {
        name: name.into(),
        size: B,
        obj: (0..B * B)
            .map(|p| 500.0 * blob(1, p) + ((p * 7919) % 13) as f32 - 6.0)
            .collect(),
        seg: (0..B * B)
            .map(|p| ((p % B) as f32 - c).powi(2) + ((p / B) as f32 - c).powi(2) < 36.0)
            .collect(),
        rms: vec![3.0; B * B],
    }
}

/// `cuts` written to the cut file `path` (low compression), no binary starting meanwhile.
pub fn write_small_cuts(path: &Path, cuts: &[dre::Cut]) {
    let _writing = hdf5_writing();
    let mut w = dre::CutWriter::create(path, dre::Compression::Low).unwrap();
    for c in cuts {
        w.add(c.clone()).unwrap();
    }
    w.finish().unwrap();
}

/// Column `name` of a FITS table as f64.
pub fn f64_column(path: &Path, name: &str) -> Vec<f64> {
    dre::read_catalog(path)
        .unwrap()
        .column(name)
        .unwrap()
        .as_f64()
        .unwrap()
}

/// The stderr lines of a run of `tool`, each asserted to be one `TOOL: ...` message, with
/// no panic, no abort and no failed allocation behind them.
pub fn tool_lines(tool: &str, o: &Output) -> Vec<String> {
    let err = stderr(o);
    assert!(
        !err.contains("panicked")
            && !err.contains("RUST_BACKTRACE")
            && !err.contains("memory allocation"),
        "{err}"
    );
    assert_ne!(o.status.code(), Some(134), "aborted: {err}");
    let lines: Vec<String> = err.lines().map(String::from).collect();
    for l in &lines {
        assert!(
            l.starts_with(&format!("{tool}: ")),
            "not a {tool} line: {l}"
        );
    }
    lines
}

/// A fake `source-extractor` in `dir/bin` running `script` (sh), and a PATH that finds it
/// first.
pub fn fake_sextractor(dir: &Path, script: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let fake = bin.join("source-extractor");
    std::fs::write(&fake, format!("#!/bin/sh\n{script}\n")).unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    format!("{}:{}", bin.display(), std::env::var("PATH").unwrap())
}

/// Every temporary below `dir`, file or folder (`*.tmp`, `*.part`).
pub fn temporaries(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        let n = p.to_string_lossy();
        if n.ends_with(".tmp") || n.ends_with(".part") {
            out.push(p.clone());
        }
        if p.is_dir() {
            out.extend(temporaries(&p));
        }
    }
    out
}

/// No temporary is left below `dir`.
pub fn no_temporaries(dir: &Path) {
    let left = temporaries(dir);
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// `dre -m cube.fits --quiet EXTRA...` in `dir`.
pub fn dre_small(dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["-m", "cube.fits", "--quiet"];
    args.extend_from_slice(extra);
    run_in(env!("CARGO_BIN_EXE_dre"), dir, &args)
}

/// The golden PSF as `dir/PSF/TILE.psf`.
pub fn golden_psf_for(dir: &Path, tile: &str) {
    std::fs::create_dir_all(dir.join("PSF")).unwrap();
    std::fs::copy(
        dre_testdata::golden().join("PSF/gold.psf"),
        dir.join(format!("PSF/{tile}.psf")),
    )
    .unwrap();
}
