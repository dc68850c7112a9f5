//! The original's files open here: its cube, cut file, catalogue and Summary.

use dre::read_catalog;
use dre::read_cube;
use dre::CutReader;

#[test]
fn golden_cube_loads_with_its_grid() {
    let g = dre_testdata::golden();
    let cube = read_cube(g.join("cube_small.fits")).unwrap();
    assert_eq!(cube.grid.shape(), [2, 3, 5, 6]);
    assert_eq!(cube.grid.boxsize, 128);
    assert_eq!(cube.grid.index.values(), vec![3.0, 4.0]);
    assert_eq!(
        cube.grid.posang.values(),
        vec![-90.0, -45.0, 0.0, 45.0, 90.0]
    );
    // theta = -90 and +90 are the same stamp, and all angles are at q = 1.
    let k = |n: usize, q: usize, t: usize, r: usize| ((n * 3 + q) * 5 + t) * 6 + r;
    assert_eq!(cube.model(k(1, 0, 0, 3)), cube.model(k(1, 0, 4, 3)));
    assert_eq!(cube.model(k(0, 2, 1, 2)), cube.model(k(0, 2, 3, 2)));
    assert_ne!(cube.model(k(1, 0, 0, 3)), cube.model(k(1, 0, 1, 3)));
    // Each stamp sums to 1 in the box (SPEC 3).
    for m in cube.models() {
        let s: f64 = m.iter().map(|&v| v as f64).sum();
        assert!((s - 1.0).abs() < 1e-5, "stamp sum {s}");
    }
}

#[test]
fn golden_cut_file_opens() {
    let g = dre_testdata::golden();
    let r = CutReader::open(g.join("Cuts/gold_cuts.h5")).unwrap();
    assert_eq!(r.names().len(), 30);
    assert_eq!(r.names()[0], "00_0002");
    let cut = r.read("00_0002").unwrap();
    assert_eq!(cut.size, 128);
    assert!(cut.seg[64 * 128 + 64]);
    assert!(cut.obj.iter().all(|v| v.is_finite()));
}

#[test]
fn golden_catalogue_and_summary_open() {
    let g = dre_testdata::golden();
    let cat = read_catalog(g.join("Sextracted/gold/gold_cat.fits")).unwrap();
    assert_eq!(cat.nrows(), 42);
    assert_eq!(cat.column("VIGNET").unwrap().repeat, 35 * 35);
    let sum = read_catalog(g.join("Summary/gold_dre.fits")).unwrap();
    assert_eq!(sum.nrows(), 30);
    assert_eq!(sum.column("MODEL_IDX").unwrap().repeat, 4);
}
