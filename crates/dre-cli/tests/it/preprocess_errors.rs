//! Bad input to sex_dre and psfex_dre: one line naming the file, exit status 1, the other
//! tiles go on, nothing half-written; and the original's single-dash options.

use crate::common::{all_files, golden_workdir, output, run_in, stderr};
use crate::preprocess::{golden_tile, require_tools, write_crop};
use dre::read_catalog;
use std::process::Command;

const SEX_DRE: &str = env!("CARGO_BIN_EXE_sex_dre");
const PSFEX_DRE: &str = env!("CARGO_BIN_EXE_psfex_dre");

/// stderr is exactly `expected` lines, each starting with the program's name.
fn assert_lines(err: &str, prog: &str, expected: &[&str]) {
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), expected.len(), "{err}");
    for (l, want) in lines.iter().zip(expected) {
        assert!(l.starts_with(&format!("{prog}: ")), "{l}");
        assert!(l.contains(want), "{l:?} should contain {want:?}");
    }
}

#[test]
fn sex_dre_reports_a_non_fits_image_and_goes_on() {
    require_tools();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("Tiles")).unwrap();
    std::fs::write(d.join("Tiles/a_bad.fits"), "not a FITS file").unwrap();
    std::fs::write(d.join("Tiles/notes.txt"), "skipped").unwrap();
    write_crop(&d.join("Tiles/b_good.fits"), &golden_tile(), 0, 0, 300, 1.0);
    let o = run_in(SEX_DRE, d, &["--subdir"]);
    assert_eq!(o.status.code(), Some(1));
    assert_lines(
        &stderr(&o),
        "sex_dre",
        &[
            "Tiles/a_bad.fits: SExtractor failed: *Error*: cannot open",
            "1 of 2 images failed",
        ],
    );
    let mut files: Vec<String> = all_files(&d.join("Sextracted"))
        .iter()
        .map(|p| p.strip_prefix(d).unwrap().display().to_string())
        .collect();
    files.sort();
    let want: Vec<String> = ["cat", "nb", "rms", "seg"]
        .iter()
        .map(|s| format!("Sextracted/b_good/b_good_{s}.fits"))
        .collect();
    assert_eq!(
        files, want,
        "nothing of the failed image, no scratch folder"
    );
}

#[test]
fn sex_dre_bad_arguments_are_one_line_naming_the_file() {
    let dir = golden_workdir(&["Tiles"]);
    let d = dir.path();
    let cases: [(&[&str], &str); 5] = [
        (&["-i", "Nope"], "Nope: no such input folder"),
        (
            &["-c", "none.sex"],
            "none.sex: no such SExtractor configuration file",
        ),
        (
            &["-o", "Tiles/gold.fits/out"],
            "Tiles/gold.fits/out: Not a directory",
        ),
        (&["--flags", "Flags"], "Flags: no such folder"),
        (
            &["--gain", "cps"],
            "Tiles/gold.fits: missing header key EXPTIME (needed by --gain cps)",
        ),
    ];
    for (args, want) in cases {
        let o = run_in(SEX_DRE, d, args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let err = stderr(&o);
        // One line, plus the count of failed images when the fault is in an image.
        assert!(
            err.starts_with(&format!("sex_dre: {want}")),
            "{args:?}: {err}"
        );
        assert!(
            err.lines()
                .skip(1)
                .all(|l| l == "sex_dre: 1 of 1 images failed"),
            "{err}"
        );
        assert!(
            !err.contains("panicked") && !err.contains("backtrace"),
            "{err}"
        );
    }
    let o = run_in(SEX_DRE, d, &["--gain", "fast"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("\"fast\" is not a gain"),
        "{}",
        stderr(&o)
    );
    assert!(!d.join("Sextracted").exists() || all_files(&d.join("Sextracted")).is_empty());
}

#[test]
fn missing_tools_are_named_with_how_to_install_them() {
    let dir = golden_workdir(&["Tiles"]);
    let empty = tempfile::tempdir().unwrap();
    for (bin, want) in [
        (
            SEX_DRE,
            "sex_dre: SExtractor not found: no source-extractor or sex on PATH; install it",
        ),
        (
            PSFEX_DRE,
            "psfex_dre: PSFEx not found: no psfex on PATH; install it",
        ),
    ] {
        std::fs::create_dir_all(dir.path().join("Sextracted")).unwrap();
        let o = output(
            Command::new(bin)
                .current_dir(dir.path())
                .env("PATH", empty.path()),
        );
        assert_eq!(o.status.code(), Some(1));
        assert!(stderr(&o).starts_with(want), "{}", stderr(&o));
        assert_eq!(stderr(&o).lines().count(), 1);
    }
}

#[test]
fn single_dash_zp_and_fwhm_reach_sextractor() {
    require_tools();
    let dir = golden_workdir(&["Tiles"]);
    let d = dir.path();
    let run = |args: &[&str], out: &str| {
        let mut a = vec!["-o", out, "--arg", "PIXEL_SCALE", "1", "-q"];
        a.extend_from_slice(args);
        let o = run_in(SEX_DRE, d, &a);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        read_catalog(d.join(out).join("gold_cat.fits")).unwrap()
    };
    let base = run(&["-zp", "25", "-fwhm", "3"], "a");
    let zp = run(&["--zero-point", "30", "-fwhm=3"], "b");
    let (m1, m2) = (
        base.column("MAG_AUTO").unwrap().as_f64().unwrap(),
        zp.column("MAG_AUTO").unwrap().as_f64().unwrap(),
    );
    for (a, b) in m1.iter().zip(&m2) {
        assert!((b - a - 5.0).abs() < 1e-3, "MAG_AUTO {a} -> {b}");
    }
    // Told a seeing far below the true 3 px, SExtractor's network sees few stars.
    let stars = |t: &dre::Table| {
        t.column("CLASS_STAR")
            .unwrap()
            .as_f64()
            .unwrap()
            .iter()
            .filter(|&&c| c > 0.5)
            .count()
    };
    assert_eq!(stars(&base), 12);
    assert!(stars(&run(&["-fwhm", "1.2"], "c")) < 6);
}

#[test]
fn psfex_dre_reports_a_tile_without_stars_and_goes_on() {
    require_tools();
    let dir = golden_workdir(&["Sextracted/gold/gold_cat.fits"]);
    let d = dir.path();
    // A catalogue of pure noise: SExtractor finds nothing, PSFEx accepts no star.
    let noise: Vec<f32> = (0..200 * 200)
        .map(|i| 100.0 + ((i * 7919 % 101) as f32 - 50.0) / 10.0)
        .collect();
    crate::preprocess::write_image(&d.join("Tiles/empty.fits"), 200, 200, &noise);
    let o = run_in(
        SEX_DRE,
        d,
        &["-i", "Tiles", "-o", "Sextracted", "--subdir", "-q"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::write(d.join("Sextracted/junk_cat.fits"), "not FITS").unwrap();
    let o = run_in(PSFEX_DRE, d, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert_lines(
        &stderr(&o),
        "psfex_dre",
        &[
            "Sextracted/empty/empty_cat.fits: PSFEx accepted no star",
            "Sextracted/junk_cat.fits: PSFEx failed: *Error*: cannot open",
            "2 of 3 tiles failed",
        ],
    );
    let files: Vec<_> = all_files(&d.join("PSF"));
    assert_eq!(files, [d.join("PSF/gold.psf")], "only the good tile's PSF");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("gold: 12/12 stars accepted"), "{out}");
}

#[test]
fn psfex_dre_bad_arguments_are_one_line_naming_the_file() {
    let dir = golden_workdir(&["Sextracted/gold/gold_cat.fits"]);
    let d = dir.path();
    let cases: [(&[&str], &str); 3] = [
        (&["-i", "Nope"], "Nope: no such input folder"),
        (
            &["-c", "none.psfex"],
            "none.psfex: no such PSFEx configuration file",
        ),
        (
            &["-o", "Sextracted/gold/gold_cat.fits/x"],
            "Not a directory",
        ),
    ];
    for (args, want) in cases {
        let o = run_in(PSFEX_DRE, d, args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with("psfex_dre: ") && err.contains(want),
            "{args:?}: {err}"
        );
    }
}
