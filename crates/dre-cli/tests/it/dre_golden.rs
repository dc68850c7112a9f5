//! `dre` against the original Python DRE on the golden tile: chi cubes, Summary and mosaics,
//! for the PSFEx PSF and for the true PSF.

use crate::common::{golden_cube, golden_workdir, run_in, stderr};
use dre::{read_catalog, read_chi, ColumnData, Table};
use std::path::Path;

const DRE: &str = env!("CARGO_BIN_EXE_dre");

fn h5_names(path: &Path) -> Vec<String> {
    let mut n = hdf5::File::open(path).unwrap().member_names().unwrap();
    n.sort();
    n
}

/// Chi cubes agree to float32 FFT rounding and the best model is the same, or the two
/// candidates are a tie to 1e-6 in the original's own cube.
fn compare_chi(ours: &Path, gold: &Path) {
    let names = h5_names(gold);
    assert_eq!(h5_names(ours), names, "same objects");
    assert_eq!(names.len(), 30);
    for name in &names {
        let (a, sa) = read_chi(ours, name).unwrap();
        let (b, sb) = read_chi(gold, name).unwrap();
        assert_eq!(sa, sb);
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() <= 1e-4 * y.abs(), "{name}: chi {x} vs {y}");
        }
        let ka = dre::nan_argmin(&a).unwrap();
        let kb = dre::nan_argmin(&b).unwrap();
        if ka != kb {
            assert!(
                (b[ka] - b[kb]).abs() <= 1e-6 * b[kb],
                "{name}: best model {ka} vs {kb}"
            );
        }
    }
}

fn f64s(t: &Table, name: &str) -> Vec<f64> {
    t.column(name).unwrap().as_f64().unwrap()
}

fn compare_summary(ours: &Path, gold: &Path) {
    let a = read_catalog(ours).unwrap();
    let b = read_catalog(gold).unwrap();
    let names = |t: &Table| t.columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
    let (na, nb) = (names(&a), names(&b));
    assert_eq!(
        na[..nb.len()],
        nb[..],
        "the original's columns in the same order"
    );
    // Then the off-grid values, their errors and the flags (INDEX_FIT for cubes of several n).
    let extra: Vec<&str> = na[nb.len()..].iter().map(|s| s.as_str()).collect();
    let three = [
        "LOGR_FIT",
        "LOGR_FIT_ERR",
        "AX_RATIO_FIT",
        "AX_RATIO_FIT_ERR",
        "ANGLE_FIT",
        "ANGLE_FIT_ERR",
    ];
    assert_eq!(extra[..6], three, "new columns last");
    assert!(
        extra[6..] == ["NPIX", "DRE_FLAGS"]
            || extra[6..] == ["INDEX_FIT", "INDEX_FIT_ERR", "NPIX", "DRE_FLAGS"],
        "{extra:?}"
    );
    assert_eq!(a.nrows(), 30);
    for (ca, cb) in a.columns.iter().zip(&b.columns) {
        assert_eq!(
            std::mem::discriminant(&ca.data),
            std::mem::discriminant(&cb.data),
            "column {} has the original's type",
            ca.name
        );
        let tol = match ca.name.as_str() {
            "LOGR_PARAB" | "LOGR_STD" | "CHI" | "CHI_STD" | "LOGR_CHI" | "LOGR_VAR"
            | "LOGR_CHI_VAR" => 1e-4,
            _ => 0.0, // grid values and the catalogue join: identical
        };
        match (&ca.data, &cb.data) {
            (ColumnData::F32(_), _) | (ColumnData::F64(_), _) => {
                for (x, y) in f64s(&a, &ca.name).iter().zip(f64s(&b, &cb.name)) {
                    assert!(
                        x.is_nan() && y.is_nan() || (x - y).abs() <= tol * y.abs(),
                        "{}: {x} vs {y}",
                        ca.name
                    );
                }
            }
            _ => assert_eq!(ca.data, cb.data, "column {}", ca.name),
        }
    }
}

/// Runs `dre` on copies of the golden `items` with the golden cube and `args`, and checks
/// its Chi and Summary against the original's in `chi_dir` and `summary_dir`.
fn fit_and_compare(
    items: &[&str],
    args: &[&str],
    chi_dir: &str,
    summary_dir: &str,
) -> tempfile::TempDir {
    let dir = golden_workdir(items);
    let cube = golden_cube();
    let mut all = vec!["-m", cube.to_str().unwrap(), "--quiet"];
    all.extend_from_slice(args);
    let out = run_in(DRE, dir.path(), &all);
    assert!(out.status.success(), "{}", stderr(&out));
    let g = dre_testdata::golden();
    compare_chi(
        &dir.path().join("Chi/gold_chi.h5"),
        &g.join(chi_dir).join("gold_chi.h5"),
    );
    compare_summary(
        &dir.path().join("Summary/gold_dre.fits"),
        &g.join(summary_dir).join("gold_dre.fits"),
    );
    dir
}

#[test]
fn fit_with_psfex_psf_matches_the_original() {
    let dir = fit_and_compare(
        &["Cuts", "PSF", "Sextracted"],
        &["--cpu", "2", "--mosaics"],
        "Chi",
        "Summary",
    );
    // Mosaics: the original's blocks are transposed; ours are in the tile's orientation.
    let g = dre_testdata::golden();
    for obj in ["00_0002", "00_0004", "00_0006"] {
        let file = format!("gold_{obj}_mosaic.fits");
        let ours = read_image(&dir.path().join("Mosaics/gold").join(&file));
        let gold = read_image(&g.join("Mosaics/gold").join(&file));
        let b = 128;
        let peak = gold.iter().fold(0f64, |m, v| m.max(v.abs()));
        for blk in 0..4 {
            for y in 0..b {
                for x in 0..b {
                    let o = ours[y * 4 * b + blk * b + x];
                    let t = gold[x * 4 * b + blk * b + y];
                    assert!(
                        (o - t).abs() <= 1e-4 * peak,
                        "{file} block {blk} ({y},{x}): {o} vs {t}"
                    );
                }
            }
        }
    }
}

#[test]
fn fit_with_one_true_psf_for_all_tiles_matches_the_original() {
    fit_and_compare(
        &["Cuts", "Sextracted", "Truth"],
        &["--psf", "Truth/gold_truepsf.fits", "--cpu", "1"],
        "Chi_truepsf",
        "Summary_truepsf",
    );
}

#[test]
fn flat_catalogue_layout_is_joined_too() {
    let dir = golden_workdir(&["Cuts", "PSF"]);
    let g = dre_testdata::golden();
    std::fs::create_dir_all(dir.path().join("Cats")).unwrap();
    std::fs::copy(
        g.join("Sextracted/gold/gold_cat.fits"),
        dir.path().join("Cats/gold_cat.fits"),
    )
    .unwrap();
    let cube = golden_cube();
    let out = run_in(
        DRE,
        dir.path(),
        &[
            "-m",
            cube.to_str().unwrap(),
            "--catalogs",
            "Cats",
            "-o",
            "Out",
            "--chi",
            "ChiOut",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    compare_summary(
        &dir.path().join("Out/gold_dre.fits"),
        &g.join("Summary/gold_dre.fits"),
    );
    assert!(dir.path().join("ChiOut/gold_chi.h5").is_file());
}

/// The first non-empty image (the original writes an empty primary and an image extension).
fn read_image(path: &Path) -> Vec<f64> {
    dre::init_cfitsio();
    let mut f = fitsio::FitsFile::open(path).unwrap();
    for i in 0..f.num_hdus().unwrap() {
        let hdu = f.hdu(i).unwrap();
        if let fitsio::hdu::HduInfo::ImageInfo { shape, .. } = &hdu.info {
            if !shape.is_empty() {
                return hdu.read_image(&mut f).unwrap();
            }
        }
    }
    panic!("no image in {}", path.display())
}

#[test]
fn objects_missing_from_the_catalogue_are_reported() {
    let dir = golden_workdir(&["Cuts", "PSF", "Sextracted"]);
    // Keep only the first 10 catalogue rows.
    let cat = dir.path().join("Sextracted/gold/gold_cat.fits");
    dre::init_cfitsio();
    let mut f = fitsio::FitsFile::edit(&cat).unwrap();
    f.hdu(2).unwrap();
    let mut status = 0;
    unsafe { fitsio::sys::ffdrow(f.as_raw(), 11, 32, &mut status) };
    drop(f);
    assert_eq!(dre::read_catalog(&cat).unwrap().nrows(), 10);
    let cube = golden_cube();
    let out = run_in(DRE, dir.path(), &["-m", cube.to_str().unwrap(), "--quiet"]);
    // Every object was fitted: exit 0, and one warning says what the Summary lacks.
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    let summary = dre::read_catalog(dir.path().join("Summary/gold_dre.fits")).unwrap();
    let missing = 30 - summary.nrows();
    assert!(missing > 0);
    assert_eq!(
        err.trim(),
        format!(
            "dre: warning: Sextracted/gold/gold_cat.fits: {missing} fitted objects have no row in \
             the catalogue and are left out of the Summary (their chi cubes are in the chi file)"
        )
    );
    assert_eq!(h5_names(&dir.path().join("Chi/gold_chi.h5")).len(), 30);
}
