//! Images whose names share a prefix are each measured on their own image (the original
//! paired by substring: `sim_a` took `sim_ab` too), in single and dual mode.

use crate::common::{f64_column as col, run_in, stderr};
use crate::preprocess::{golden_tile, require_tools, write_crop};
use std::path::Path;

const SEX_DRE: &str = env!("CARGO_BIN_EXE_sex_dre");
const SIZE: usize = 400;
/// Lower-left corners of the two crops of the golden tile: different objects in each.
const A: (usize, usize) = (0, 0);
const AB: (usize, usize) = (560, 560);

/// Every object well inside the crop lies (after the crop's offset) within 1 px of an object
/// of the golden catalogue: the catalogue was measured on that crop.
fn assert_measured_on(cat: &Path, corner: (usize, usize)) {
    let gold = dre_testdata::golden().join("Sextracted/gold/gold_cat.fits");
    let (gx, gy) = (col(&gold, "X_IMAGE"), col(&gold, "Y_IMAGE"));
    let (x, y) = (col(cat, "X_IMAGE"), col(cat, "Y_IMAGE"));
    let inner = |v: f64| v > 20.0 && v < SIZE as f64 - 20.0;
    let mut n = 0;
    for (&x, &y) in x.iter().zip(&y).filter(|(x, y)| inner(**x) && inner(**y)) {
        let (tx, ty) = (x + corner.0 as f64, y + corner.1 as f64);
        let d = gx
            .iter()
            .zip(&gy)
            .map(|(a, b)| (a - tx).hypot(b - ty))
            .fold(f64::INFINITY, f64::min);
        assert!(
            d < 1.0,
            "{}: object at ({x}, {y}) is not in its image",
            cat.display()
        );
        n += 1;
    }
    assert!(n >= 3, "{}: only {n} objects", cat.display());
}

#[test]
fn single_mode_measures_each_prefix_sharing_image_on_itself() {
    require_tools();
    let tile = golden_tile();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_crop(&d.join("Tiles/sim_a.fits"), &tile, A.0, A.1, SIZE, 1.0);
    write_crop(&d.join("Tiles/sim_ab.fits"), &tile, AB.0, AB.1, SIZE, 1.0);
    let o = run_in(SEX_DRE, d, &["-sep", "_", "--subdir"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_measured_on(&d.join("Sextracted/sim_a/sim_a_cat.fits"), A);
    assert_measured_on(&d.join("Sextracted/sim_ab/sim_ab_cat.fits"), AB);
    let lines = String::from_utf8_lossy(&o.stdout);
    assert!(
        lines.contains("(1/2) sim_a:") && lines.contains("(2/2) sim_ab:"),
        "{lines}"
    );
}

#[test]
fn dual_mode_pairs_by_exact_key_and_measures_on_the_second_folder() {
    require_tools();
    let tile = golden_tile();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_crop(&d.join("det/sim_a-det.fits"), &tile, A.0, A.1, SIZE, 1.0);
    write_crop(&d.join("det/sim_ab-det.fits"), &tile, AB.0, AB.1, SIZE, 1.0);
    // Measurement images: the same crops, twice as bright.
    write_crop(&d.join("mea/sim_a-r.fits"), &tile, A.0, A.1, SIZE, 2.0);
    write_crop(&d.join("mea/sim_ab-r.fits"), &tile, AB.0, AB.1, SIZE, 2.0);
    let o = run_in(SEX_DRE, d, &["-i", "det", "mea", "-sep", "-", "-o", "dual"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut outs: Vec<String> = std::fs::read_dir(d.join("dual"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with("_cat.fits"))
        .collect();
    outs.sort();
    assert_eq!(
        outs,
        ["sim_a-r_cat.fits", "sim_ab-r_cat.fits"],
        "one run per pair"
    );
    assert_measured_on(&d.join("dual/sim_a-r_cat.fits"), A);
    assert_measured_on(&d.join("dual/sim_ab-r_cat.fits"), AB);

    // Same detections as the detection image alone, fluxes from the brighter measurement image.
    let o = run_in(SEX_DRE, d, &["-i", "det", "-o", "single"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (dual, single) = (
        d.join("dual/sim_a-r_cat.fits"),
        d.join("single/sim_a-det_cat.fits"),
    );
    assert_eq!(col(&dual, "NUMBER"), col(&single, "NUMBER"));
    assert_eq!(col(&dual, "X_IMAGE"), col(&single, "X_IMAGE"));
    for (f2, f1) in col(&dual, "FLUX_APER")
        .iter()
        .zip(col(&single, "FLUX_APER"))
    {
        assert!((f2 / f1 - 2.0).abs() < 0.01, "flux {f2} vs 2 x {f1}");
    }
}
