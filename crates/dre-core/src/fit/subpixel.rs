//! The window's models as the off-grid refinement compares them with the data: moved onto
//! the object's sub-pixel offset, with the pixel's response counted once.
//!
//! A cut puts its object anywhere in (63, 64] of the 128-pixel window (SPEC 2) while the
//! models are centred at 63.5: up to half a pixel off on each axis. The grid fit ignores this
//! (as the original does); the refinement moves its window's models onto the object, with
//! the offset fitted to the data at the best grid model. Without it, at high S/N the offset
//! is most of the error in q and theta (issue 14's measurements, in the README).
//!
//! The cube's models are integrated over pixels and then convolved with a PSF that, as
//! PSFEx's, already holds the pixel's response: the pixel is counted twice, which makes the
//! fitted sizes small. The cell-average correction f(x_i) = a_i - (a_(i+1) - 2 a_i +
//! a_(i-1)) / 24 (exact for quadratics) undoes one pixel along each axis.
//!
//! Both are one separable filter: Lanczos-5 interpolation (the convolved models are smooth
//! on the scale of the PSF) convolved with the 3 taps (-1, 26, -1) / 24, the same 12 weights
//! per axis for every pixel.

use super::kernel::Prepared;
use super::newton::{minimise, GradHess};
use std::cell::RefCell;

/// Largest offset fitted, in pixels per axis: the cut's rounding gives at most 0.5, the
/// catalogue's position error adds to it.
pub const MAX_OFFSET: f64 = 1.0;

/// The offset fit stops when a step moves it by less than this, in pixels.
const TOLERANCE: f64 = 5e-3;

/// Lanczos order: taps per axis are 2 A.
const A: usize = 5;

fn lanczos(x: f64) -> f64 {
    let a = A as f64;
    if x == 0.0 {
        1.0
    } else if x.abs() >= a {
        0.0
    } else {
        let px = std::f64::consts::PI * x;
        a * px.sin() * (px / a).sin() / (px * px)
    }
}

/// One axis: the taps' weights (summing to 1) and the first tap's offset.
#[derive(Clone, Copy, Debug)]
struct Taps {
    w: [f64; 2 * A + 2],
    first: isize,
}

impl Taps {
    /// Taps that read the stamp at x - d for output pixel x, with one pixel's response
    /// taken out.
    fn new(d: f64) -> Taps {
        let t = -d;
        let f = t.floor();
        let frac = t - f;
        let mut lanczos_w = [0.0; 2 * A];
        for (i, wi) in lanczos_w.iter_mut().enumerate() {
            *wi = lanczos(frac - (i as f64 - (A as f64 - 1.0)));
        }
        let sum: f64 = lanczos_w.iter().sum();
        let mut w = [0.0; 2 * A + 2];
        for (i, v) in lanczos_w.iter().enumerate() {
            let v = v / sum;
            w[i] -= v / 24.0;
            w[i + 1] += 26.0 * v / 24.0;
            w[i + 2] -= v / 24.0;
        }
        Taps {
            w,
            first: f as isize - A as isize,
        }
    }
}

/// Resampling of a `b` x `b` stamp moved by (dx, dy) pixels (+x, +y: towards larger
/// indices), with one pixel's response taken out.
#[derive(Clone, Copy, Debug)]
pub struct Resampler {
    b: usize,
    x: Taps,
    y: Taps,
}

impl Resampler {
    /// The resampling for a move by `(dx, dy)`.
    pub fn new(b: usize, (dx, dy): (f64, f64)) -> Resampler {
        Resampler {
            b,
            x: Taps::new(dx),
            y: Taps::new(dy),
        }
    }

    /// The moved stamp's values at the pixels of `at` (zero beyond the stamp's edge): over
    /// their bounding box, one pass along x over the rows the taps reach, then one along y,
    /// each a sum of whole rows (vectorised), then the pixels.
    pub fn apply(&self, m: &[f32], at: &Footprint) -> Vec<f64> {
        debug_assert_eq!(at.b, self.b);
        let (b, w, h) = (self.b as isize, at.w, at.h);
        if w == 0 {
            return Vec::new();
        }
        const TAPS: usize = 2 * A + 2;
        // Per x tap: its weight, and the output columns lo..hi that read stamp columns
        // start..start + hi - lo (the others read beyond the stamp: zero).
        let xs: [(f32, usize, usize, usize); TAPS] = std::array::from_fn(|i| {
            let s = at.x0 + self.x.first + i as isize;
            let lo = (-s).clamp(0, w as isize) as usize;
            let hi = (b - s).clamp(0, w as isize) as usize;
            (
                self.x.w[i] as f32,
                lo,
                hi.max(lo),
                (s + lo as isize).max(0) as usize,
            )
        });
        // Rows y0 + first .. y1 + first + TAPS - 1 of the stamp, moved along x.
        let r0 = at.y0 + self.y.first;
        let mut rows = vec![0f32; (h + TAPS - 1) * w];
        for (k, out) in rows.chunks_exact_mut(w).enumerate() {
            let r = r0 + k as isize;
            if !(0..b).contains(&r) {
                continue;
            }
            let row = &m[(r * b) as usize..((r + 1) * b) as usize];
            for &(wx, lo, hi, start) in &xs {
                for (o, v) in out[lo..hi].iter_mut().zip(&row[start..start + hi - lo]) {
                    *o += wx * v;
                }
            }
        }
        // The bounding box, moved along y too.
        let wy: [f32; TAPS] = self.y.w.map(|v| v as f32);
        let mut boxed = vec![0f32; h * w];
        for (y, out) in boxed.chunks_exact_mut(w).enumerate() {
            for (j, &wj) in wy.iter().enumerate() {
                let src = &rows[(y + j) * w..(y + j + 1) * w];
                for (o, v) in out.iter_mut().zip(src) {
                    *o += wj * v;
                }
            }
        }
        at.index.iter().map(|&i| boxed[i] as f64).collect()
    }
}

/// Where a set of pixels of a `b` x `b` stamp lies: their bounding box (its width rounded
/// up to a multiple of 8), and each one's index in it. Made once per object, for every
/// model [`Resampler::apply`] moves.
#[derive(Clone, Debug)]
pub struct Footprint {
    b: usize,
    x0: isize,
    y0: isize,
    w: usize,
    h: usize,
    index: Vec<usize>,
}

impl Footprint {
    /// The footprint of the flat stamp indices `pixels`.
    pub fn new(b: usize, pixels: &[usize]) -> Footprint {
        let at = |q: usize| ((q % b) as isize, (q / b) as isize);
        let Some(&first) = pixels.first() else {
            return Footprint {
                b,
                x0: 0,
                y0: 0,
                w: 0,
                h: 0,
                index: Vec::new(),
            };
        };
        let (mut x0, mut y0) = at(first);
        let (mut x1, mut y1) = (x0, y0);
        for &q in pixels {
            let (x, y) = at(q);
            (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
        }
        // Whole vectors of 8 per row: the passes then run without scalar remainders.
        let w = ((x1 - x0 + 1) as usize).next_multiple_of(8);
        let index = pixels
            .iter()
            .map(|&q| {
                let (x, y) = at(q);
                (y - y0) as usize * w + (x - x0) as usize
            })
            .collect();
        Footprint {
            b,
            x0,
            y0,
            w,
            h: (y1 - y0 + 1) as usize,
            index,
        }
    }
}

/// An object's segment as the refinement reads it, gathered once for the offset fit and
/// the Gram sums: each pixel's (stamp index, data, rms^2, counted) as
/// [`Prepared::segment_pixels`] gives them, where they lie, and the object's flux F_d.
pub struct Segment {
    pub pixels: Vec<(usize, f64, f64, bool)>,
    pub at: Footprint,
    pub flux: f64,
}

impl Segment {
    /// The segment of `obj`, prepared for `b` x `b` stamps.
    pub fn of(obj: &Prepared, b: usize) -> Segment {
        let pixels: Vec<(usize, f64, f64, bool)> = obj
            .segment_pixels()
            .map(|(q, d, r2, counted)| (q, d as f64, r2 as f64, counted))
            .collect();
        let index: Vec<usize> = pixels.iter().map(|p| p.0).collect();
        Segment {
            at: Footprint::new(b, &index),
            pixels,
            flux: obj.flux as f64,
        }
    }
}

/// The offset (dx, dy) of the object of `seg` from the centre of the stamps: the move of
/// `model` (a convolved `b` x `b` stamp, the best grid model) that minimises the object's
/// chi-square, with the fit's flux scale F_d / F and the unmoved model's variances:
/// Gauss-Newton steps from (0, 0), each coordinate kept within [`MAX_OFFSET`].
pub fn fit_offset(segment: &Segment, model: &[f32], b: usize) -> (f64, f64) {
    let (seg, at, flux) = (&segment.pixels, &segment.at, segment.flux);
    let f0: f64 = seg.iter().map(|p| model[p.0] as f64).sum();
    let s0 = flux / f0;
    // 1 / sigma of each counted pixel; 0 for the others.
    let inv_sigma: Vec<f64> = seg
        .iter()
        .map(|&(q, _, r2, counted)| {
            let v = s0 * model[q] as f64 + r2;
            if counted && v > 0.0 && v.is_finite() {
                1.0 / v.sqrt()
            } else {
                0.0
            }
        })
        .collect();
    let residuals = |delta: (f64, f64)| -> Vec<f64> {
        let moved = Resampler::new(b, delta).apply(model, at);
        let s = flux / moved.iter().sum::<f64>();
        seg.iter()
            .zip(&moved)
            .zip(&inv_sigma)
            .map(|((p, m), w)| (p.1 - s * m) * w)
            .collect()
    };
    let dot = |x: &[f64], y: &[f64]| x.iter().zip(y).map(|(a, b)| a * b).sum::<f64>();
    // The residuals of the last point `chi2` saw: the derivatives start from the same point.
    let last: RefCell<Option<(f64, f64, Vec<f64>)>> = RefCell::new(None);
    let chi2 = |u: &[f64]| {
        let r = residuals((u[0], u[1]));
        let c = dot(&r, &r);
        *last.borrow_mut() = Some((u[0], u[1], r));
        c
    };
    // Gauss-Newton: gradient 2 J^T r and Hessian 2 J^T J, J by forward differences.
    let derivatives = |u: &[f64]| -> GradHess {
        const H: f64 = 0.02;
        let r = match last.take() {
            Some((x, y, r)) if (x, y) == (u[0], u[1]) => r,
            _ => residuals((u[0], u[1])),
        };
        let jx: Vec<f64> = residuals((u[0] + H, u[1]))
            .iter()
            .zip(&r)
            .map(|(a, b)| (a - b) / H)
            .collect();
        let jy: Vec<f64> = residuals((u[0], u[1] + H))
            .iter()
            .zip(&r)
            .map(|(a, b)| (a - b) / H)
            .collect();
        let (a11, a12, a22) = (dot(&jx, &jx), dot(&jx, &jy), dot(&jy, &jy));
        (
            vec![2.0 * dot(&jx, &r), 2.0 * dot(&jy, &r)],
            vec![2.0 * a11, 2.0 * a12, 2.0 * a12, 2.0 * a22],
        )
    };
    let bound = [MAX_OFFSET; 2];
    let u = minimise(
        &chi2,
        &derivatives,
        vec![0.0, 0.0],
        (&bound.map(|b| -b), &bound),
        TOLERANCE,
    );
    (u[0], u[1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::cuts::Cut;
    use std::path::Path;

    const B: usize = 32;

    /// A round Gaussian of sigma 2 and peak 1 centred at (c + dx, c + dy), c the stamp
    /// centre: sampled at pixel centres (`sub` = 1) or averaged over each pixel (`sub` x `sub`
    /// midpoint samples), as the cube's models are.
    fn blob(dx: f64, dy: f64, sub: usize) -> Vec<f32> {
        let c = (B as f64 - 1.0) / 2.0;
        let g = |x: f64, y: f64| (-(x * x + y * y) / 8.0).exp();
        (0..B * B)
            .map(|p| {
                let (x, y) = ((p % B) as f64 - c - dx, (p / B) as f64 - c - dy);
                let mut acc = 0.0;
                for i in 0..sub {
                    for j in 0..sub {
                        let o = |k: usize| (k as f64 + 0.5) / sub as f64 - 0.5;
                        acc += g(x + o(j), y + o(i));
                    }
                }
                (acc / (sub * sub) as f64) as f32
            })
            .collect()
    }

    fn all() -> Vec<usize> {
        (0..B * B).collect()
    }

    /// By definition: pixel averages in, values at the moved pixel centres out.
    #[test]
    fn pixel_averages_become_values_at_the_moved_centres() {
        let m = blob(0.0, 0.0, 20);
        for (dx, dy) in [(0.0, 0.0), (0.3, -0.45), (-0.5, 0.5)] {
            let got = Resampler::new(B, (dx, dy)).apply(&m, &Footprint::new(B, &all()));
            let want = blob(dx, dy, 1);
            let err = got
                .iter()
                .zip(&want)
                .map(|(g, w)| (g - *w as f64).abs())
                .fold(0.0, f64::max);
            // Averages differ from centre values by 2 % of the peak at the centre.
            assert!(err < 2e-3, "move ({dx}, {dy}): error {err}");
        }
    }

    #[test]
    fn a_whole_pixel_move_displaces_the_unmoved_output() {
        let m = blob(0.0, 0.0, 20);
        let still = Resampler::new(B, (0.0, 0.0)).apply(&m, &Footprint::new(B, &all()));
        let moved = Resampler::new(B, (2.0, -1.0)).apply(&m, &Footprint::new(B, &all()));
        for y in 8..24 {
            for x in 8..24 {
                let (q, from) = (y * B + x, (y + 1) * B + x - 2);
                assert!((moved[q] - still[from]).abs() < 1e-12, "pixel ({x}, {y})");
            }
        }
        // Any subset of pixels, in any order, gets the values of the whole.
        let some = [500, 3, 1000, 77];
        let moved_some = Resampler::new(B, (0.3, 0.7)).apply(&m, &Footprint::new(B, &some));
        let moved_all = Resampler::new(B, (0.3, 0.7)).apply(&m, &Footprint::new(B, &all()));
        for (v, &q) in moved_some.iter().zip(&some) {
            assert_eq!(*v, moved_all[q]);
        }
    }

    /// The offset fitted to a noiseless object off the centre is its offset.
    #[test]
    fn fits_the_offset_of_an_object_off_centre() {
        for (dx, dy) in [(0.3, -0.45), (-0.5, 0.2), (0.0, 0.0)] {
            let data: Vec<f32> = blob(dx, dy, 1).iter().map(|v| 500.0 * v).collect();
            let cut = Cut {
                name: "00_0001".into(),
                size: B,
                obj: data,
                seg: (0..B * B)
                    .map(|p| {
                        let (x, y) = ((p % B) as f64 - 15.5, (p / B) as f64 - 15.5);
                        x.hypot(y) < 9.0
                    })
                    .collect(),
                rms: vec![1.0; B * B],
            };
            let obj = Prepared::new(&cut, B, Path::new("t.h5")).unwrap();
            let (fx, fy) = fit_offset(&Segment::of(&obj, B), &blob(0.0, 0.0, 20), B);
            assert!(
                (fx - dx).abs() < 0.01 && (fy - dy).abs() < 0.01,
                "({fx}, {fy}) for ({dx}, {dy})"
            );
        }
    }
}
