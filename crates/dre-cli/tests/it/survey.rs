//! `dre_survey` on this machine (the local executor) and the tools' `--tiles` and
//! `--tile-list`: survey.toml has every option of the four tools with their defaults; a
//! survey's outputs equal, bit for bit in their data, those of the four tools run by hand;
//! `--resume` re-runs nothing when everything is done; the default cube is rendered once,
//! before the tasks; bad input (no Tiles folder, no sbatch, a refused submission, an
//! unknown key in survey.toml) is one line each and starts nothing. The Slurm executor is
//! in survey_slurm.rs; the helpers here serve both.

#![allow(dead_code)]

pub use crate::common::no_temporaries;
use crate::common::{hdf5_writing, output, stderr};
use crate::preprocess::require_tools;
use dre::ColumnData;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const SURVEY: &str = env!("CARGO_BIN_EXE_dre_survey");
pub const SIMULATE: &str = env!("CARGO_BIN_EXE_dre_simulate");
pub const SEX_DRE: &str = env!("CARGO_BIN_EXE_sex_dre");
pub const PSFEX_DRE: &str = env!("CARGO_BIN_EXE_psfex_dre");
pub const MAKE_CUTS: &str = env!("CARGO_BIN_EXE_make_cuts");
pub const DRE: &str = env!("CARGO_BIN_EXE_dre");

/// A scratch folder under target/.
pub fn scratch() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

/// Tile names t01, t02, ...
pub fn names(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("t{i:02}")).collect()
}

/// A tiny simulated tile `Tiles/NAME.fits` in `dir` (400 x 400 pixels, 8 galaxies, 12
/// stars: enough for PSFEx), seeded by `seed`.
pub fn simulate_tile(dir: &Path, name: &str, seed: u64) {
    simulate(
        dir,
        name,
        seed,
        &["--size", "400", "--galaxies", "8", "--stars", "12"],
    );
}

/// A simulated tile with the options `size`.
pub fn simulate(dir: &Path, name: &str, seed: u64, size: &[&str]) {
    let o = output(
        Command::new(SIMULATE)
            .current_dir(dir)
            .args([
                "-q",
                "--name",
                name,
                "--seed",
                &seed.to_string(),
                "--cpu",
                "1",
            ])
            .args(size),
    );
    assert!(o.status.success(), "dre_simulate: {}", stderr(&o));
}

/// The options of these tests, in survey.toml and by hand: tiles without WCS (pixel scale
/// 1, seeing 3 px) and the small golden cube.
pub fn configure(dir: &Path, jobs: u32) {
    let o = survey(dir, &["init", "-d", "."]);
    assert!(o.status.success(), "init: {}", stderr(&o));
    let file = dir.join("survey.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    let cube = crate::common::golden_cube();
    let text = text
        .replacen(
            "file = \"\"",
            &format!("file = {:?}", cube.display().to_string()),
            1,
        )
        .replace("arg = []", "arg = [[\"PIXEL_SCALE\", \"1\"]]")
        .replace("# fwhm = 3.0", "fwhm = 3.0")
        .replace("jobs = 0", &format!("jobs = {jobs}"));
    std::fs::write(&file, text).unwrap();
}

/// A survey folder with `n` tiny tiles and its survey.toml.
pub fn survey_folder(n: usize, jobs: u32) -> tempfile::TempDir {
    require_tools();
    let dir = scratch();
    for (i, name) in names(n).iter().enumerate() {
        simulate_tile(dir.path(), name, 100 + i as u64);
    }
    configure(dir.path(), jobs);
    dir
}

/// `dre_survey ARGS` in `dir`.
pub fn survey(dir: &Path, args: &[&str]) -> Output {
    output(Command::new(SURVEY).current_dir(dir).args(args))
}

/// The four tools by hand, in `dir`, with the options [`configure`] sets.
pub fn by_hand(dir: &Path) {
    let cube = crate::common::golden_cube();
    let cube = cube.to_str().unwrap();
    for (bin, args) in [
        (SEX_DRE, vec!["--arg", "PIXEL_SCALE", "1", "-fwhm", "3"]),
        (PSFEX_DRE, vec![]),
        (MAKE_CUTS, vec![]),
        (DRE, vec!["-m", cube]),
    ] {
        let o = output(Command::new(bin).current_dir(dir).args(&args));
        assert!(o.status.success(), "{bin}: {}", stderr(&o));
    }
}

/// A copy of `dir`'s Tiles in a new folder.
pub fn copy_tiles(dir: &Path) -> tempfile::TempDir {
    let other = scratch();
    crate::common::copy_tree(&dir.join("Tiles"), &other.path().join("Tiles"));
    other
}

/// A column's values as bits (floats by their bit patterns: NaN equals NaN).
fn column_bits(c: &ColumnData) -> Vec<String> {
    match c {
        ColumnData::F32(v) => v.iter().map(|x| x.to_bits().to_string()).collect(),
        ColumnData::F64(v) => v.iter().map(|x| x.to_bits().to_string()).collect(),
        other => vec![format!("{other:?}")],
    }
}

/// Every tile's PSF, cuts, chi cubes and Summary in `a` equal those in `b`, bit for bit in
/// their data; returns the number of objects compared.
pub fn same_outputs(a: &Path, b: &Path, tiles: &[String]) -> usize {
    let _hdf5 = hdf5_writing();
    let mut objects = 0;
    for t in tiles {
        let psf = |d: &Path| dre::read_psf(d.join(format!("PSF/{t}.psf"))).unwrap();
        let (pa, pb) = (psf(a), psf(b));
        assert_eq!(
            pa.data.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            pb.data.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            "{t}: PSF"
        );
        let cuts = |d: &Path| dre::CutReader::open(d.join(format!("Cuts/{t}_cuts.h5"))).unwrap();
        let (ca, cb) = (cuts(a), cuts(b));
        assert_eq!(ca.names(), cb.names(), "{t}: objects cut");
        assert!(!ca.names().is_empty(), "{t}: no object cut");
        for name in ca.names() {
            let (x, y) = (ca.read(name).unwrap(), cb.read(name).unwrap());
            let bits = |v: &[f32]| v.iter().map(|p| p.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&x.obj), bits(&y.obj), "{t} {name}: obj");
            assert_eq!(bits(&x.rms), bits(&y.rms), "{t} {name}: rms");
            assert_eq!(x.seg, y.seg, "{t} {name}: seg");
            let chi = |d: &Path| dre::read_chi(d.join(format!("Chi/{t}_chi.h5")), name).unwrap();
            let ((xa, sa), (xb, sb)) = (chi(a), chi(b));
            assert_eq!(sa, sb, "{t} {name}: chi shape");
            assert_eq!(bits(&xa), bits(&xb), "{t} {name}: chi");
            objects += 1;
        }
        let summary =
            |d: &Path| dre::read_catalog(d.join(format!("Summary/{t}_dre.fits"))).unwrap();
        let (sa, sb) = (summary(a), summary(b));
        assert_eq!(
            sa.nrows(),
            ca.names().len(),
            "{t}: a Summary row per object"
        );
        assert_eq!(sa.columns.len(), sb.columns.len(), "{t}: Summary columns");
        for (x, y) in sa.columns.iter().zip(&sb.columns) {
            assert_eq!(x.name, y.name, "{t}: Summary column");
            assert_eq!(
                column_bits(&x.data),
                column_bits(&y.data),
                "{t}: {}",
                x.name
            );
        }
    }
    objects
}

/// `dre_survey status --json` as JSON.
pub fn status_json(dir: &Path) -> serde_json::Value {
    let o = survey(dir, &["status", "-d", ".", "--json"]);
    assert!(o.status.success(), "status: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// The tiles of `status` in `state`.
pub fn tiles_in(status: &serde_json::Value, state: &str) -> BTreeSet<String> {
    status["tile_status"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["state"] == state)
        .map(|t| t["tile"].as_str().unwrap().to_string())
        .collect()
}

/// A tile's state record.
pub fn record(dir: &Path, tile: &str) -> serde_json::Value {
    let text = std::fs::read(dir.join(format!(".survey/state/{tile}.json"))).unwrap();
    serde_json::from_slice(&text).unwrap()
}

/// The runs made under `.survey/runs/`.
pub fn runs(dir: &Path) -> Vec<PathBuf> {
    let mut r: Vec<PathBuf> = std::fs::read_dir(dir.join(".survey/runs"))
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    r.sort();
    r
}

/// Run `n`'s plan.
pub fn plan(dir: &Path, run: u32) -> serde_json::Value {
    let text = std::fs::read(dir.join(format!(".survey/runs/{run:04}/plan.json"))).unwrap();
    serde_json::from_slice(&text).unwrap()
}

/// The tiles of a plan.
pub fn plan_tiles(plan: &serde_json::Value) -> BTreeSet<String> {
    plan["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t.as_array().unwrap().iter())
        .map(|t| t.as_str().unwrap().to_string())
        .collect()
}

/// The lines a tool printed on stderr, but its warnings.
pub fn error_lines(o: &Output) -> Vec<String> {
    stderr(o)
        .lines()
        .filter(|l| !l.contains(": warning: "))
        .map(String::from)
        .collect()
}

/// The long flags of a tool's --help, with their default when it shows one.
fn flags(bin: &str) -> Vec<(String, Option<String>)> {
    let o = output(Command::new(bin).arg("--help"));
    assert!(o.status.success());
    let help = String::from_utf8(o.stdout).unwrap();
    let mut out: Vec<(String, Option<String>)> = Vec::new();
    for line in help.lines() {
        let l = line.trim_start();
        let Some(start) = l.find("--") else { continue };
        if !(l.starts_with('-')) {
            continue;
        }
        let name: String = l[start + 2..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        out.push((name, None));
    }
    // Defaults follow their flag's description: "[default: X]".
    let mut current = None;
    for line in help.lines() {
        let l = line.trim_start();
        if l.starts_with('-') {
            if let Some(start) = l.find("--") {
                current = Some(
                    l[start + 2..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                        .collect::<String>(),
                );
            }
        }
        if let (Some(f), Some(i)) = (&current, l.find("[default: ")) {
            let d = l[i + 10..].split(']').next().unwrap().to_string();
            for e in out.iter_mut().filter(|e| &e.0 == f) {
                e.1 = Some(d.clone());
            }
        }
    }
    out
}

/// The keys of section `[name]` of a survey.toml text, set or commented out (optional),
/// with their values as written.
fn section_keys(text: &str, name: &str) -> Vec<(String, String, bool)> {
    let mut inside = false;
    let mut keys = Vec::new();
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with('[') && !l.starts_with("[[") && l.ends_with(']') {
            inside = l == format!("[{name}]");
            continue;
        }
        if !inside {
            continue;
        }
        let optional = l.starts_with('#');
        let l = l.trim_start_matches('#').trim();
        if let Some((k, v)) = l.split_once(" = ") {
            if k.chars().all(|c| c.is_ascii_lowercase() || c == '-') {
                keys.push((k.to_string(), v.trim().to_string(), optional));
            }
        }
    }
    keys
}

/// survey.toml names every option of the four tools (the cube apart: [cube] file), with the
/// tool's default where it has one; and it reads back as those defaults.
#[test]
fn init_writes_every_option_of_the_four_tools_with_their_defaults() {
    let dir = scratch();
    let o = survey(dir.path(), &["init", "-d", "new"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(dir.path().join("new/survey.toml")).unwrap();
    // Not the tools' flags: the shell's, the selection the survey makes, and those
    // survey.toml says another way (the cube in [cube], --gpu as device = "cuda").
    let not_options = [
        "help",
        "version",
        "quiet",
        "resume",
        "tiles",
        "tile-list",
        "model",
        "gpu",
        "zero-point",
    ];
    for (bin, section) in [
        (SEX_DRE, "sex_dre"),
        (PSFEX_DRE, "psfex_dre"),
        (MAKE_CUTS, "make_cuts"),
        (DRE, "dre"),
    ] {
        let keys = section_keys(&text, section);
        for (flag, default) in flags(bin) {
            // --cpu of sex_dre, psfex_dre and make_cuts sets how many tiles run at once (and
            // make_cuts' compression threads): a survey task gives them one tile each.
            let per_tile = section != "dre" && flag == "cpu";
            if not_options.contains(&flag.as_str()) || per_tile {
                continue;
            }
            let Some((_, value, optional)) = keys.iter().find(|(k, _, _)| *k == flag) else {
                panic!("[{section}] has no key {flag}");
            };
            // A commented-out key shows an example; a set key, the tool's default.
            match default {
                Some(d) if !optional => {
                    let v = value.trim_matches(|c| c == '"' || c == '[' || c == ']');
                    assert_eq!(v.trim_matches('"'), d, "[{section}] {flag}");
                }
                _ => {}
            }
        }
        // And nothing the tool does not take.
        let all: Vec<String> = flags(bin).into_iter().map(|f| f.0).collect();
        for (k, _, _) in &keys {
            assert!(all.contains(k), "[{section}] {k} is no flag of {section}");
        }
    }
    // A second init refuses to replace the file.
    let o = survey(dir.path(), &["init", "-d", "new"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("survey.toml: exists"), "{}", stderr(&o));
}

/// The local executor, 2 tasks at a time of 2 tiles each: every tile's PSF, cuts, chi
/// cubes and Summary equal those of the four tools run by hand; status says all done;
/// --resume then runs nothing.
#[test]
fn local_survey_equals_the_four_tools_run_by_hand() {
    let dir = survey_folder(4, 2);
    let d = dir.path();
    let o = survey(d, &["run", "-d", ".", "--tiles-per-task", "2"]);
    assert!(o.status.success(), "run: {}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("4 tiles in 2 tasks, 2 at a time"), "{out}");
    assert!(out.contains("4 done, 0 failed"), "{out}");

    let hand = copy_tiles(d);
    by_hand(hand.path());
    let objects = same_outputs(d, hand.path(), &names(4));
    assert!(objects >= 8, "only {objects} objects");

    let st = status_json(d);
    assert_eq!(st["done"], 4, "{st}");
    assert_eq!(st["last_run"]["tasks"], 2);
    let rec = record(d, "t03");
    assert_eq!(rec["task"], 1, "t03 is in the second task");
    assert_eq!(rec["executor"], "local");
    for s in rec["stages"].as_array().unwrap() {
        assert_eq!(s["state"], "done");
        assert!(s["ended"].as_f64().unwrap() >= s["started"].as_f64().unwrap());
    }
    assert!(rec["host"].as_str().is_some_and(|h| !h.is_empty()));
    let text = survey(d, &["status", "-d", "."]);
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(
        text.contains("4 tiles: 4 done, 0 running, 0 pending, 0 failed"),
        "{text}"
    );
    assert!(text.contains("tiles/min"), "{text}");

    // Everything done: --resume runs nothing and makes no run.
    let o = survey(d, &["run", "-d", ".", "--resume"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("4 tiles done before") && out.contains("nothing to run"),
        "{out}"
    );
    assert_eq!(runs(d).len(), 1);
    // An input changed: that tile only.
    let t2 = d.join("Tiles/t02.fits");
    let bytes = std::fs::read(&t2).unwrap();
    std::fs::write(&t2, bytes).unwrap();
    let o = survey(d, &["run", "-d", ".", "--resume"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(plan_tiles(&plan(d, 2)), BTreeSet::from(["t02".to_string()]));
    assert_eq!(record(d, "t01")["run"], 1, "t01 untouched");
    assert_eq!(record(d, "t02")["run"], 2);
    same_outputs(d, hand.path(), &names(4));
    no_temporaries(d);
}

/// Without [cube] file, the default cube is rendered once into .survey/cube/ before any
/// task starts, and every task fits with it.
#[test]
fn the_default_cube_is_rendered_once_before_the_tasks_start() {
    let dir = survey_folder(2, 2);
    let d = dir.path();
    let file = d.join("survey.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    let cube = crate::common::golden_cube().display().to_string();
    std::fs::write(
        &file,
        text.replace(&format!("file = {cube:?}"), "file = \"\""),
    )
    .unwrap();
    let o = survey(d, &["run", "-d", "."]);
    assert!(o.status.success(), "run: {}", stderr(&o));
    let cube = d.join(".survey/cube/dre_default_cube_v1.fits");
    assert_eq!(dre::read_grid(&cube).unwrap(), dre::default_grid());
    assert_eq!(plan(d, 1)["cube"], cube.display().to_string());
    let rendered = std::fs::metadata(&cube).unwrap().modified().unwrap();
    let rendered = rendered
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    for t in names(2) {
        let first = record(d, &t)["stages"][0]["started"].as_f64().unwrap();
        assert!(
            rendered <= first,
            "{t} started before the cube was rendered"
        );
    }
    assert_eq!(status_json(d)["done"], 2);
}

/// Bad input, one line each, exit status 1, and no run made: no Tiles folder, no sbatch on
/// PATH, sbatch refusing the array, an unknown key in survey.toml (named with its line),
/// a tile named that does not exist.
#[test]
fn bad_input_is_one_line_and_starts_nothing() {
    let dir = scratch();
    let d = dir.path();
    configure(d, 1);
    let one_line = |o: &Output, want: &str| {
        assert_eq!(o.status.code(), Some(1), "{}", stderr(o));
        let lines = error_lines(o);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].starts_with("dre_survey: "), "{lines:?}");
        assert!(lines[0].contains(want), "{:?} lacks {want:?}", lines[0]);
        assert!(runs(d).is_empty(), "a run was made");
    };
    let o = survey(d, &["run", "-d", "."]);
    one_line(
        &o,
        &format!("{}: no such input folder", d.join("Tiles").display()),
    );

    simulate_tile(d, "t01", 1);
    let empty = scratch();
    let o = output(
        Command::new(SURVEY)
            .current_dir(d)
            .env("PATH", empty.path())
            .args(["run", "-d", ".", "--executor", "slurm"]),
    );
    one_line(&o, "Slurm not found: use --executor local");

    // An sbatch that refuses, as a cluster does (no such account).
    let bin = scratch();
    let fake = bin.path().join("sbatch");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'sbatch: error: invalid account or account/partition combination' >&2\n\
         echo 'sbatch: error: Batch job submission failed: Invalid account' >&2\nexit 1\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap()
    );
    let o = output(Command::new(SURVEY).current_dir(d).env("PATH", path).args([
        "run",
        "-d",
        ".",
        "--executor",
        "slurm",
        "--sbatch=--account=none",
    ]));
    one_line(
        &o,
        "sbatch refused the job array: invalid account or account/partition combination; \
         Batch job submission failed: Invalid account",
    );

    let o = survey(d, &["run", "-d", ".", "--tiles", "t01", "t09"]);
    one_line(&o, "Tiles: no tile t09");

    let file = d.join("survey.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    let line = text.lines().position(|l| l == "mosaics = false").unwrap() + 1;
    std::fs::write(&file, text.replace("mosaics = false", "mosiacs = true")).unwrap();
    let o = survey(d, &["run", "-d", "."]);
    one_line(
        &o,
        &format!("survey.toml: line {line} in [dre] (mosiacs): unknown key `mosiacs`"),
    );
    let o = survey(d, &["status", "-d", "."]);
    one_line(&o, &format!("line {line} in [dre] (mosiacs): unknown key"));

    // Bad arguments: exit status 2.
    std::fs::write(&file, text).unwrap();
    let o = survey(d, &["run", "-d", ".", "--executor", "pbs"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = survey(d, &["run", "-d", ".", "--tiles-per-task", "0"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(runs(d).is_empty());
}

/// `--tiles` and `--tile-list` on each tool: only the tiles named are done; a name with no
/// input is one line and exit status 1, the others done.
#[test]
fn each_tool_works_on_the_tiles_named_only() {
    require_tools();
    let dir = scratch();
    let d = dir.path();
    for (i, t) in names(3).iter().enumerate() {
        simulate_tile(d, t, 200 + i as u64);
    }
    let cube = crate::common::golden_cube();
    let cube = cube.to_str().unwrap();
    std::fs::write(d.join("list.txt"), "# the first two\nt01\n\nt02\n").unwrap();
    let run = |bin: &str, args: &[&str]| output(Command::new(bin).current_dir(d).args(args));
    let o = run(
        SEX_DRE,
        &[
            "--arg",
            "PIXEL_SCALE",
            "1",
            "-fwhm",
            "3",
            "--tile-list",
            "list.txt",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(PSFEX_DRE, &["--tiles", "t02"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(d.join("PSF/t02.psf").is_file() && !d.join("PSF/t01.psf").exists());
    let o = run(PSFEX_DRE, &["--tiles", "t01", "t03"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        error_lines(&o)[0],
        "psfex_dre: Sextracted: no catalogue t03_cat.fits"
    );
    assert!(d.join("PSF/t01.psf").is_file(), "t01 done all the same");
    let o = run(MAKE_CUTS, &["--tiles", "t01"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(MAKE_CUTS, &["--tiles", "t04"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(error_lines(&o)[0], "make_cuts: Tiles: no tile t04.fits");
    let o = run(DRE, &["-m", cube, "--tiles", "t01"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(DRE, &["-m", cube, "--tiles", "t02"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        error_lines(&o)[0],
        "dre: Cuts/t02_cuts.h5: no such cut file"
    );
    let o = run(SEX_DRE, &["--tiles", "t00"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        error_lines(&o)[0].starts_with("sex_dre: Tiles: no image t00"),
        "{:?}",
        error_lines(&o)
    );
    let files = |dir: &str| -> BTreeSet<String> {
        std::fs::read_dir(d.join(dir))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect()
    };
    assert_eq!(
        files("Sextracted"),
        [
            "t01_cat.fits",
            "t01_nb.fits",
            "t01_rms.fits",
            "t01_seg.fits"
        ]
        .into_iter()
        .chain([
            "t02_cat.fits",
            "t02_nb.fits",
            "t02_rms.fits",
            "t02_seg.fits"
        ])
        .map(String::from)
        .collect()
    );
    assert_eq!(files("Cuts"), BTreeSet::from(["t01_cuts.h5".to_string()]));
    assert_eq!(
        files("Summary"),
        BTreeSet::from(["t01_dre.fits".to_string()])
    );
}

/// A task killed (kill -9: it records nothing) while it runs a tile: the run ends with that
/// tile failed, `status` says the task ended while the stage ran, and `run --resume` runs
/// that tile again, to the end.
#[test]
fn a_local_task_killed_is_named_by_status_and_resumed() {
    let dir = survey_folder(2, 2);
    let d = dir.path();
    simulate(
        d,
        "t03",
        3,
        &["--size", "2000", "--galaxies", "200", "--stars", "30"],
    );
    let mut run =
        crate::common::spawn(Command::new(SURVEY).current_dir(d).args(["run", "-d", "."]));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let pid = loop {
        let rec = std::fs::read(d.join(".survey/state/t03.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
        if let Some(r) = rec.filter(|r| r["stages"][0]["state"] == "running") {
            break r["pid"].as_u64().unwrap() as i32;
        }
        assert!(std::time::Instant::now() < deadline, "t03 never started");
        assert!(run.try_wait().unwrap().is_none(), "the run ended first");
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    // The task's tool goes on alone; wait for it, not to leave it writing.
    let children = output(Command::new("pgrep").args(["-P", &pid.to_string()]));
    // SAFETY: a signal to a process of this test's run.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    let o = run.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    for child in String::from_utf8_lossy(&children.stdout).split_whitespace() {
        while Path::new(&format!("/proc/{child}")).exists() {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    let lines = error_lines(&o);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("dre_survey: t03: sex_dre: the task (process ")
            && lines[0].ends_with("ended while this stage ran"),
        "{lines:?}"
    );
    let st = status_json(d);
    assert_eq!(tiles_in(&st, "failed"), BTreeSet::from(["t03".to_string()]));
    assert_eq!(tiles_in(&st, "done").len(), 2);
    let o = survey(d, &["run", "-d", ".", "--resume"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(plan_tiles(&plan(d, 2)), BTreeSet::from(["t03".to_string()]));
    assert_eq!(status_json(d)["done"], 3);
    no_temporaries(d);
}
