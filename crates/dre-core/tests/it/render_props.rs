//! Properties of the renderer that must hold exactly: the same physical image gives the
//! same bits, and the thread count changes nothing.

use dre::{render_cube, render_stamp, RadiusConvention, StampParams};
use dre::{Axis, Grid};

fn stamp(n: f64, q: f64, theta: f64, re_major: f64, boxsize: usize) -> Vec<f64> {
    let p = StampParams {
        n,
        q,
        theta,
        re_major,
    };
    render_stamp(&p, boxsize).unwrap().pixels
}

#[test]
fn equivalent_angles_are_bit_identical() {
    assert_eq!(
        stamp(4.0, 0.3, -90.0, 2.5, 32),
        stamp(4.0, 0.3, 90.0, 2.5, 32)
    );
    assert_eq!(
        stamp(1.0, 0.6, -30.0, 3.0, 32),
        stamp(1.0, 0.6, 150.0, 3.0, 32)
    );
    let round = stamp(4.0, 1.0, 0.0, 0.4, 32);
    for theta in [-90.0, -45.0, 15.0, 37.0, 90.0] {
        assert_eq!(stamp(4.0, 1.0, theta, 0.4, 32), round, "theta {theta}");
    }
    // ... and a different angle is a different image.
    assert_ne!(
        stamp(4.0, 0.3, 0.0, 2.5, 32),
        stamp(4.0, 0.3, 90.0, 2.5, 32)
    );
}

#[test]
fn stamps_have_exact_symmetries() {
    let b = 33;
    let at = |s: &[f64], i: usize, j: usize| s[i * b + j];
    let tilted = stamp(3.0, 0.4, 20.0, 3.0, b);
    let aligned = stamp(3.0, 0.4, 0.0, 3.0, b);
    let diagonal = stamp(3.0, 0.4, 45.0, 3.0, b);
    let round = stamp(3.0, 1.0, 0.0, 3.0, b);
    for i in 0..b {
        for j in 0..b {
            let (mi, mj) = (b - 1 - i, b - 1 - j);
            assert_eq!(at(&tilted, i, j), at(&tilted, mi, mj));
            assert_eq!(at(&aligned, i, j), at(&aligned, i, mj));
            assert_eq!(at(&diagonal, i, j), at(&diagonal, j, i));
            assert_eq!(at(&round, i, j), at(&round, j, mi));
        }
    }
    // theta = 20 puts the major axis above +x on the right: (row 16+2, column 16+5) is
    // nearer the major axis than (row 16-2, column 16+5).
    assert!(at(&tilted, 18, 21) > at(&tilted, 14, 21));
}

#[test]
fn thread_count_does_not_change_the_cube() {
    let grid = Grid {
        index: Axis::new(1.0, 3.0, 2),
        axrat: Axis::new(0.2, 0.4, 3),
        posang: Axis::new(-90.0, 60.0, 4),
        logh: Axis::new(-0.4, 0.6, 3),
        boxsize: 24,
    };
    let render = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let ticks = std::sync::atomic::AtomicUsize::new(0);
        let tick = || {
            ticks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        };
        let cube = pool
            .install(|| render_cube(&grid, RadiusConvention::Major, &tick))
            .unwrap();
        assert_eq!(ticks.into_inner(), grid.n_models());
        cube
    };
    let one = render(1);
    let two = render(2);
    assert!(one.data == two.data);
    // theta = -90 and +90 models are the same image, bit for bit; each stamp sums to 1.
    let k = |n: usize, q: usize, t: usize, r: usize| ((n * 3 + q) * 4 + t) * 3 + r;
    assert_eq!(one.model(k(1, 0, 0, 2)), one.model(k(1, 0, 3, 2)));
    for m in one.models() {
        let sum: f64 = m.iter().map(|&v| v as f64).sum();
        assert!((sum - 1.0).abs() < 1e-5);
    }
}

/// First and second moments of a stamp's light: (cx, cy, angle of the major axis in degrees
/// counter-clockwise from +x).
fn moments(pixels: &[f64], b: usize) -> (f64, f64, f64) {
    let total: f64 = pixels.iter().sum();
    let (mut cx, mut cy) = (0.0, 0.0);
    for (i, v) in pixels.iter().enumerate() {
        cx += (i % b) as f64 * v;
        cy += (i / b) as f64 * v;
    }
    let (cx, cy) = (cx / total, cy / total);
    let (mut xx, mut yy, mut xy) = (0.0, 0.0, 0.0);
    for (i, v) in pixels.iter().enumerate() {
        let (dx, dy) = ((i % b) as f64 - cx, (i / b) as f64 - cy);
        xx += dx * dx * v;
        yy += dy * dy * v;
        xy += dx * dy * v;
    }
    let angle = 0.5 * (2.0 * xy).atan2(xx - yy);
    (cx, cy, angle.to_degrees())
}

/// The stamp-centre convention by its definition: the light's centre is at pixel index
/// (B-1)/2 on both axes, for odd and even boxes; and theta is THETA_IMAGE, the major axis
/// counter-clockwise from +x (x the fast array axis), equal modulo 180.
#[test]
fn light_is_centred_at_the_stamp_centre_with_the_major_axis_at_theta() {
    for b in [32usize, 33] {
        for theta in [-60.0, 0.0, 30.0, 75.0] {
            let s = stamp(1.0, 0.4, theta, 3.0, b);
            let (cx, cy, angle) = moments(&s, b);
            let c = dre::conventions::stamp_centre(b);
            assert!(
                (cx - c).abs() < 1e-9 && (cy - c).abs() < 1e-9,
                "box {b}: ({cx}, {cy})"
            );
            let d = dre::conventions::angle_difference(angle, theta);
            assert!(
                d.abs() < 0.5,
                "box {b}, theta {theta}: major axis at {angle}"
            );
            assert_eq!(s, stamp(1.0, 0.4, theta + 180.0, 3.0, b), "theta + 180");
        }
    }
}
