//! Runs that survive faults: killed runs resumed with `--resume` (only the unfinished tiles
//! redone, outputs bit-identical to an uninterrupted run), SIGTERM / SIGINT / SIGHUP (exit
//! 128 + signal, one line saying where, no temporary and no child left), one run per
//! output folder, stale temporaries of dead processes, and `--cpu` above the cores.

use crate::common::{is_bookkeeping, no_temporaries, output, run_in, spawn, stderr, temporaries};
use crate::preprocess::{golden_tile, require_tools, write_crop};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant, SystemTime};

const DRE: &str = env!("CARGO_BIN_EXE_dre");
const MAKE_CUTS: &str = env!("CARGO_BIN_EXE_make_cuts");
const SEX_DRE: &str = env!("CARGO_BIN_EXE_sex_dre");
const PSFEX_DRE: &str = env!("CARGO_BIN_EXE_psfex_dre");
const TILES: usize = 20;

/// A PID no process has: above the kernel's largest.
const DEAD_PID: u32 = 4_194_304 + 17;

/// A working directory under target/ (hard links to the golden files are cheap there).
pub(crate) fn workdir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

fn link(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    if std::fs::hard_link(from, to).is_err() {
        std::fs::copy(from, to).unwrap();
    }
}

pub(crate) fn tile_names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("t{i:02}")).collect()
}

/// `n` tiles, each the golden tile with its SExtractor files, its cut file and its PSF.
pub(crate) fn pipeline_workdir(n: usize) -> tempfile::TempDir {
    let dir = workdir();
    let (d, g) = (dir.path(), dre_testdata::golden());
    for t in tile_names(n) {
        link(
            &g.join("Tiles/gold.fits"),
            &d.join(format!("Tiles/{t}.fits")),
        );
        for kind in ["cat", "nb", "rms", "seg"] {
            link(
                &g.join(format!("Sextracted/gold/gold_{kind}.fits")),
                &d.join(format!("Sextracted/{t}/{t}_{kind}.fits")),
            );
        }
        link(
            &g.join("Cuts/gold_cuts.h5"),
            &d.join(format!("Cuts/{t}_cuts.h5")),
        );
        link(&g.join("PSF/gold.psf"), &d.join(format!("PSF/{t}.psf")));
    }
    dir
}

/// dre on the golden cube, one thread (about 50 ms a tile), into Summary/ and Chi/.
fn dre_args(extra: &[&str]) -> Vec<String> {
    let cube = dre_testdata::golden().join("cube_small.fits");
    let mut a: Vec<String> = vec!["-m".into(), cube.display().to_string()];
    a.extend(["--cpu", "1"].map(String::from));
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn make_cuts_args(extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = ["-o", "NewCuts"].map(String::from).to_vec();
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn start(bin: &str, dir: &Path, args: &[String]) -> Child {
    spawn(Command::new(bin).current_dir(dir).args(args))
}

fn run(bin: &str, dir: &Path, args: &[String]) -> Output {
    output(Command::new(bin).current_dir(dir).args(args))
}

/// Waits (up to a minute) until `done` holds; fails if the child ended first.
pub(crate) fn wait_until(child: &mut Child, what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run ended ({status}) before {what}");
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

pub(crate) fn signal(child: &Child, sig: i32) {
    // SAFETY: a signal to our own child process.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, sig) }, 0);
}

/// The tiles of `dir` with a record of `tool`: those whose outputs are complete.
fn recorded(dir: &Path, tool: &str) -> BTreeSet<String> {
    let suffix = format!(".{tool}.record");
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    Some(n.strip_prefix('.')?.strip_suffix(&suffix)?.to_string())
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Contents and modification time of every output file below `dir` (bookkeeping aside),
/// by path relative to `dir`.
fn outputs(dir: &Path, folders: &[&str]) -> BTreeMap<PathBuf, (Vec<u8>, SystemTime)> {
    let mut out = BTreeMap::new();
    for f in folders {
        for e in std::fs::read_dir(dir.join(f)).unwrap().flatten() {
            let p = e.path();
            if p.is_file() && !is_bookkeeping(&p) {
                let m = p.metadata().unwrap().modified().unwrap();
                out.insert(
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    (std::fs::read(&p).unwrap(), m),
                );
            }
        }
    }
    out
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The tiles a `--resume` run says it skipped (`NAME: done before, skipped ...`, or
/// `(I/N) NAME: done before, ...`).
fn skipped_tiles(out: &str) -> BTreeSet<String> {
    out.lines()
        .filter(|l| l.contains(": done before, skipped"))
        .map(|l| {
            let name = l.split(':').next().unwrap();
            name.rsplit(' ').next().unwrap().to_string()
        })
        .collect()
}

/// Kills a run with SIGKILL once `k` tiles are done, resumes it, and checks that only the
/// unfinished tiles were redone and that the outputs are those of an uninterrupted run.
fn kill_and_resume(
    bin: &str,
    args: &dyn Fn(&[&str]) -> Vec<String>,
    tool: &str,
    out_dirs: &[&str],
    record_dir: &str,
) {
    let dir = pipeline_workdir(TILES);
    let d = dir.path();
    let records = d.join(record_dir);
    let mut child = start(bin, d, &args(&[]));
    wait_until(&mut child, "3 tiles were done", || {
        recorded(&records, tool).len() >= 3
    });
    signal(&child, libc::SIGKILL);
    child.wait().unwrap();
    let done = recorded(&records, tool);
    assert!(
        done.len() < TILES,
        "{tool} finished before it could be killed"
    );
    let before = outputs(d, out_dirs);

    let o = run(bin, d, &args(&["--resume"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let said = stdout(&o);
    // Which tiles: exactly those with a record were skipped, the others redone.
    assert_eq!(skipped_tiles(&said), done, "{said}");
    let all: BTreeSet<String> = tile_names(TILES).into_iter().collect();
    for t in all.difference(&done) {
        assert!(
            said.lines()
                .any(|l| l.starts_with(&format!("{t}: ")) && !l.contains("skipped (")),
            "{t} was not redone: {said}"
        );
    }
    assert!(
        said.contains(&format!("{TILES} tiles"))
            && said.contains(&format!("{} skipped", done.len())),
        "{said}"
    );
    assert_eq!(recorded(&records, tool), all);
    no_temporaries(d);
    // The skipped tiles' outputs were not touched.
    let after = outputs(d, out_dirs);
    for (p, (bytes, mtime)) in &before {
        let tile = p.file_name().unwrap().to_string_lossy()[..3].to_string();
        if done.contains(&tile) {
            assert_eq!(after.get(p), Some(&(bytes.clone(), *mtime)), "{p:?}");
        }
    }

    // Bit-identical to an uninterrupted run.
    let clean = pipeline_workdir(TILES);
    let o = run(bin, clean.path(), &args(&[]));
    assert!(o.status.success(), "{}", stderr(&o));
    let want = outputs(clean.path(), out_dirs);
    assert_eq!(want.len(), after.len());
    for (p, (bytes, _)) in &want {
        assert!(after.get(p).is_some_and(|a| &a.0 == bytes), "{p:?} differs");
    }
}

#[test]
fn dre_killed_then_resumed_redoes_only_the_unfinished_tiles() {
    kill_and_resume(DRE, &dre_args, "dre", &["Summary", "Chi"], "Summary");
}

#[test]
fn make_cuts_killed_then_resumed_redoes_only_the_unfinished_tiles() {
    kill_and_resume(
        MAKE_CUTS,
        &make_cuts_args,
        "make_cuts",
        &["NewCuts"],
        "NewCuts",
    );
}

#[test]
fn resume_redoes_tiles_whose_inputs_or_options_changed() {
    let dir = pipeline_workdir(2);
    let d = dir.path();
    let o = run(MAKE_CUTS, d, &make_cuts_args(&[]));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(MAKE_CUTS, d, &make_cuts_args(&["--resume"]));
    assert_eq!(skipped_tiles(&stdout(&o)).len(), 2, "{}", stdout(&o));
    // Another option: every tile again.
    let o = run(
        MAKE_CUTS,
        d,
        &make_cuts_args(&["--resume", "--margin", "90"]),
    );
    assert!(skipped_tiles(&stdout(&o)).is_empty(), "{}", stdout(&o));
    // A changed input: that tile again.
    let seg = d.join("Sextracted/t01/t01_seg.fits");
    std::fs::remove_file(&seg).unwrap();
    std::fs::copy(
        dre_testdata::golden().join("Sextracted/gold/gold_seg.fits"),
        &seg,
    )
    .unwrap();
    let o = run(
        MAKE_CUTS,
        d,
        &make_cuts_args(&["--resume", "--margin", "90"]),
    );
    assert_eq!(
        skipped_tiles(&stdout(&o)),
        BTreeSet::from(["t00".to_string()]),
        "{}",
        stdout(&o)
    );
    // A cut file removed since: that tile again; without --resume, every tile again.
    std::fs::remove_file(d.join("NewCuts/t00_cuts.h5")).unwrap();
    let o = run(
        MAKE_CUTS,
        d,
        &make_cuts_args(&["--resume", "--margin", "90"]),
    );
    assert_eq!(
        skipped_tiles(&stdout(&o)),
        BTreeSet::from(["t01".to_string()]),
        "{}",
        stdout(&o)
    );
    let o = run(MAKE_CUTS, d, &make_cuts_args(&["--margin", "90"]));
    assert!(skipped_tiles(&stdout(&o)).is_empty(), "{}", stdout(&o));
    assert_eq!(stdout(&o).lines().count(), 2, "{}", stdout(&o));
}

/// Sends `sig` once a tile is done: the exit status is 128 + sig, one line says where the
/// run stopped (at the tiles being worked on: every tile started before them is done, none
/// after them, and each of them only if it had just finished; after a tile: it and those
/// before are done), no temporary is left.
fn stopped_by(bin: &str, args: &[String], sig: i32, name: &str, records: &str, tool: &str) {
    let dir = pipeline_workdir(TILES);
    let d = dir.path();
    let mut child = start(bin, d, args);
    wait_until(&mut child, "a tile was done", || {
        !recorded(&d.join(records), tool).is_empty()
    });
    signal(&child, sig);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(128 + sig), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(!err.contains("panicked"), "{err}");
    let last = err.lines().last().unwrap_or_default();
    let prefix = format!("{tool}: stopped by {name} ");
    let Some(rest) = last.strip_prefix(&prefix) else {
        panic!("{err}");
    };
    let (at, rest) = if let Some(r) = rest.strip_prefix("at ") {
        (true, r)
    } else if let Some(r) = rest.strip_prefix("after ") {
        (false, r)
    } else {
        panic!("{last}")
    };
    let (named, rest) = rest.split_once(": ").unwrap_or_else(|| panic!("{last}"));
    // `tile t03 (4/20)`, `tile t03 (4/20) and tile t04 (5/20)`, `tile a (..), tile b (..) and ...`
    let tiles: BTreeSet<String> = named
        .replace(" and ", ", ")
        .split(", ")
        .map(|t| {
            let t = t.strip_prefix("tile ").unwrap_or_else(|| panic!("{last}"));
            t.split(' ').next().unwrap().to_string()
        })
        .collect();
    let why = match (at, tiles.len()) {
        (false, 1) => "no output was unfinished; ",
        (true, 1) => "its unfinished outputs were removed; ",
        (true, _) => "their unfinished outputs were removed; ",
        (false, _) => panic!("{last}"),
    };
    assert!(
        rest.starts_with(why) && rest.ends_with("(run again with --resume to skip them)"),
        "{last}"
    );
    let done = recorded(&d.join(records), tool);
    // Tiles start in order: those started (done, or named) are the first ones.
    let started: BTreeSet<String> = done.union(&tiles).cloned().collect();
    let first: BTreeSet<String> = tile_names(TILES).into_iter().take(started.len()).collect();
    assert_eq!(started, first, "{last}: done {done:?}");
    if !at {
        // After a tile: every tile started is done, the one named last.
        assert_eq!(done, first, "{last}");
        assert_eq!(tiles.first(), first.last(), "{last}");
    }
    no_temporaries(d);
}

#[test]
fn dre_stopped_by_sigterm_or_sigint_exits_143_or_130_and_cleans_up() {
    stopped_by(
        DRE,
        &dre_args(&[]),
        libc::SIGTERM,
        "SIGTERM",
        "Summary",
        "dre",
    );
    stopped_by(
        DRE,
        &dre_args(&[]),
        libc::SIGINT,
        "SIGINT",
        "Summary",
        "dre",
    );
}

#[test]
fn make_cuts_stopped_by_sighup_or_sigterm_exits_129_or_143_and_cleans_up() {
    let a = make_cuts_args(&[]);
    stopped_by(
        MAKE_CUTS,
        &a,
        libc::SIGHUP,
        "SIGHUP",
        "NewCuts",
        "make_cuts",
    );
    stopped_by(
        MAKE_CUTS,
        &a,
        libc::SIGTERM,
        "SIGTERM",
        "NewCuts",
        "make_cuts",
    );
}

/// Whether process `pid` is gone (a zombie waiting for a reaper counts as gone).
pub(crate) fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|s| s.trim_start().starts_with('Z')),
    }
}

#[test]
fn sex_dre_stopped_kills_its_sextractor_and_removes_its_scratch_folder() {
    let dir = workdir();
    let d = dir.path();
    write_crop(&d.join("Tiles/a.fits"), &golden_tile(), 0, 0, 64, 1.0);
    // A SExtractor that runs until it is killed, and says its PID.
    let path = crate::common::fake_sextractor(
        d,
        &format!(
            "echo $$ > {0}/child.pid.part && mv {0}/child.pid.part {0}/child.pid\nexec sleep 60",
            d.display()
        ),
    );
    for (sig, name) in [(libc::SIGTERM, "SIGTERM"), (libc::SIGINT, "SIGINT")] {
        let _ = std::fs::remove_file(d.join("child.pid"));
        let mut child = spawn(
            Command::new(SEX_DRE)
                .current_dir(d)
                .env("PATH", &path)
                .args(["--subdir"]),
        );
        wait_until(&mut child, "SExtractor started", || {
            d.join("child.pid").exists()
        });
        let pid: u32 = std::fs::read_to_string(d.join("child.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(!temporaries(d).is_empty(), "SExtractor's scratch folder");
        signal(&child, sig);
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(128 + sig), "{}", stderr(&o));
        assert_eq!(
            stderr(&o),
            format!(
                "sex_dre: stopped by {name} at image a (1/1): its unfinished outputs were \
                 removed, 1 child process killed; the outputs finished before are complete \
                 (run again with --resume to skip them)\n"
            )
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while !gone(pid) {
            assert!(Instant::now() < deadline, "SExtractor {pid} still runs");
            std::thread::sleep(Duration::from_millis(10));
        }
        no_temporaries(d);
        assert!(!d.join("Sextracted/a/a_cat.fits").exists());
    }
}

#[test]
fn a_second_run_into_the_same_folder_is_refused_naming_the_first() {
    let dir = pipeline_workdir(TILES);
    let d = dir.path();
    let mut first = start(DRE, d, &dre_args(&[]));
    wait_until(&mut first, "a tile was done", || {
        !recorded(&d.join("Summary"), "dre").is_empty()
    });
    // Another Summary folder, the same Chi folder.
    let o = run(DRE, d, &dre_args(&["-o", "Summary2"]));
    let pid = first.id();
    signal(&first, libc::SIGKILL);
    first.wait().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(
        stderr(&o),
        format!(
            "dre: Chi: another run is writing into this folder: dre (PID {pid}); wait for it \
             to finish or choose another output folder\n"
        )
    );
    assert!(!d.join("Summary2/t00_dre.fits").exists());

    // A lock held by this test process: make_cuts is refused at once, then runs.
    let lock = dre::lock_output_dir(&d.join("NewCuts"), "faults_runs").unwrap();
    let o = run(MAKE_CUTS, d, &make_cuts_args(&[]));
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!(
            "make_cuts: NewCuts: another run is writing into this folder: faults_runs (PID {}); \
             wait for it to finish or choose another output folder\n",
            std::process::id()
        )
    );
    assert!(recorded(&d.join("NewCuts"), "make_cuts").is_empty());
    drop(lock);
    let o = run(MAKE_CUTS, d, &make_cuts_args(&["-q"]));
    assert!(o.status.success(), "{}", stderr(&o));
    // A killed run leaves no stale lock: the kernel released it.
    let o = run(DRE, d, &dre_args(&["-q", "--resume"]));
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn stale_temporaries_of_dead_runs_are_removed_by_the_next_run() {
    let dir = pipeline_workdir(1);
    let d = dir.path();
    let out = d.join("NewCuts");
    std::fs::create_dir_all(&out).unwrap();
    let dead_file = out.join(format!(".t00_cuts.h5.{DEAD_PID}.tmp"));
    let dead_dir = out.join(format!(".t00.sex_dre.{DEAD_PID}.tmp"));
    let live = out.join(format!(".t01_cuts.h5.{}.tmp", std::process::id()));
    std::fs::write(&dead_file, "half a cut file").unwrap();
    std::fs::create_dir(&dead_dir).unwrap();
    std::fs::write(dead_dir.join("t00_cat.fits"), "half").unwrap();
    std::fs::write(&live, "a live run's").unwrap();
    let o = run(MAKE_CUTS, d, &make_cuts_args(&["-q"]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!dead_file.exists() && !dead_dir.exists());
    assert!(live.exists(), "the temporary of a running process is kept");
    std::fs::remove_file(&live).unwrap();
    no_temporaries(d);

    // dre's chi folder likewise, on a --resume run that has work to do.
    let chi = d.join("Chi");
    std::fs::create_dir_all(&chi).unwrap();
    let dead_chi = chi.join(format!(".t00_chi.h5.{DEAD_PID}.tmp"));
    std::fs::write(&dead_chi, "half").unwrap();
    let o = run(DRE, d, &dre_args(&["-q", "--resume"]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!dead_chi.exists());
    no_temporaries(d);
}

/// A run that must end within a minute.
fn finishes(bin: &str, dir: &Path, args: &[&str]) -> Output {
    let mut child = spawn(Command::new(bin).current_dir(dir).args(args));
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{bin} {args:?} hangs");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn cpu_above_the_cores_is_capped_with_a_warning() {
    let dir = pipeline_workdir(1);
    let d = dir.path();
    let cores = std::thread::available_parallelism().unwrap().get();
    let warning = |prog: &str| {
        format!(
            "{prog}: warning: --cpu 100000: this machine has {cores} cores; using {cores} threads"
        )
    };
    let cube = dre_testdata::golden().join("cube_small.fits");
    let cube = cube.to_str().unwrap();
    let o = finishes(DRE, d, &["-m", cube, "--cpu", "100000", "-q"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stderr(&o).lines().next(), Some(warning("dre").as_str()));
    assert!(d.join("Summary/t00_dre.fits").is_file());

    let o = finishes(
        env!("CARGO_BIN_EXE_make_cube"),
        d,
        &[
            "--naxrat",
            "1",
            "--axrat0",
            "1",
            "--nposang",
            "1",
            "--nlogh",
            "2",
            "--boxsize",
            "16",
            "--cpu",
            "100000",
            "-q",
            "-o",
            "small.fits",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stderr(&o), format!("{}\n", warning("make_cube")));
    assert!(d.join("small.fits").is_file());

    let o = finishes(
        env!("CARGO_BIN_EXE_dre_simulate"),
        d,
        &[
            "--size",
            "256",
            "--galaxies",
            "2",
            "--stars",
            "1",
            "--margin",
            "40",
            "--name",
            "s",
            "--cpu",
            "100000",
            "-q",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stderr(&o), format!("{}\n", warning("dre_simulate")));
    assert!(d.join("Tiles/s.fits").is_file());
}

#[test]
fn sex_dre_and_psfex_dre_resume_skip_what_is_done() {
    require_tools();
    let dir = workdir();
    let d = dir.path();
    write_crop(&d.join("Tiles/a.fits"), &golden_tile(), 0, 0, 300, 1.0);
    write_crop(&d.join("Tiles/b.fits"), &golden_tile(), 300, 300, 300, 1.0);
    let sex = |extra: &[&str]| {
        let mut a = vec!["--subdir", "--arg", "PIXEL_SCALE", "1", "-fwhm", "3"];
        a.extend_from_slice(extra);
        run_in(SEX_DRE, d, &a)
    };
    let o = sex(&[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let before = outputs(d, &["Sextracted/a", "Sextracted/b"]);
    assert_eq!(before.len(), 8);
    // b's image changes: only b is extracted again.
    std::fs::remove_file(d.join("Tiles/b.fits")).unwrap();
    write_crop(&d.join("Tiles/b.fits"), &golden_tile(), 300, 300, 300, 2.0);
    let o = sex(&["--resume"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let said = stdout(&o);
    assert!(
        said.contains("(1/2) a: done before, skipped (--resume)"),
        "{said}"
    );
    assert!(
        said.contains("(2/2) b: ") && !said.contains("b: done before"),
        "{said}"
    );
    assert!(
        said.contains("sex_dre: 2 images, 1 skipped as done before"),
        "{said}"
    );
    let after = outputs(d, &["Sextracted/a", "Sextracted/b"]);
    for (p, v) in &before {
        let same = after.get(p) == Some(v);
        assert_eq!(same, p.starts_with("Sextracted/a"), "{p:?}");
    }
    // Other parameters: both again.
    let o = sex(&["--resume", "-zp", "25"]);
    assert!(
        stdout(&o).contains("sex_dre: 2 images, 0 skipped as done before"),
        "{}",
        stdout(&o)
    );

    let o = run_in(PSFEX_DRE, d, &["-q"]);
    // Too few stars in a crop is fine here: what matters is what is skipped.
    let ok: BTreeSet<String> = ["a", "b"]
        .into_iter()
        .filter(|t| d.join(format!("PSF/{t}.psf")).is_file())
        .map(String::from)
        .collect();
    let o2 = run_in(PSFEX_DRE, d, &["--resume"]);
    assert_eq!(o2.status.code(), o.status.code(), "{}", stderr(&o2));
    let skipped: BTreeSet<String> = stdout(&o2)
        .lines()
        .filter(|l| l.contains("done before, skipped"))
        .map(|l| {
            l.split(' ')
                .nth(1)
                .unwrap()
                .trim_end_matches(':')
                .to_string()
        })
        .collect();
    assert_eq!(skipped, ok, "{}", stdout(&o2));
    no_temporaries(d);
}
