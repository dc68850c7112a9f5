//! sex_dre and psfex_dre against the original's run on the golden tile (real SExtractor
//! and PSFEx).

use crate::common::{all_files, golden_workdir, run_in, stderr};
use crate::preprocess::{image_size, require_tools};
use dre::read_catalog;
use std::path::Path;

const SEX_DRE: &str = env!("CARGO_BIN_EXE_sex_dre");
const PSFEX_DRE: &str = env!("CARGO_BIN_EXE_psfex_dre");

fn f64s(path: &Path, col: &str) -> Vec<f64> {
    read_catalog(path)
        .unwrap()
        .column(col)
        .unwrap_or_else(|| panic!("{}: no column {col}", path.display()))
        .as_f64()
        .unwrap()
}

/// The golden run's layout: the configuration with SExtractor's filter and network beside it.
fn golden_config_dir() -> tempfile::TempDir {
    let dir = golden_workdir(&["Tiles", "dre.sex", "dre.param", "dre.psfex"]);
    for f in ["gauss_3.0_5x5.conv", "default.nnw"] {
        std::fs::copy(
            Path::new("/usr/share/source-extractor").join(f),
            dir.path().join(f),
        )
        .expect("SExtractor's data files (apt-get install source-extractor)");
    }
    dir
}

#[test]
fn sex_dre_with_the_golden_config_reproduces_the_original_catalogue() {
    require_tools();
    let dir = golden_config_dir();
    let d = dir.path();
    // Run from elsewhere: the config's relative file names must still be found beside it.
    let o = run_in(
        SEX_DRE,
        &d.join("Tiles"),
        &[
            "-i",
            ".",
            "-sep",
            ".",
            "-c",
            "../dre.sex",
            "--subdir",
            "-o",
            "../Sextracted",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).is_empty(), "no warnings: {}", stderr(&o));
    let ours = d.join("Sextracted/gold/gold_cat.fits");
    let gold = dre_testdata::golden().join("Sextracted/gold/gold_cat.fits");
    let (a, b) = (read_catalog(&ours).unwrap(), read_catalog(&gold).unwrap());
    assert_eq!(a.nrows(), 42);
    // Exact: same SExtractor, same configuration, same image.
    for col in [
        "NUMBER",
        "X_IMAGE",
        "Y_IMAGE",
        "CLASS_STAR",
        "FLUX_APER",
        "VIGNET",
    ] {
        assert_eq!(a.column(col), b.column(col), "{col}");
        assert!(a.column(col).is_some(), "{col}");
    }
    for s in ["nb", "rms", "seg"] {
        assert_eq!(
            image_size(&d.join(format!("Sextracted/gold/gold_{s}.fits"))),
            (1024, 1024)
        );
    }
    // Nothing but the four outputs: no scratch folder left behind.
    assert_eq!(all_files(&d.join("Sextracted")).len(), 4);
}

#[test]
fn sex_dre_with_the_shipped_config_makes_a_usable_catalogue() {
    require_tools();
    let dir = golden_workdir(&["Tiles"]);
    // The shipped PIXEL_SCALE 0 takes the scale from the WCS; this simulated tile has none.
    let o = run_in(
        SEX_DRE,
        dir.path(),
        &["-fwhm", "3", "--arg", "PIXEL_SCALE", "1"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let cat = dir.path().join("Sextracted/gold_cat.fits");
    let t = read_catalog(&cat).unwrap();
    for col in [
        "NUMBER",
        "X_IMAGE",
        "Y_IMAGE",
        "CLASS_STAR",
        "VIGNET",
        "FLUX_APER",
    ] {
        assert!(t.has(col), "{col}");
    }
    // The simulated tile has 30 galaxies and 12 stars; the default settings find them all.
    assert!((40..=60).contains(&t.nrows()), "{} objects", t.nrows());
    let stars = f64s(&cat, "CLASS_STAR")
        .iter()
        .filter(|&&c| c > 0.5)
        .count();
    assert!((10..=14).contains(&stars), "{stars} stars");
    assert_eq!(
        image_size(&dir.path().join("Sextracted/gold_seg.fits")),
        (1024, 1024)
    );
}

#[test]
fn psfex_dre_with_the_golden_config_reproduces_the_original_psf() {
    require_tools();
    let dir = golden_workdir(&["Sextracted/gold/gold_cat.fits", "dre.psfex"]);
    let o = run_in(PSFEX_DRE, dir.path(), &["-c", "dre.psfex"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_close_to_golden_psf(&dir.path().join("PSF/gold.psf"));
    assert_eq!(all_files(&dir.path().join("PSF")).len(), 1);
}

#[test]
fn psfex_dre_with_the_shipped_config_reads_flat_catalogues() {
    require_tools();
    let dir = golden_workdir(&["Sextracted/gold/gold_cat.fits"]);
    let d = dir.path();
    std::fs::rename(
        d.join("Sextracted/gold/gold_cat.fits"),
        d.join("Sextracted/gold_cat.fits"),
    )
    .unwrap();
    let o = run_in(PSFEX_DRE, d, &["--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(o.stdout.is_empty(), "--quiet prints nothing");
    assert_close_to_golden_psf(&d.join("PSF/gold.psf"));
}

/// A 25x25 PSF within 1e-3 (max abs difference, normalised) of the original's PSF/gold.psf.
fn assert_close_to_golden_psf(path: &std::path::Path) {
    let ours = dre::read_psf(path).unwrap();
    let gold = dre::read_psf(dre_testdata::golden().join("PSF/gold.psf")).unwrap();
    assert_eq!((ours.width, ours.height), (25, 25));
    let diff = ours
        .data
        .iter()
        .zip(&gold.data)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(diff <= 1e-3, "max |PSF - golden| = {diff}");
}
