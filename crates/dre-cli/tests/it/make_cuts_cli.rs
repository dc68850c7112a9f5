//! The make_cuts binary on a copy of the golden working directory, and on bad inputs.

use crate::common::output;
use dre::{read_catalog, write_table, CutReader};
use fitsio::images::{ImageDescription, ImageType};
use fitsio::FitsFile;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const KINDS: [&str; 4] = ["cat", "nb", "rms", "seg"];

/// A working directory under target/ (hard links to the golden files are cheap there).
fn workdir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

fn link(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    if std::fs::hard_link(from, to).is_err() {
        std::fs::copy(from, to).unwrap();
    }
}

/// The golden tile as `Tiles/NAME.fits` with its SExtractor files in `Sextracted/NAME/`.
fn add_tile(dir: &Path, name: &str) -> PathBuf {
    let g = dre_testdata::golden();
    link(
        &g.join("Tiles/gold.fits"),
        &dir.join(format!("Tiles/{name}.fits")),
    );
    for kind in KINDS {
        link(
            &g.join(format!("Sextracted/gold/gold_{kind}.fits")),
            &dir.join(format!("Sextracted/{name}/{name}_{kind}.fits")),
        );
    }
    dir.join(format!("Sextracted/{name}"))
}

fn make_cuts(dir: &Path, args: &[&str]) -> Output {
    output(
        Command::new(env!("CARGO_BIN_EXE_make_cuts"))
            .args(args)
            .current_dir(dir),
    )
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn golden_working_directory_is_cut_like_the_original() {
    let dir = workdir();
    add_tile(dir.path(), "gold");
    let out = make_cuts(dir.path(), &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "gold: 30 cuts, 12 skipped\n");
    assert_eq!(text(&out.stderr), "");
    let ours = CutReader::open(dir.path().join("Cuts/gold_cuts.h5")).unwrap();
    let gold = CutReader::open(dre_testdata::golden().join("Cuts/gold_cuts.h5")).unwrap();
    assert_eq!(ours.names(), gold.names());
    let name = &gold.names()[7];
    assert_eq!(ours.read(name).unwrap(), gold.read(name).unwrap());
}

#[test]
fn flags_select_and_recentre() {
    let dir = workdir();
    add_tile(dir.path(), "gold");
    // No magnitude lies in (0, -3): nothing is cut, but the file is still written.
    let out = make_cuts(dir.path(), &["-f", "MAG_AUTO", "0", "-3", "-o", "None"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "gold: 0 cuts, 42 skipped\n");
    assert!(CutReader::open(dir.path().join("None/gold_cuts.h5"))
        .unwrap()
        .names()
        .is_empty());
    // Re-centred with a 2-D Gaussian, lzf-compressed, stars kept, quietly.
    let args = [
        "--centroids",
        "--centroids-mode",
        "2dg",
        "--compression",
        "low",
        "--max-stellarity",
        "1.1",
        "-q",
        "-o",
        "Centred",
    ];
    let out = make_cuts(dir.path(), &args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "");
    let r = CutReader::open(dir.path().join("Centred/gold_cuts.h5")).unwrap();
    assert_eq!(r.names().len(), 42);
    let cut = r.read(&r.names()[0]).unwrap();
    assert!(cut.seg[63 * 128 + 63]);
    assert!(cut.obj.iter().all(|v| v.is_finite()));
}

#[test]
fn bad_tiles_are_reported_one_line_each_and_the_others_are_cut() {
    let dir = workdir();
    let d = dir.path();
    add_tile(d, "a_good");
    // Not FITS.
    add_tile(d, "b_text");
    std::fs::remove_file(d.join("Tiles/b_text.fits")).unwrap();
    std::fs::write(d.join("Tiles/b_text.fits"), "not a FITS file\n").unwrap();
    // A catalogue without X_IMAGE, in the flat layout Sextracted/NAME_*.fits.
    let sub = add_tile(d, "c_nox");
    for kind in KINDS {
        let name = format!("c_nox_{kind}.fits");
        std::fs::rename(sub.join(&name), d.join("Sextracted").join(&name)).unwrap();
    }
    std::fs::remove_dir(&sub).unwrap();
    let cat_path = d.join("Sextracted/c_nox_cat.fits");
    let mut cat = read_catalog(&cat_path).unwrap();
    cat.columns.retain(|c| c.name != "X_IMAGE");
    std::fs::remove_file(&cat_path).unwrap();
    write_table(&cat_path, &cat).unwrap();
    // An RMS map of the wrong size.
    let sub = add_tile(d, "d_size");
    let rms = sub.join("d_size_rms.fits");
    std::fs::remove_file(&rms).unwrap();
    let desc = ImageDescription {
        data_type: ImageType::Float,
        dimensions: &[100, 200],
    };
    dre::init_cfitsio();
    let mut f = FitsFile::create(&rms)
        .with_custom_primary(&desc)
        .open()
        .unwrap();
    let hdu = f.primary_hdu().unwrap();
    hdu.write_image(&mut f, &vec![1.0f32; 200 * 100]).unwrap();
    drop(f);
    // No segmentation map.
    let sub = add_tile(d, "e_noseg");
    std::fs::remove_file(sub.join("e_noseg_seg.fits")).unwrap();

    let out = make_cuts(d, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "a_good: 30 cuts, 12 skipped\n");
    let err = text(&out.stderr);
    // Tiles are cut in parallel: their lines come in any order, the count last.
    let mut lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.pop(), Some("make_cuts: 4 of 5 tiles failed"), "{err}");
    lines.sort_unstable();
    assert_eq!(lines.len(), 4, "{err}");
    let expect = [
        ("Sextracted/c_nox_cat.fits", "X_IMAGE"),
        ("Sextracted/d_size/d_size_rms.fits", "200x100"),
        ("Sextracted/e_noseg/e_noseg_seg.fits", "no such file"),
        ("Tiles/b_text.fits", "FITS"),
    ];
    for (line, (file, why)) in lines.iter().zip(expect) {
        assert!(line.starts_with(&format!("make_cuts: {file}: ")), "{line}");
        assert!(line.contains(why), "{line}");
    }
    assert!(!err.contains("panicked"));
    let mut written: Vec<String> = std::fs::read_dir(d.join("Cuts"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !crate::common::is_bookkeeping(p))
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    written.sort();
    assert_eq!(written, ["a_good_cuts.h5"]);
}

#[test]
fn missing_input_folder_and_unwritable_output_fail_cleanly() {
    let dir = workdir();
    let out = make_cuts(dir.path(), &["-i", "NoTiles"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr), "make_cuts: NoTiles: no such folder\n");

    add_tile(dir.path(), "gold");
    std::fs::write(
        dir.path().join("blocker"),
        "a file where a folder should be",
    )
    .unwrap();
    let out = make_cuts(dir.path(), &["-o", "blocker/Cuts"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 2, "{err}");
    assert!(err.starts_with("make_cuts: blocker/Cuts"), "{err}");
    assert!(err.ends_with("\nmake_cuts: 1 of 1 tiles failed\n"), "{err}");

    let out = make_cuts(dir.path(), &["-f", "MAG_AUTO", "low", "3"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("\"low\" is not a number"));
}
