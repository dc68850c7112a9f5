//! make_cuts on the golden tile reproduces the original's cut file exactly.

use dre::CutReader;
use dre::{cut_tile, CutOptions, TileInputs};

#[test]
fn golden_tile_cuts_are_bit_identical() {
    let g = dre_testdata::golden();
    let inputs = TileInputs::locate(&g.join("Tiles/gold.fits"), &g.join("Sextracted"), None);
    let out = tempfile::tempdir().unwrap();
    let report = cut_tile(&inputs, out.path(), &CutOptions::default()).unwrap();
    assert_eq!(report.output, out.path().join("gold_cuts.h5"));
    // 42 detections: 30 galaxies cut, the 12 stars left out.
    assert_eq!(report.cut, 30);
    assert_eq!(report.skipped.stars, 12);
    assert_eq!(report.skipped.total(), 12);

    let ours = CutReader::open(&report.output).unwrap();
    let gold = CutReader::open(g.join("Cuts/gold_cuts.h5")).unwrap();
    assert_eq!(ours.names(), gold.names());
    for name in gold.names() {
        let (a, b) = (ours.read(name).unwrap(), gold.read(name).unwrap());
        assert_eq!(a.size, 128);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert!(bits(&a.obj) == bits(&b.obj), "{name}: obj differs");
        assert!(bits(&a.rms) == bits(&b.rms), "{name}: rms differs");
        assert!(a.seg == b.seg, "{name}: seg differs");
    }
}
