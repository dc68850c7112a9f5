//! The native renderer against GalSim: the ten reference stamps (semi-major radii) and the
//! golden cube `cube_small.fits` (circularised radii).

use dre::read_cube;
use dre::{render_cube, render_stamp, RadiusConvention, StampParams};
use fitsio::FitsFile;

/// Max |a - b| over a stamp, in units of the reference stamp's peak.
fn max_dev(ours: impl Iterator<Item = f64>, reference: &[f64]) -> f64 {
    let peak = reference.iter().cloned().fold(f64::MIN, f64::max);
    ours.zip(reference)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max)
        / peak
}

#[test]
fn stamps_match_galsim() {
    let path = dre_testdata::golden().join("stamps.fits");
    dre::init_cfitsio();
    let mut f = FitsFile::open(&path).unwrap();
    let images: Vec<f64> = f.primary_hdu().unwrap().read_image(&mut f).unwrap();
    let table = f.hdu(1).unwrap();
    let col = |f: &mut FitsFile, name: &str| -> Vec<f64> { table.read_col(f, name).unwrap() };
    let (n, q, theta) = (col(&mut f, "N"), col(&mut f, "Q"), col(&mut f, "THETA"));
    let (re, inbox) = (col(&mut f, "RE_MAJOR"), col(&mut f, "INBOX"));
    assert_eq!(n.len(), 10);
    let len = 128 * 128;
    for i in 0..n.len() {
        let params = StampParams {
            n: n[i],
            q: q[i],
            theta: theta[i],
            re_major: re[i],
        };
        let s = render_stamp(&params, 128).unwrap();
        let dev = max_dev(s.pixels.iter().cloned(), &images[i * len..(i + 1) * len]);
        let dflux = (s.inbox - inbox[i]).abs();
        println!(
            "{params:?}: max dev {dev:.2e} of peak, inbox {:.8} vs {:.8}",
            s.inbox, inbox[i]
        );
        assert!(dev <= 1e-4, "{params:?}: max deviation {dev:e} of the peak");
        assert!(
            dflux <= 1e-4,
            "{params:?}: in-box flux {} vs {}",
            s.inbox,
            inbox[i]
        );
    }
}

#[test]
fn small_cube_matches_golden() {
    let golden = read_cube(dre_testdata::golden().join("cube_small.fits")).unwrap();
    let ours = render_cube(&golden.grid, RadiusConvention::Circular, &|| ()).unwrap();
    let mut worst = (0.0, 0);
    for (k, (a, b)) in ours.models().zip(golden.models()).enumerate() {
        let reference: Vec<f64> = b.iter().map(|&v| v as f64).collect();
        let dev = max_dev(a.iter().map(|&v| v as f64), &reference);
        if dev > worst.0 {
            worst = (dev, k);
        }
    }
    println!(
        "worst model {:?}: {:.2e} of its peak",
        golden.grid.unravel(worst.1),
        worst.0
    );
    assert!(
        worst.0 <= 1e-4,
        "model {:?}: {:e}",
        golden.grid.unravel(worst.1),
        worst.0
    );
}
