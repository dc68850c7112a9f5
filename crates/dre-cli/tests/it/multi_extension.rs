//! A multi-extension tile through sex_dre -> psfex_dre -> make_cuts -> dre: each object is
//! cut from its own extension and joined with its own catalogue rows (EXT_NUMBER).

use crate::common::{run_in, stderr};
use dre::read_catalog;
use fitsio::images::{ImageDescription, ImageType};
use std::path::Path;

/// The golden tile split into two 512-row extensions behind an empty primary.
fn write_mef(golden_tile: &Path, out: &Path) {
    dre::init_cfitsio();
    let mut f = fitsio::FitsFile::open(golden_tile).unwrap();
    let hdu = f.primary_hdu().unwrap();
    let data: Vec<f32> = hdu.read_image(&mut f).unwrap();
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let mut mef = fitsio::FitsFile::create(out).open().unwrap();
    let desc = ImageDescription {
        data_type: ImageType::Float,
        dimensions: &[512, 1024],
    };
    for half in 0..2 {
        let h = mef.create_image("", &desc).unwrap();
        h.write_image(&mut mef, &data[half * 512 * 1024..(half + 1) * 512 * 1024])
            .unwrap();
    }
}

fn ok(o: &std::process::Output, what: &str) {
    assert!(o.status.success(), "{what}: {}", stderr(o));
}

#[test]
fn each_extension_is_cut_and_joined_on_its_own() {
    let g = dre_testdata::golden();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_mef(&g.join("Tiles/gold.fits"), &d.join("Tiles/mef.fits"));
    let cube = g.join("cube_small.fits");
    let sex = run_in(
        env!("CARGO_BIN_EXE_sex_dre"),
        d,
        &["-q", "--subdir", "--arg", "PIXEL_SCALE", "1", "-fwhm", "3"],
    );
    ok(&sex, "sex_dre");
    ok(
        &run_in(env!("CARGO_BIN_EXE_psfex_dre"), d, &["-q"]),
        "psfex_dre",
    );
    ok(
        &run_in(env!("CARGO_BIN_EXE_make_cuts"), d, &["-q"]),
        "make_cuts",
    );
    ok(
        &run_in(
            env!("CARGO_BIN_EXE_dre"),
            d,
            &["-q", "-m", cube.to_str().unwrap()],
        ),
        "dre",
    );

    // The catalogue has one LDAC_OBJECTS per extension; rows are numbered by extension.
    let cat = read_catalog(d.join("Sextracted/mef/mef_cat.fits")).unwrap();
    let ext = cat.column("EXT_NUMBER").unwrap().as_i64().unwrap();
    assert!(ext.contains(&1) && ext.contains(&2), "{ext:?}");

    let cuts = dre::CutReader::open(d.join("Cuts/mef_cuts.h5")).unwrap();
    let names = cuts.names();
    assert!(
        names.iter().any(|n| n.starts_with("01_")) && names.iter().any(|n| n.starts_with("02_"))
    );

    // Every fitted object sits where a galaxy of the whole (golden) tile is, once its
    // extension's offset is added: the cut and the join used the right extension.
    let sum = read_catalog(d.join("Summary/mef_dre.fits")).unwrap();
    assert_eq!(sum.nrows(), names.len());
    let gold = read_catalog(g.join("Summary/gold_dre.fits")).unwrap();
    let (gx, gy) = (
        gold.column("X_IMAGE").unwrap().as_f64().unwrap(),
        gold.column("Y_IMAGE").unwrap().as_f64().unwrap(),
    );
    let e = sum.column("EXT_NUMBER").unwrap().as_i64().unwrap();
    let x = sum.column("X_IMAGE").unwrap().as_f64().unwrap();
    let y = sum.column("Y_IMAGE").unwrap().as_f64().unwrap();
    let mut matched = 0;
    for i in 0..sum.nrows() {
        let yy = y[i] + if e[i] == 2 { 512.0 } else { 0.0 };
        if gx
            .iter()
            .zip(&gy)
            .any(|(a, b)| (a - x[i]).hypot(b - yy) < 1.0)
        {
            matched += 1;
        }
    }
    // Galaxies cut by the split line are new detections; the rest are the golden ones.
    assert!(
        matched + 4 >= sum.nrows() && matched >= 20,
        "{matched} of {}",
        sum.nrows()
    );
}
