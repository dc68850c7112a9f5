//! DRE_FLAGS set on purpose on cuts fitted as `dre` fits them: de Vaucouleurs galaxies
//! rendered and convolved by the library, fitted against a small Sérsic cube (n = 4, R_e
//! 1-10 px) and refined through `batch_parameters`, the path `dre` and the Python package
//! take. SECOND_MINIMUM: two crossed exponential disks (n = 1) of one size in one cut; two
//! crossed de Vaucouleurs bars, or two side by side, are best fitted by one compromise model
//! with a single minimum.

use dre::{
    batch_parameters, render_cube, Axis, CpuFitter, Cut, Fitter, Grid, Prepared, Psf,
    RadiusConvention, FLAG_FEW_PIXELS, FLAG_LOGR_EDGE, FLAG_Q_EDGE, FLAG_REFINE_FAILED,
    FLAG_SECOND_MINIMUM, FLAG_SEGMENT_AT_EDGE,
};
use std::path::Path;

const B: usize = 48;

fn psf() -> Psf {
    let (w, s) = (9usize, 1.2f64);
    let data = (0..w * w)
        .map(|p| {
            let (x, y) = ((p % w) as f64 - 4.0, (p / w) as f64 - 4.0);
            (-0.5 * (x * x + y * y) / (s * s)).exp() as f32
        })
        .collect();
    Psf {
        width: w,
        height: w,
        data,
    }
}

fn fitter(grid: Grid) -> CpuFitter {
    let mut f = CpuFitter::new(render_cube(&grid, RadiusConvention::Major, &|| {}).unwrap());
    f.convolve(&psf()).unwrap();
    f
}

fn cube() -> CpuFitter {
    fitter(Grid {
        index: Axis::new(4.0, 0.0, 1),
        axrat: Axis::new(0.2, 0.2, 5),
        posang: Axis::new(-90.0, 30.0, 7),
        logh: Axis::new(0.0, 0.2, 6),
        boxsize: B,
    })
}

/// A noise-free galaxy of `flux` (q, theta, log10 R_e), convolved as the cube's models.
fn galaxy(q: f64, theta: f64, logr: f64, flux: f32) -> Vec<f32> {
    let one = fitter(Grid {
        index: Axis::new(4.0, 0.0, 1),
        axrat: Axis::new(q, 0.1, 1),
        posang: Axis::new(theta, 1.0, 1),
        logh: Axis::new(logr, 0.1, 1),
        boxsize: B,
    });
    one.model(0).unwrap().iter().map(|v| v * flux).collect()
}

/// A cut of the image `obj`, rms 1, its segment the pixels within `radius` of the centre.
fn cut(obj: Vec<f32>, radius: f64) -> Cut {
    let h = (B as f64 - 1.0) / 2.0;
    Cut {
        name: "01_0001".into(),
        size: B,
        obj,
        seg: (0..B * B)
            .map(|p| ((p % B) as f64 - h).hypot((p / B) as f64 - h) <= radius)
            .collect(),
        rms: vec![1.0; B * B],
    }
}

fn flags(f: &mut CpuFitter, cut: &Cut) -> (i32, [f64; 4]) {
    let obj = Prepared::new(cut, B, Path::new("test")).unwrap();
    let chi = f.fit(std::slice::from_ref(&obj)).unwrap();
    let p = batch_parameters(f, &chi, std::slice::from_ref(&obj)).unwrap();
    let r = p[0].as_ref().unwrap().refined.unwrap();
    (r.flags, r.values)
}

#[test]
fn each_flag_is_set_on_purpose_and_not_on_a_clean_galaxy() {
    let f = &mut cube();
    // Clean: inside the grid, elongated, the segment well inside the cut.
    let (fl, v) = flags(f, &cut(galaxy(0.5, 20.0, 0.5, 1e4), 20.0));
    assert_eq!(fl, 0, "{v:?}");
    assert!(
        (v[1] - 0.5).abs() < 0.03 && (v[3] - 0.5).abs() < 0.02,
        "{v:?}"
    );
    // Larger than the grid's largest radius (10 px): LOGR_EDGE.
    let (fl, v) = flags(f, &cut(galaxy(0.5, 20.0, 1.3, 1e4), 22.0));
    assert_eq!(fl & FLAG_LOGR_EDGE, FLAG_LOGR_EDGE, "{v:?}");
    // Round (q = 1): Q_EDGE, no angle.
    let (fl, v) = flags(f, &cut(galaxy(1.0, 0.0, 0.5, 1e4), 20.0));
    assert_eq!(fl & FLAG_Q_EDGE, FLAG_Q_EDGE, "{v:?}");
    assert!(v[2].is_nan());
    // A tiny segment (4 pixels): FEW_PIXELS.
    let (fl, v) = flags(f, &cut(galaxy(0.5, 20.0, 0.5, 1e4), 0.8));
    assert_eq!(fl & FLAG_FEW_PIXELS, FLAG_FEW_PIXELS, "{v:?}");
    // A segment reaching the cut's border: SEGMENT_AT_EDGE.
    let (fl, v) = flags(f, &cut(galaxy(0.5, 20.0, 0.8, 1e4), 30.0));
    assert_eq!(fl & FLAG_SEGMENT_AT_EDGE, FLAG_SEGMENT_AT_EDGE, "{v:?}");
    // A segment of one pixel: every model fits it exactly, nothing to refine.
    let mut one = cut(galaxy(0.5, 20.0, 0.5, 1e4), 5.0);
    one.seg = (0..B * B).map(|p| p == 23 * B + 23).collect();
    let (fl, v) = flags(f, &one);
    assert_eq!(
        fl & (FLAG_REFINE_FAILED | FLAG_FEW_PIXELS),
        FLAG_REFINE_FAILED | FLAG_FEW_PIXELS,
        "{v:?}"
    );
}

/// Two exponential disks of one size crossed at right angles in one cut (a blend): the chi
/// surface has two minima of equal depth, one on each bisector, 90 degrees apart.
#[test]
fn two_crossed_disks_of_one_size_set_second_minimum() {
    let grid = |q: Axis, theta: Axis, logr: Axis| Grid {
        index: Axis::new(1.0, 0.0, 1),
        axrat: q,
        posang: theta,
        logh: logr,
        boxsize: B,
    };
    let mut f = fitter(grid(
        Axis::new(0.1, 0.1, 10),
        Axis::new(-90.0, 15.0, 13),
        Axis::new(0.0, 0.1, 10),
    ));
    let disk = |theta: f64| {
        let one = fitter(grid(
            Axis::new(0.2, 0.1, 1),
            Axis::new(theta, 1.0, 1),
            Axis::new(0.6, 0.1, 1),
        ));
        one.model(0).unwrap().to_vec()
    };
    let (a, b) = (disk(-45.0), disk(45.0));
    let pair: Vec<f32> = a.iter().zip(&b).map(|(x, y)| 1000.0 * (x + y)).collect();
    let (fl, v) = flags(&mut f, &cut(pair, 14.0));
    assert_ne!(fl & FLAG_SECOND_MINIMUM, 0, "flags {fl}, values {v:?}");
    // One disk alone: one minimum, its own shape.
    let (fl, v) = flags(&mut f, &cut(a.iter().map(|x| 1000.0 * x).collect(), 14.0));
    assert_eq!(fl & FLAG_SECOND_MINIMUM, 0, "flags {fl}, values {v:?}");
    assert!(
        (v[1] - 0.2).abs() < 0.02 && (v[2] + 45.0).abs() < 1.0,
        "{v:?}"
    );
}
