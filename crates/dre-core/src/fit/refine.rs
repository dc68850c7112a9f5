//! Off-grid parameters, their uncertainties and the fit's flags (`DRE_FLAGS`).
//!
//! The convolved models vary smoothly between grid points; the chi surface does not (at
//! high S/N it is far from quadratic over one grid step). So around the best grid point the
//! model image itself is interpolated, by 3-point Lagrange weights in each axis of more than
//! two values (a tensor product over the 3^d window, slid inward at the grid's ends; theta
//! wraps modulo 180 and stays on the grid when the best q is 1), and the object's
//! chi-square against that image, with the fit's flux scale s = F_d / F (F over the
//! segment), is minimised inside the window. The pixel variances are those of the best grid
//! model, held fixed: the chi-square is then a quadratic form in the window's models, whose
//! Gram matrix is summed over the pixels once, and each evaluation costs O(9^d) whatever the
//! object's size. Every model is first moved onto the object's sub-pixel offset, with the
//! pixel's response counted once ([`super::subpixel`]). One-sigma errors are the square
//! roots of the diagonal of 2 H^-1, H the chi-square's Gauss-Newton Hessian at the minimum,
//! scaled by the reduced chi-square where it exceeds 1.

use super::kernel::Prepared;
use super::newton::{minimise, positive_definite, GradHess};
use super::statistics::invert;
use super::subpixel::{fit_offset, Resampler, Segment};
use crate::conventions::{fold_angle, is_round};
use crate::model::cube::{Axis, Grid};

/// `DRE_FLAGS` bit: the best log r is the grid's first or last.
pub const FLAG_LOGR_EDGE: i32 = 1;
/// `DRE_FLAGS` bit: the best q is the grid's first or last (q = 1: a round fit).
pub const FLAG_Q_EDGE: i32 = 2;
/// `DRE_FLAGS` bit: the best n is the grid's first or last (cubes of more than one n).
pub const FLAG_N_EDGE: i32 = 4;
/// `DRE_FLAGS` bit: the interpolated chi-square is not convex at its minimum (or the object
/// has no usable model flux): the `_FIT` values are the grid's.
pub const FLAG_REFINE_FAILED: i32 = 8;
/// `DRE_FLAGS` bit: another local minimum, away from the best point's neighbourhood, within
/// a chi-square of 1 of the best.
pub const FLAG_SECOND_MINIMUM: i32 = 16;
/// `DRE_FLAGS` bit: fewer than [`MIN_PIXELS`] pixels counted in the chi-square.
pub const FLAG_FEW_PIXELS: i32 = 32;
/// `DRE_FLAGS` bit: the segment reaches the cut's border.
pub const FLAG_SEGMENT_AT_EDGE: i32 = 64;
/// Below this many counted pixels a fit is flagged [`FLAG_FEW_PIXELS`].
pub const MIN_PIXELS: usize = 30;

/// The bits of `DRE_FLAGS`, (value, name, meaning), for headers and documentation.
pub const DRE_FLAG_BITS: [(i32, &str, &str); 7] = [
    (FLAG_LOGR_EDGE, "LOGR_EDGE", "best log r on the grid's edge"),
    (
        FLAG_Q_EDGE,
        "Q_EDGE",
        "best q on the grid's edge (q = 1: round)",
    ),
    (FLAG_N_EDGE, "N_EDGE", "best n on the grid's edge"),
    (
        FLAG_REFINE_FAILED,
        "REFINE_FAILED",
        "chi2 not convex off the grid: grid values",
    ),
    (
        FLAG_SECOND_MINIMUM,
        "SECOND_MINIMUM",
        "another minimum within chi2 + 1",
    ),
    (
        FLAG_FEW_PIXELS,
        "FEW_PIXELS",
        "fewer than 30 pixels counted",
    ),
    (
        FLAG_SEGMENT_AT_EDGE,
        "SEGMENT_AT_EDGE",
        "segment reaches the cut's border",
    ),
];

/// Off-grid values, errors and flags of one object. Axes (n, q, theta, log r) as the cube.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Refined {
    /// (n, q, theta in degrees folded into (-90, 90], log10 R_e): the minimum of the
    /// interpolated chi-square on axes of more than two values, the grid's value elsewhere
    /// (and where the refinement failed); theta NaN at q = 1.
    pub values: [f64; 4],
    /// One-sigma statistical errors in the same units (the Summary adds
    /// [`crate::SYSTEMATIC_FLOOR`]); NaN on axes not refined or where the refinement failed.
    pub errors: [f64; 4],
    /// `DRE_FLAGS`.
    pub flags: i32,
    /// `NPIX`: the pixels counted in the chi-square.
    pub npix: usize,
    /// Whether the cube has more than one n (the Summary then has `INDEX_FIT`).
    pub multi_index: bool,
}

/// Period of the angle axis in steps when it covers 180 degrees (13 values -90..90 step 15
/// is 12), else None.
fn angle_period(a: &Axis) -> Option<usize> {
    let p = 180.0 / a.step.abs();
    let pi = p.round();
    (a.step != 0.0 && (p - pi).abs() < 1e-9 && pi >= 3.0 && a.count >= pi as usize)
        .then_some(pi as usize)
}

fn flat(shape: [usize; 4], i: [usize; 4]) -> usize {
    ((i[0] * shape[1] + i[1]) * shape[2] + i[2]) * shape[3] + i[3]
}

/// The 3^d models around the best grid point that the refinement interpolates between.
struct Window {
    best: [usize; 4],
    /// The axes refined: more than two values, theta not when the best q is 1.
    active: Vec<usize>,
    /// The window's middle on each axis: the best point, slid inward at a grid's end.
    centre: [usize; 4],
    period: [Option<usize>; 4],
}

impl Window {
    fn new(grid: &Grid, best: [usize; 4]) -> Window {
        let shape = grid.shape();
        let round = is_round(grid.axrat.value(best[1]));
        let period = [None, None, angle_period(&grid.posang), None];
        let active: Vec<usize> = (0..4)
            .filter(|&a| shape[a] > 2 && !(a == 2 && round))
            .collect();
        let mut centre = best;
        for &a in &active {
            if period[a].is_none() {
                centre[a] = best[a].clamp(1, shape[a] - 2);
            }
        }
        Window {
            best,
            active,
            centre,
            period,
        }
    }

    fn len(&self) -> usize {
        3usize.pow(self.active.len() as u32)
    }

    /// Flat index of window model `m`: base-3 digit j of `m` is the offset + 1 on active
    /// axis j.
    fn model(&self, grid: &Grid, m: usize) -> usize {
        let mut idx = self.centre;
        let mut code = m;
        for &a in &self.active {
            let i = self.centre[a] as isize + (code % 3) as isize - 1;
            code /= 3;
            idx[a] = match self.period[a] {
                Some(p) => i.rem_euclid(p as isize) as usize,
                None => i as usize,
            };
        }
        flat(grid.shape(), idx)
    }

    /// The best point's offset from the window's middle, in steps, per active axis.
    fn best_offset(&self) -> Vec<f64> {
        self.active
            .iter()
            .map(|&a| self.best[a] as f64 - self.centre[a] as f64)
            .collect()
    }

    /// The interpolation weights of the window's models at offset `u` (steps from the middle).
    fn weights(&self, u: &[f64], w: &mut [f64]) {
        let l: Vec<[f64; 3]> = u
            .iter()
            .map(|&x| [0.5 * x * (x - 1.0), 1.0 - x * x, 0.5 * x * (x + 1.0)])
            .collect();
        for (m, wm) in w.iter_mut().enumerate() {
            let mut code = m;
            let mut p = 1.0;
            for lj in &l {
                p *= lj[code % 3];
                code /= 3;
            }
            *wm = p;
        }
    }

    /// The weights at `u` and their first and second derivatives in `u`: `w` (n), `wa`
    /// (d x n, row a = dw/du_a) and `wab` (d x d x n).
    fn weight_derivatives(&self, u: &[f64]) -> Derivs {
        const CURV: [f64; 3] = [1.0, -2.0, 1.0];
        let d = u.len();
        let n = self.len();
        let l: Vec<[f64; 3]> = u
            .iter()
            .map(|&x| [0.5 * x * (x - 1.0), 1.0 - x * x, 0.5 * x * (x + 1.0)])
            .collect();
        let dl: Vec<[f64; 3]> = u.iter().map(|&x| [x - 0.5, -2.0 * x, x + 0.5]).collect();
        let mut out = Derivs {
            w: vec![0.0; n],
            wa: vec![0.0; d * n],
            wab: vec![0.0; d * d * n],
        };
        let mut c = [0usize; 4];
        for m in 0..n {
            let mut code = m;
            for cj in c.iter_mut().take(d) {
                *cj = code % 3;
                code /= 3;
            }
            // The product of the values over the axes other than those in `skip`.
            let others = |skip: &[usize]| {
                (0..d)
                    .filter(|j| !skip.contains(j))
                    .map(|j| l[j][c[j]])
                    .product::<f64>()
            };
            out.w[m] = others(&[]);
            for a in 0..d {
                out.wa[a * n + m] = dl[a][c[a]] * others(&[a]);
                out.wab[(a * d + a) * n + m] = CURV[c[a]] * others(&[a]);
                for b in 0..a {
                    let v = dl[a][c[a]] * dl[b][c[b]] * others(&[a, b]);
                    out.wab[(a * d + b) * n + m] = v;
                    out.wab[(b * d + a) * n + m] = v;
                }
            }
        }
        out
    }
}

/// Interpolation weights and their derivatives ([`Window::weight_derivatives`]).
struct Derivs {
    w: Vec<f64>,
    wa: Vec<f64>,
    wab: Vec<f64>,
}

fn dot(x: &[f64], y: &[f64]) -> f64 {
    x.iter().zip(y).map(|(a, b)| a * b).sum()
}

/// The flat indices of the convolved models [`refine`] interpolates between for the chi
/// cube `chi` of `grid` (the 3^d window around its minimum), in the order it takes them;
/// empty when `chi` is all NaN.
///
/// # Panics
/// If `chi.len() != grid.n_models()`.
pub fn refine_window(chi: &[f32], grid: &Grid) -> Vec<usize> {
    assert_eq!(chi.len(), grid.n_models());
    match super::params::nan_argmin(chi) {
        Some(k) => {
            let w = Window::new(grid, grid.unravel(k));
            (0..w.len()).map(|m| w.model(grid, m)).collect()
        }
        None => Vec::new(),
    }
}

/// The object's chi-square against a combination w of the window's models, as a quadratic
/// form: chi2(w) = c - 2 s w.b + s^2 w.G.w with s = F_d / w.F.
struct Gram {
    n: usize,
    g: Vec<f64>,
    b: Vec<f64>,
    c: f64,
    f: Vec<f64>,
    flux: f64,
}

impl Gram {
    /// Sums over the object's counted pixels with the variances of window model `best`
    /// (s_best m_best + rms^2); the model fluxes over its whole segment, as the fit's. Each
    /// model is read through `resample`.
    fn new(seg: &Segment, models: &[&[f32]], best: usize, resample: &Resampler) -> Gram {
        let n = models.len();
        let mut gram = Gram {
            n,
            g: vec![0.0; n * n],
            b: vec![0.0; n],
            c: 0.0,
            f: vec![0.0; n],
            flux: seg.flux,
        };
        let cols: Vec<Vec<f64>> = models.iter().map(|m| resample.apply(m, &seg.at)).collect();
        let fb: f64 = cols[best].iter().sum();
        let sb = gram.flux / fb;
        let mut x = vec![0.0; n];
        for (i, &(_, d, r2, counted)) in seg.pixels.iter().enumerate() {
            for (xj, col) in x.iter_mut().zip(&cols) {
                *xj = col[i];
            }
            for (fj, xj) in gram.f.iter_mut().zip(&x) {
                *fj += xj;
            }
            let v = sb * x[best] + r2;
            if !(counted && v > 0.0 && v.is_finite()) {
                continue;
            }
            let iv = 1.0 / v;
            gram.c += d * d * iv;
            for (j, row) in gram.g.chunks_exact_mut(n).enumerate() {
                let y = x[j] * iv;
                gram.b[j] += y * d;
                for (g, xk) in row[j..].iter_mut().zip(&x[j..]) {
                    *g += y * xk;
                }
            }
        }
        for j in 0..n {
            for k in 0..j {
                gram.g[j * n + k] = gram.g[k * n + j];
            }
        }
        gram
    }

    /// G x.
    fn times(&self, x: &[f64]) -> Vec<f64> {
        self.g.chunks_exact(self.n).map(|row| dot(row, x)).collect()
    }

    /// The chi-square's gradient and Hessian in `u` from the weights' derivatives `dw`
    /// (exact: chi2 = c - 2 flux B / F + flux^2 Q / F^2 with B = w.b, F = w.f, Q = w.G.w).
    fn derivatives(&self, dw: &Derivs, d: usize) -> GradHess {
        let n = self.n;
        let row = |a: usize| &dw.wa[a * n..(a + 1) * n];
        let pair = |a: usize, b: usize| &dw.wab[(a * d + b) * n..(a * d + b + 1) * n];
        let gw = self.times(&dw.w);
        let gwa: Vec<Vec<f64>> = (0..d).map(|a| self.times(row(a))).collect();
        let (f, b, q) = (dot(&dw.w, &self.f), dot(&dw.w, &self.b), dot(&dw.w, &gw));
        let fa: Vec<f64> = (0..d).map(|a| dot(row(a), &self.f)).collect();
        let ba: Vec<f64> = (0..d).map(|a| dot(row(a), &self.b)).collect();
        let qa: Vec<f64> = (0..d).map(|a| 2.0 * dot(row(a), &gw)).collect();
        let (phi, r) = (self.flux, 1.0 / f);
        let grad = (0..d)
            .map(|a| {
                let t1 = ba[a] * r - b * r * r * fa[a];
                let t2 = qa[a] * r * r - 2.0 * q * r.powi(3) * fa[a];
                -2.0 * phi * t1 + phi * phi * t2
            })
            .collect();
        let mut hess = vec![0.0; d * d];
        for a in 0..d {
            for c in 0..=a {
                let wab = pair(a, c);
                let (fab, bab) = (dot(wab, &self.f), dot(wab, &self.b));
                let qab = 2.0 * (dot(wab, &gw) + dot(row(a), &gwa[c]));
                let t1 = bab * r - (ba[a] * fa[c] + ba[c] * fa[a] + b * fab) * r * r
                    + 2.0 * b * fa[a] * fa[c] * r.powi(3);
                let t2 = qab * r * r - 2.0 * (qa[a] * fa[c] + qa[c] * fa[a] + q * fab) * r.powi(3)
                    + 6.0 * q * fa[a] * fa[c] * r.powi(4);
                let v = -2.0 * phi * t1 + phi * phi * t2;
                hess[a * d + c] = v;
                hess[c * d + a] = v;
            }
        }
        (grad, hess)
    }

    /// The Gauss-Newton Hessian 2 J^T V^-1 J of the chi-square, J the derivatives of the
    /// scaled model s w (s = flux / F): the curvature the data give, without the residual's
    /// (which here is mostly the interpolation's own error, not information).
    fn gauss_newton(&self, dw: &Derivs, d: usize) -> Vec<f64> {
        let n = self.n;
        let (s, f) = (self.flux / dot(&dw.w, &self.f), dot(&dw.w, &self.f));
        let jac: Vec<Vec<f64>> = (0..d)
            .map(|a| {
                let wa = &dw.wa[a * n..(a + 1) * n];
                let sa = -s * dot(wa, &self.f) / f;
                wa.iter().zip(&dw.w).map(|(x, w)| sa * w + s * x).collect()
            })
            .collect();
        let gj: Vec<Vec<f64>> = jac.iter().map(|j| self.times(j)).collect();
        let mut h = vec![0.0; d * d];
        for a in 0..d {
            for b in 0..d {
                h[b * d + a] = 2.0 * dot(&jac[b], &gj[a]);
            }
        }
        h
    }

    fn chi2(&self, w: &[f64]) -> f64 {
        let n = self.n;
        let fw: f64 = w.iter().zip(&self.f).map(|(a, b)| a * b).sum();
        let s = self.flux / fw;
        let wb: f64 = w.iter().zip(&self.b).map(|(a, b)| a * b).sum();
        let wgw: f64 = (0..n)
            .map(|j| w[j] * (0..n).map(|k| self.g[j * n + k] * w[k]).sum::<f64>())
            .sum();
        self.c - 2.0 * s * wb + s * s * wgw
    }
}

/// Least chi-square curvature per squared grid step that counts as a minimum (an error of
/// 1400 steps).
const MIN_CURVATURE: f64 = 1e-6;

/// Refines the minimum of `chi` (a cube of `grid`, flat in C order) of the object `obj`,
/// given the convolved models of its window ([`refine_window`], in that order). None when
/// `chi` is all NaN.
///
/// # Panics
/// If `chi.len() != grid.n_models()`, or `models` are not as many as the window's or not
/// stamps of the grid.
pub fn refine(chi: &[f32], grid: &Grid, obj: &Prepared, models: &[&[f32]]) -> Option<Refined> {
    assert_eq!(chi.len(), grid.n_models());
    let k = super::params::nan_argmin(chi)?;
    let best = grid.unravel(k);
    let npix = obj.n_pix();
    let shape = grid.shape();
    let axes = [&grid.index, &grid.axrat, &grid.posang, &grid.logh];
    let round = is_round(grid.axrat.value(best[1]));
    let win = Window::new(grid, best);
    assert_eq!(models.len(), win.len(), "models of the refinement window");
    assert!(models.iter().all(|m| m.len() == grid.stamp_len()));

    let mut flags = 0;
    let edge = |a: usize| shape[a] > 1 && (best[a] == 0 || best[a] == shape[a] - 1);
    if edge(3) {
        flags |= FLAG_LOGR_EDGE;
    }
    if edge(1) {
        flags |= FLAG_Q_EDGE;
    }
    if edge(0) {
        flags |= FLAG_N_EDGE;
    }
    if npix < MIN_PIXELS {
        flags |= FLAG_FEW_PIXELS;
    }
    if obj.seg_at_edge {
        flags |= FLAG_SEGMENT_AT_EDGE;
    }
    if second_minimum(chi, grid, best, npix, &win.period) {
        flags |= FLAG_SECOND_MINIMUM;
    }

    let mut values = [0.0; 4];
    for a in 0..4 {
        values[a] = axes[a].value(best[a]);
    }
    values[2] = if round {
        f64::NAN
    } else {
        fold_angle(values[2])
    };
    let mut errors = [f64::NAN; 4];

    let d = win.active.len();
    if d > 0 {
        let start = win.best_offset();
        let best_model = start
            .iter()
            .rev()
            .fold(0, |m, &o| 3 * m + (o + 1.0) as usize);
        let b = grid.boxsize;
        let seg = Segment::of(obj, b);
        let resample = Resampler::new(b, fit_offset(&seg, models[best_model], b));
        let gram = Gram::new(&seg, models, best_model, &resample);
        let chi2 = |u: &[f64]| {
            let mut w = vec![0.0; gram.n];
            win.weights(u, &mut w);
            gram.chi2(&w)
        };
        let derivatives = |u: &[f64]| gram.derivatives(&win.weight_derivatives(u), d);
        let (lo, hi) = (vec![-1.0; d], vec![1.0; d]);
        let u = minimise(&chi2, &derivatives, start, (&lo, &hi), 1e-9);
        let dw = win.weight_derivatives(&u);
        let (_, h) = gram.derivatives(&dw, d);
        let low = chi2(&u);
        // A curvature within the differences' rounding (chi2 = c - ..., c up to (S/N)^2)
        // is no curvature: the data do not constrain that axis.
        let floor = MIN_CURVATURE + 1e-8 * gram.c.abs();
        let curved = (0..d).all(|j| h[j * d + j] > floor);
        let hgn = gram.gauss_newton(&dw, d);
        let ok = curved && positive_definite(&h, d) && low.is_finite();
        match invert(&hgn, d).filter(|_| ok && positive_definite(&hgn, d)) {
            Some(inv) => {
                let dof = (npix as f64 - d as f64).max(1.0);
                let scale = (low / dof).max(1.0);
                for (j, &a) in win.active.iter().enumerate() {
                    let v = axes[a].value(win.centre[a]) + u[j] * axes[a].step;
                    values[a] = if a == 2 { fold_angle(v) } else { v };
                    errors[a] = (2.0 * inv[j * d + j] * scale).sqrt() * axes[a].step.abs();
                }
            }
            None => flags |= FLAG_REFINE_FAILED,
        }
    }
    Some(Refined {
        values,
        errors,
        flags,
        npix,
        multi_index: grid.index.count > 1,
    })
}

/// Whether a local minimum of the cube other than the best lies outside the best point's
/// 3^4 neighbourhood within a chi-square of 1 (`npix (chi - chi_min) < 1`). Theta counts
/// for nothing at q = 1 (every angle there is one model).
fn second_minimum(
    chi: &[f32],
    grid: &Grid,
    best: [usize; 4],
    npix: usize,
    period: &[Option<usize>; 4],
) -> bool {
    let shape = grid.shape();
    let flat = |i: [usize; 4]| ((i[0] * shape[1] + i[1]) * shape[2] + i[2]) * shape[3] + i[3];
    let chi_min = chi[flat(best)] as f64;
    let limit = chi_min + 1.0 / npix.max(1) as f64;
    let round = |i: usize| is_round(grid.axrat.value(i));
    let dist = |a: usize, i: usize, j: usize| -> usize {
        let d = i.abs_diff(j);
        match period[a] {
            Some(p) => (d % p).min(p - d % p),
            None => d,
        }
    };
    for (k, &c) in chi.iter().enumerate() {
        if c.is_nan() || c as f64 >= limit {
            continue;
        }
        let p = grid.unravel(k);
        if round(p[1]) && p[2] != 0 {
            continue;
        }
        let skip_theta = round(p[1]) || round(best[1]);
        let far = (0..4).any(|a| !(a == 2 && skip_theta) && dist(a, p[a], best[a]) > 1);
        if !far {
            continue;
        }
        // A local minimum: no neighbour lower.
        let mut lowest = true;
        'n: for m in 0..81usize {
            let mut q = p;
            let mut code = m;
            for a in 0..4 {
                let o = (code % 3) as isize - 1;
                code /= 3;
                let j = p[a] as isize + o;
                q[a] = match period[a] {
                    Some(per) => j.rem_euclid(per as isize) as usize,
                    None if j < 0 || j >= shape[a] as isize => continue 'n,
                    None => j as usize,
                };
            }
            if chi[flat(q)] < c {
                lowest = false;
                break;
            }
        }
        if lowest {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fit::kernel::fit_batch;
    use crate::io::cuts::Cut;
    use crate::model::cube::{ModelCube, Twins};
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal, Uniform};
    use std::path::Path;

    const B: usize = 24;

    /// Elliptical Gaussians (sigma = 10^logr along the major axis) on a small grid: smooth
    /// in every parameter, as convolved Sérsic models are.
    fn gaussian(q: f64, theta: f64, logr: f64) -> Vec<f32> {
        let (s, c) = theta.to_radians().sin_cos();
        let sig = 10f64.powf(logr);
        let h = (B as f64 - 1.0) / 2.0;
        let mut m: Vec<f64> = (0..B * B)
            .map(|p| {
                let (x, y) = ((p % B) as f64 - h, (p / B) as f64 - h);
                let (u, v) = (x * c + y * s, -x * s + y * c);
                (-0.5 * (u * u + v * v / (q * q)) / (sig * sig)).exp()
            })
            .collect();
        let sum: f64 = m.iter().sum();
        m.iter_mut().for_each(|v| *v /= sum);
        m.into_iter().map(|v| v as f32).collect()
    }

    fn cube() -> ModelCube {
        let grid = Grid {
            index: Axis::new(4.0, 0.0, 1),
            axrat: Axis::new(0.3, 0.1, 8),
            posang: Axis::new(-90.0, 15.0, 13),
            logh: Axis::new(0.1, 0.1, 7),
            boxsize: B,
        };
        let data = (0..grid.n_models())
            .flat_map(|k| {
                let [_, q, t, r] = grid.unravel(k);
                gaussian(
                    grid.axrat.value(q),
                    grid.posang.value(t),
                    grid.logh.value(r),
                )
            })
            .collect();
        ModelCube { grid, data }
    }

    /// A cut of `flux` x the Gaussian (q, theta, logr), its segment the pixels within
    /// `radius` of the centre, rms 1, noise drawn from the fit's variance (flux m + 1).
    fn cut(
        truth: [f64; 3],
        flux: f64,
        radius: f64,
        rng: Option<&mut rand_chacha::ChaCha8Rng>,
    ) -> Cut {
        let m = gaussian(truth[0], truth[1], truth[2]);
        let h = (B as f64 - 1.0) / 2.0;
        let mut obj: Vec<f32> = m.iter().map(|&v| (flux * v as f64) as f32).collect();
        if let Some(rng) = rng {
            for o in obj.iter_mut() {
                let sd = (*o as f64 + 1.0).sqrt();
                *o += (Normal::new(0.0, sd).unwrap().sample(rng)) as f32;
            }
        }
        let seg = (0..B * B)
            .map(|p| ((p % B) as f64 - h).hypot((p / B) as f64 - h) <= radius)
            .collect();
        Cut {
            name: "01_0001".into(),
            size: B,
            obj,
            seg,
            rms: vec![1.0; B * B],
        }
    }

    fn run(cube: &ModelCube, cut: &Cut) -> (Vec<f32>, Refined) {
        let obj = Prepared::new(cut, B, Path::new("test")).unwrap();
        let chi = fit_batch(&cube.data, B, std::slice::from_ref(&obj), &Twins::of(cube))
            .pop()
            .unwrap();
        let models: Vec<&[f32]> = refine_window(&chi, &cube.grid)
            .iter()
            .map(|&k| cube.model(k))
            .collect();
        let r = refine(&chi, &cube.grid, &obj, &models).unwrap();
        (chi, r)
    }

    #[test]
    fn recovers_an_off_grid_galaxy_from_the_interpolated_models() {
        let c = cube();
        for truth in [[0.53, 37.0, 0.47], [0.36, -52.0, 0.62], [0.66, 84.0, 0.34]] {
            let (chi, r) = run(&c, &cut(truth, 1e4, 10.0, None));
            let grid_at = c.grid.unravel(nan_argmin_of(&chi));
            assert_eq!(r.flags, 0, "{truth:?} {r:?}");
            let dq = (r.values[1] - truth[0]).abs();
            let dt = crate::conventions::angle_difference(r.values[2], truth[1]).abs();
            let dr = (r.values[3] - truth[2]).abs();
            assert!(dq < 0.008 && dt < 0.5 && dr < 0.004, "{truth:?} {r:?}");
            // Far better than the grid's values.
            let gq = (c.grid.axrat.value(grid_at[1]) - truth[0]).abs();
            let gr = (c.grid.logh.value(grid_at[3]) - truth[2]).abs();
            assert!(
                dq < gq / 5.0 && dr < gr / 5.0,
                "{truth:?} {r:?} {grid_at:?}"
            );
            assert!(r.errors.iter().skip(1).all(|e| *e > 0.0), "{r:?}");
        }
    }

    fn nan_argmin_of(chi: &[f32]) -> usize {
        crate::fit::params::nan_argmin(chi).unwrap()
    }

    /// The errors match the scatter over noise realisations: pulls of unit width.
    #[test]
    fn errors_match_the_scatter_of_noisy_realisations() {
        let c = cube();
        let truth = [0.46, 22.0, 0.52];
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let mut pulls = [vec![], vec![], vec![]];
        for _ in 0..300 {
            let (_, r) = run(&c, &cut(truth, 2000.0, 10.0, Some(&mut rng)));
            assert_eq!(r.flags & FLAG_REFINE_FAILED, 0);
            pulls[0].push((r.values[1] - truth[0]) / r.errors[1]);
            pulls[1]
                .push(crate::conventions::angle_difference(r.values[2], truth[1]) / r.errors[2]);
            pulls[2].push((r.values[3] - truth[2]) / r.errors[3]);
        }
        // The interpolated images' own error shifts the means (noise-free: theta 22.47 for
        // 22, error 0.9 degrees) and makes theta's error conservative on these narrow
        // Gaussians (pulls of width 0.68); q and log r are calibrated.
        for (p, lo, hi) in [
            (&pulls[0], 0.85, 1.25),
            (&pulls[1], 0.5, 1.2),
            (&pulls[2], 0.85, 1.25),
        ] {
            let n = p.len() as f64;
            let mean = p.iter().sum::<f64>() / n;
            let sd = (p.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
            assert!(
                mean.abs() < 0.5 && sd > lo && sd < hi,
                "mean {mean} sd {sd}"
            );
        }
    }

    /// The exact gradient and Hessians against central differences of the chi-square and
    /// of the scaled model, on a random positive definite quadratic form, in 1 to 4 axes.
    #[test]
    fn exact_derivatives_match_finite_differences() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let mut uniform = |lo: f64, hi: f64| Uniform::new(lo, hi).unwrap().sample(&mut rng);
        for d in 1..=4 {
            let win = Window {
                best: [0; 4],
                active: (0..d).collect(),
                centre: [1; 4],
                period: [None; 4],
            };
            let n = win.len();
            let a: Vec<f64> = (0..n * n).map(|_| uniform(-1.0, 1.0)).collect();
            let mut g = vec![0.0; n * n];
            for j in 0..n {
                for k in 0..n {
                    g[j * n + k] = (0..n).map(|i| a[i * n + j] * a[i * n + k]).sum::<f64>()
                        + if j == k { 1.0 } else { 0.0 };
                }
            }
            let gram = Gram {
                n,
                g,
                b: (0..n).map(|_| uniform(0.5, 1.5)).collect(),
                c: 40.0,
                f: (0..n).map(|_| uniform(0.8, 1.2)).collect(),
                flux: 2.0,
            };
            let u: Vec<f64> = (0..d).map(|_| uniform(-0.6, 0.6)).collect();
            let chi2 = |u: &[f64]| {
                let mut w = vec![0.0; n];
                win.weights(u, &mut w);
                gram.chi2(&w)
            };
            let at = |moves: &[(usize, f64)]| {
                let mut x = u.clone();
                for &(a, dx) in moves {
                    x[a] += dx;
                }
                x
            };
            let h = 1e-4;
            let (grad, hess) = gram.derivatives(&win.weight_derivatives(&u), d);
            let scale = hess.iter().fold(1.0f64, |m, v| m.max(v.abs()));
            for a in 0..d {
                let fd = (chi2(&at(&[(a, h)])) - chi2(&at(&[(a, -h)]))) / (2.0 * h);
                assert!(
                    (grad[a] - fd).abs() < 1e-5 * scale,
                    "d {d} grad {a}: {} vs {fd}",
                    grad[a]
                );
                for b in 0..d {
                    let fd = (chi2(&at(&[(a, h), (b, h)]))
                        - chi2(&at(&[(a, h), (b, -h)]))
                        - chi2(&at(&[(a, -h), (b, h)]))
                        + chi2(&at(&[(a, -h), (b, -h)])))
                        / (4.0 * h * h);
                    let got = hess[a * d + b];
                    assert!(
                        (got - fd).abs() < 1e-4 * scale,
                        "d {d} hess {a} {b}: {got} vs {fd}"
                    );
                }
            }
            // Gauss-Newton: 2 J^T G J with J the differences of the scaled model s w.
            let z = |u: &[f64]| {
                let mut w = vec![0.0; n];
                win.weights(u, &mut w);
                let s = gram.flux / dot(&w, &gram.f);
                w.iter().map(|x| s * x).collect::<Vec<f64>>()
            };
            let jac: Vec<Vec<f64>> = (0..d)
                .map(|a| {
                    let (p, m) = (z(&at(&[(a, h)])), z(&at(&[(a, -h)])));
                    p.iter().zip(&m).map(|(x, y)| (x - y) / (2.0 * h)).collect()
                })
                .collect();
            let hgn = gram.gauss_newton(&win.weight_derivatives(&u), d);
            for a in 0..d {
                for b in 0..d {
                    let want = 2.0 * dot(&jac[a], &gram.times(&jac[b]));
                    let got = hgn[a * d + b];
                    assert!(
                        (got - want).abs() < 1e-6 * want.abs().max(1.0),
                        "{got} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn theta_wraps_through_plus_minus_90() {
        let c = cube();
        for t in [85.0, -86.0] {
            let (_, r) = run(&c, &cut([0.4, t, 0.5], 1e4, 10.0, None));
            assert!(
                crate::conventions::angle_difference(r.values[2], t).abs() < 0.3,
                "{t} {r:?}"
            );
        }
    }

    #[test]
    fn flags_of_the_grid_and_the_segment() {
        let c = cube();
        // Larger than the largest radius: on the edge, the refined value at most the last.
        let (_, r) = run(&c, &cut([0.5, 10.0, 0.95], 1e4, 11.0, None));
        assert_eq!(r.flags & FLAG_LOGR_EDGE, FLAG_LOGR_EDGE, "{r:?}");
        assert!(r.values[3] <= 0.7 + 1e-9);
        // Round: q on the edge, theta undefined.
        let (_, r) = run(&c, &cut([1.0, 0.0, 0.5], 1e4, 10.0, None));
        assert_eq!(r.flags, FLAG_Q_EDGE, "{r:?}");
        assert!(r.values[2].is_nan() && r.errors[2].is_nan());
        // A segment of one pixel: every model fits it exactly (chi 0), nothing to refine.
        let mut one = cut([0.5, 10.0, 0.5], 1e4, 5.0, None);
        one.seg = (0..B * B).map(|p| p == 11 * B + 11).collect();
        let (chi, r) = run(&c, &one);
        assert!(chi.iter().all(|&v| v.abs() < 1e-6), "{chi:?}");
        assert_eq!(r.npix, 1);
        assert_ne!(r.flags & FLAG_REFINE_FAILED, 0, "{r:?}");
        assert_ne!(r.flags & FLAG_FEW_PIXELS, 0, "{r:?}");
        assert!(r.errors.iter().all(|e| e.is_nan()));
        // A segment reaching the border.
        let (_, r) = run(&c, &cut([0.5, 10.0, 0.5], 1e4, 20.0, None));
        assert_eq!(r.flags, FLAG_SEGMENT_AT_EDGE, "{r:?}");
        assert!(refine(
            &vec![f32::NAN; c.grid.n_models()],
            &c.grid,
            &Prepared::new(&cut([0.5, 10.0, 0.5], 1e4, 5.0, None), B, Path::new("t")).unwrap(),
            &[]
        )
        .is_none());
    }

    #[test]
    fn a_second_minimum_within_one_of_chi_square() {
        // Two crossed galaxies of one size: the fits along either are equally good.
        let c = cube();
        let a = cut([0.3, 0.0, 0.5], 1e3, 11.0, None);
        let b = cut([0.3, 90.0, 0.5], 1e3, 11.0, None);
        let mut both = a.clone();
        for (o, p) in both.obj.iter_mut().zip(&b.obj) {
            *o += p;
        }
        let (chi, r) = run(&c, &both);
        let best = c.grid.unravel(nan_argmin_of(&chi));
        assert_eq!(
            r.flags & FLAG_SECOND_MINIMUM,
            FLAG_SECOND_MINIMUM,
            "{best:?} {r:?}"
        );
        // One galaxy alone has no second minimum.
        assert_eq!(run(&c, &a).1.flags & FLAG_SECOND_MINIMUM, 0);
    }
}
