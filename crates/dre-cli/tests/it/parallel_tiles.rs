//! `sex_dre`, `psfex_dre` and `make_cuts` work on several tiles at once (`--cpu N`): each
//! tile's outputs are byte for byte those of a run on one thread,
//! a bad tile is reported and the others finish, and a stopped run kills every child it had
//! running.

use crate::common::{is_bookkeeping, no_temporaries, run_in, spawn, stderr};
use crate::faults_runs::{gone, pipeline_workdir, signal, tile_names, wait_until, workdir};
use crate::preprocess::{golden_tile, require_tools, write_crop};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const SEX_DRE: &str = env!("CARGO_BIN_EXE_sex_dre");
const PSFEX_DRE: &str = env!("CARGO_BIN_EXE_psfex_dre");
const MAKE_CUTS: &str = env!("CARGO_BIN_EXE_make_cuts");

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |c| c.get())
}

/// SExtractor stamps each catalogue with the date, time and duration of the extraction
/// (SEXDATE, SEXTIME and SEXELAPS of its LDAC_IMHEAD): blanked, so that two runs compare
/// equal.
fn without_run_time(mut bytes: Vec<u8>) -> Vec<u8> {
    for key in [&b"SEXDATE ="[..], &b"SEXTIME ="[..], &b"SEXELAPS="[..]] {
        let mut at = 0;
        while let Some(k) = bytes[at..].windows(key.len()).position(|w| w == key) {
            let start = at + k + key.len();
            let end = (start + 80 - key.len()).min(bytes.len());
            bytes[start..end].fill(b' ');
            at = end;
        }
    }
    bytes
}

/// Every output file below `dir` (bookkeeping aside) by path relative to `dir`, with its
/// bytes (a catalogue's without the time of its extraction).
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else if !is_bookkeeping(&p) {
                let rel = p.strip_prefix(dir).unwrap().to_path_buf();
                let bytes = std::fs::read(&p).unwrap();
                let catalogue = p.to_string_lossy().ends_with("_cat.fits");
                out.insert(
                    rel,
                    if catalogue {
                        without_run_time(bytes)
                    } else {
                        bytes
                    },
                );
            }
        }
    }
    out
}

/// The lines of stderr, sorted (tiles finish in any order), with the output folders of the
/// run on `cpu` threads (`Sex2`, `Psf2`, `Cuts2`) read as those of the run on one.
fn error_lines(o: &Output, cpu: &str) -> Vec<String> {
    let mut l: Vec<String> = stderr(o)
        .lines()
        .map(|l| {
            ["Sex", "Psf", "Cuts"].iter().fold(l.to_string(), |l, f| {
                l.replace(&format!("{f}{cpu}"), &format!("{f}1"))
            })
        })
        .collect();
    l.sort();
    l
}

#[test]
fn the_three_tools_write_the_same_files_on_one_thread_or_several() {
    require_tools();
    let dir = workdir();
    let d = dir.path();
    let tile = golden_tile();
    for (name, x0, y0) in [
        ("a", 0, 0),
        ("b", 312, 0),
        ("c", 0, 312),
        ("d", 312, 312),
        ("e", 624, 624),
    ] {
        write_crop(
            &d.join(format!("Tiles/{name}.fits")),
            &tile,
            x0,
            y0,
            400,
            1.0,
        );
    }
    // A bad tile among them: reported by each tool, the others go on.
    std::fs::write(d.join("Tiles/bad.fits"), "not a FITS file").unwrap();
    let threads = cores().min(3).to_string();
    let mut said: Vec<[Output; 3]> = Vec::new();
    for cpu in ["1", threads.as_str()] {
        let (sex, psf, cuts) = (
            format!("Sex{cpu}"),
            format!("Psf{cpu}"),
            format!("Cuts{cpu}"),
        );
        let common = ["--cpu", cpu];
        let s = run_in(
            SEX_DRE,
            d,
            &[
                &common[..],
                &[
                    "-o",
                    sex.as_str(),
                    "--subdir",
                    "--arg",
                    "PIXEL_SCALE",
                    "1",
                    "-fwhm",
                    "3",
                ],
            ]
            .concat(),
        );
        let p = run_in(
            PSFEX_DRE,
            d,
            &[&common[..], &["-i", sex.as_str(), "-o", psf.as_str(), "-q"]].concat(),
        );
        let c = run_in(
            MAKE_CUTS,
            d,
            &[
                &common[..],
                &["-s", sex.as_str(), "-o", cuts.as_str(), "-q"],
            ]
            .concat(),
        );
        // The bad tile fails sex_dre and make_cuts (psfex_dre finds no catalogue of it).
        for o in [&s, &c] {
            assert_eq!(o.status.code(), Some(1), "{}", stderr(o));
        }
        said.push([s, p, c]);
    }
    let n = threads.as_str();
    for (one, many) in [("Sex1", format!("Sex{n}")), ("Cuts1", format!("Cuts{n}"))] {
        let (a, b) = (files(&d.join(one)), files(&d.join(&many)));
        assert_eq!(
            a.keys().collect::<Vec<_>>(),
            b.keys().collect::<Vec<_>>(),
            "{one} and {many} hold other files"
        );
        for (p, bytes) in &a {
            let other = &b[p];
            if let Some(at) = bytes.iter().zip(other).position(|(x, y)| x != y) {
                let near = |v: &[u8]| {
                    String::from_utf8_lossy(&v[at.saturating_sub(40)..(at + 40).min(v.len())])
                        .into_owned()
                };
                panic!(
                    "{one}/{} differs in {many} at byte {at}: {:?} / {:?}",
                    p.display(),
                    near(bytes),
                    near(other)
                );
            }
            assert_eq!(bytes.len(), other.len(), "{one}/{}", p.display());
        }
    }
    let (a, b) = (files(&d.join("Psf1")), files(&d.join(format!("Psf{n}"))));
    assert_eq!(a, b, "Psf1 and Psf{n} differ");
    // Five tiles extracted, cut (and their PSFs where PSFEx accepts stars in a crop).
    let sextracted = files(&d.join("Sex1"));
    for t in ["a", "b", "c", "d", "e"] {
        assert!(sextracted.contains_key(&PathBuf::from(format!("{t}/{t}_cat.fits"))));
        assert!(d.join(format!("Cuts{n}/{t}_cuts.h5")).is_file(), "{t}");
    }
    // The same status and lines, the bad tile named in one error of sex_dre and make_cuts.
    for (k, (one, many)) in said[0].iter().zip(&said[1]).enumerate() {
        assert_eq!(one.status.code(), many.status.code());
        let lines = error_lines(many, n);
        assert_eq!(error_lines(one, "1"), lines, "{}", stderr(many));
        let bad = lines.iter().filter(|l| l.contains("bad")).count();
        assert_eq!(bad, usize::from(k != 1), "{lines:#?}");
        if k == 0 {
            // sex_dre also counts: 1 of 6 images failed.
            assert!(
                lines.iter().any(|l| l == "sex_dre: 1 of 6 images failed"),
                "{lines:#?}"
            );
            let mut progress: Vec<String> = String::from_utf8_lossy(&many.stdout)
                .lines()
                .filter_map(|l| l.split(')').next().map(String::from))
                .filter(|l| l.starts_with('('))
                .collect();
            progress.sort();
            // Every image but the bad one (3/6) says what it found.
            assert_eq!(
                progress,
                ["(1/6", "(2/6", "(4/6", "(5/6", "(6/6"],
                "{progress:?}"
            );
        }
    }
    no_temporaries(d);
}

#[test]
fn make_cuts_on_several_threads_reports_the_bad_tile_and_cuts_the_others() {
    let dir = pipeline_workdir(6);
    let d = dir.path();
    // t02's segmentation is truncated (a link to the golden file: replaced, not written).
    let seg = d.join("Sextracted/t02/t02_seg.fits");
    let bytes = std::fs::read(&seg).unwrap();
    std::fs::remove_file(&seg).unwrap();
    std::fs::write(&seg, &bytes[..bytes.len() / 2]).unwrap();
    let threads = cores().min(4).to_string();
    let one = run_in(MAKE_CUTS, d, &["--cpu", "1", "-o", "One", "-q"]);
    let many = run_in(MAKE_CUTS, d, &["--cpu", &threads, "-o", "Many", "-q"]);
    for o in [&one, &many] {
        assert_eq!(o.status.code(), Some(1), "{}", stderr(o));
        let err = stderr(o);
        assert_eq!(err.lines().count(), 2, "{err}");
        assert!(
            err.starts_with("make_cuts: Sextracted/t02/t02_seg.fits: "),
            "{err}"
        );
        assert!(err.ends_with("\nmake_cuts: 1 of 6 tiles failed\n"), "{err}");
    }
    let (a, b) = (files(&d.join("One")), files(&d.join("Many")));
    let want: Vec<PathBuf> = tile_names(6)
        .into_iter()
        .filter(|t| t != "t02")
        .map(|t| PathBuf::from(format!("{t}_cuts.h5")))
        .collect();
    assert_eq!(a.keys().cloned().collect::<Vec<_>>(), want);
    assert!(a == b, "the cut files differ with --cpu {threads}");
    // The cut files hold the objects.
    let r = dre::CutReader::open(d.join("Many/t05_cuts.h5")).unwrap();
    assert!(r.names().len() > 10, "{}", r.names().len());
    no_temporaries(d);
}

#[test]
fn sex_dre_stopped_kills_every_sextractor_running() {
    if cores() < 2 {
        eprintln!("one core: sex_dre runs one SExtractor at a time, nothing to check");
        return;
    }
    let dir = workdir();
    let d = dir.path();
    for t in ["a", "b", "c"] {
        write_crop(
            &d.join(format!("Tiles/{t}.fits")),
            &golden_tile(),
            0,
            0,
            64,
            1.0,
        );
    }
    // A SExtractor that runs until it is killed, and says its PID.
    let path = crate::common::fake_sextractor(
        d,
        &format!(
            "echo $$ > {0}/$$.part && mv {0}/$$.part {0}/$$.pid\nexec sleep 60",
            d.display()
        ),
    );
    let pids = || -> Vec<u32> {
        std::fs::read_dir(d)
            .unwrap()
            .flatten()
            .filter_map(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.strip_suffix(".pid")?.parse().ok()
            })
            .collect()
    };
    let mut child = spawn(
        Command::new(SEX_DRE)
            .current_dir(d)
            .env("PATH", &path)
            .args(["--subdir", "--cpu", "2"]),
    );
    wait_until(&mut child, "two SExtractors started", || pids().len() == 2);
    signal(&child, libc::SIGTERM);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(143), "{}", stderr(&o));
    assert_eq!(
        stderr(&o),
        "sex_dre: stopped by SIGTERM at image a (1/3) and image b (2/3): their unfinished \
         outputs were removed, 2 child processes killed; the outputs finished before are \
         complete (run again with --resume to skip them)\n"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    for pid in pids() {
        while !gone(pid) {
            assert!(Instant::now() < deadline, "SExtractor {pid} still runs");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    assert_eq!(pids().len(), 2, "a third SExtractor started");
    no_temporaries(d);
    assert!(!d.join("Sextracted/a/a_cat.fits").exists());
}
