//! The parameters of one object's fit (SPEC 5): the grid point of the minimum chi, and the
//! radius estimates derived from the whole chi cube.

use crate::error::{Error, Result};
use crate::fit::backend::Fitter;
use crate::fit::kernel::Prepared;
use crate::fit::refine::{refine, refine_window, Refined};
use crate::model::cube::Grid;
use rayon::prelude::*;
use std::borrow::Cow;
use std::collections::HashMap;

/// One Summary row's fitted values (the catalogue's columns are joined later).
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    /// (n, q, theta, logr) indices of the first minimum in C order.
    pub model_idx: [usize; 4],
    /// `CHI`: the minimum chi.
    pub chi: f32,
    /// `CHI_STD`: standard deviation of the whole chi cube.
    pub chi_std: f32,
    /// `LOGR_CHI`: log10 of the 1/chi-weighted mean radius over the cube (r in pixels).
    pub logr_chi: f32,
    /// `LOGR_VAR`: log10 of the 1/chi-weighted variance of r around the best radius.
    pub logr_var: f32,
    /// `LOGR_CHI_VAR`: log10 of the 1/chi-weighted variance of r around the weighted radius.
    pub logr_chi_var: f32,
    /// `LOGR_PARAB`: vertex of the parabola through ln(chi) at the three radii around the
    /// minimum (NaN when outside the grid or opening downwards; `LOGR` when outside the window).
    pub logr_parab: f64,
    /// `LOGR_STD`: the parabola's width 1/sqrt(2a), in dex (NaN where `logr_parab` is not
    /// the vertex).
    pub logr_std: f64,
    /// `INDEX`: Sérsic index n of the best model.
    pub index: f64,
    /// `LOGR`: log10 R_e in pixels of the best model.
    pub logr: f32,
    /// `AX_RATIO`: q = b/a of the best model.
    pub ax_ratio: f32,
    /// `ANGLE`: theta in degrees (THETA_IMAGE) of the best model.
    pub angle: f32,
    /// The off-grid values, their errors, `NPIX` and `DRE_FLAGS` ([`refine`]); None where
    /// the object's pixels are not known (parameters recomputed from a chi file alone).
    pub refined: Option<Refined>,
}

/// Flat position of the first minimum ignoring NaN (numpy's `nanargmin`); None if all NaN.
pub fn nan_argmin(chi: &[f32]) -> Option<usize> {
    let mut best: Option<(usize, f32)> = None;
    for (k, &c) in chi.iter().enumerate() {
        if !c.is_nan() && best.is_none_or(|(_, b)| c < b) {
            best = Some((k, c));
        }
    }
    best.map(|(k, _)| k)
}

/// Parameters of a chi cube that is not all NaN (None otherwise: a failed object).
///
/// # Panics
///
/// If `chi` is not a cube of `grid` (`chi.len() != grid.n_models()`, e.g. a chi file read
/// with [`crate::read_chi`] checked against another cube's grid).
pub fn parameters(chi: &[f32], grid: &Grid) -> Option<Params> {
    let k = nan_argmin(chi)?;
    let idx = grid.unravel(k);
    let nr = grid.logh.count;
    // The original holds its axes as float32.
    let log_r: Vec<f64> = grid
        .logh
        .values()
        .iter()
        .map(|&v| v as f32 as f64)
        .collect();
    let r: Vec<f64> = log_r.iter().map(|&l| 10f64.powf(l)).collect();
    let r_min = r[idx[3]];

    let n = chi.len() as f64;
    let mean = chi.iter().map(|&c| c as f64).sum::<f64>() / n;
    let var = chi.iter().map(|&c| (c as f64 - mean).powi(2)).sum::<f64>() / n;

    // 1/chi-weighted radius and spreads; sums over the whole cube, NaN propagates as in np.sum.
    let weighted = |f: &dyn Fn(f64) -> f64| -> f64 {
        let (mut num, mut den) = (0f64, 0f64);
        for (p, &c) in chi.iter().enumerate() {
            let w = 1.0 / c as f64;
            num += f(r[p % nr]) * w;
            den += w;
        }
        num / den
    };
    let r_chi = weighted(&|r| r);
    let r_var = weighted(&|r| (r - r_min).powi(2));
    let r_chi_var = weighted(&|r| (r - r_chi).powi(2));

    let (logr_parab, logr_std) = parabola_logr(chi, grid, idx, &log_r);
    Some(Params {
        model_idx: idx,
        chi: chi[k],
        chi_std: var.sqrt() as f32,
        logr_chi: r_chi.log10() as f32,
        logr_var: r_var.log10() as f32,
        logr_chi_var: r_chi_var.log10() as f32,
        logr_parab,
        logr_std,
        index: grid.index.value(idx[0]),
        logr: log_r[idx[3]] as f32,
        ax_ratio: grid.axrat.value(idx[1]) as f32,
        angle: grid.posang.value(idx[2]) as f32,
        refined: None,
    })
}

/// [`parameters`] with the off-grid values, errors (with [`SYSTEMATIC_FLOOR`]) and flags of
/// the object `obj` whose chi cube `chi` is, given the convolved models of its refinement
/// window ([`crate::refine_window`], in that order).
///
/// # Panics
///
/// As [`parameters`] and [`refine`].
pub fn fit_parameters(
    chi: &[f32],
    grid: &Grid,
    obj: &Prepared,
    models: &[&[f32]],
) -> Option<Params> {
    let mut p = parameters(chi, grid)?;
    p.refined = refine(chi, grid, obj, models).map(|mut r| {
        for (e, f) in r.errors.iter_mut().zip(SYSTEMATIC_FLOOR) {
            *e = e.hypot(f);
        }
        r
    });
    Some(p)
}

/// Added in quadrature to the statistical errors of [`refine`] in the Summary's `_FIT_ERR`
/// (n, q, theta in degrees, log r): the scatter that simulated tiles show beyond the
/// statistical errors at high S/N, so that the pulls have unit width there (README,
/// "Summary columns"). Log r's is mostly the bias SExtractor's background gives sizes,
/// which no refinement removes.
pub const SYSTEMATIC_FLOOR: [f64; 4] = [0.0, 0.005, 0.0, 0.010];

/// [`fit_parameters`] of a batch of objects and their chi cubes against the models of
/// `fitter`: each window's models are fetched once (a GPU copies them back), then the
/// objects are refined in parallel. None for an object whose chi cube is all NaN.
pub fn batch_parameters(
    fitter: &dyn Fitter,
    chis: &[Vec<f32>],
    objects: &[Prepared],
) -> Result<Vec<Option<Params>>> {
    let grid = fitter.grid();
    let windows: Vec<Vec<usize>> = chis.iter().map(|c| refine_window(c, grid)).collect();
    let mut models: HashMap<usize, Cow<'_, [f32]>> = HashMap::new();
    for &k in windows.iter().flatten() {
        if let std::collections::hash_map::Entry::Vacant(e) = models.entry(k) {
            let m = fitter.model(k)?;
            if m.len() != grid.stamp_len() {
                return Err(Error::Invalid(format!(
                    "{}: model {k} has {} pixels, not {}",
                    fitter.describe(),
                    m.len(),
                    grid.stamp_len()
                )));
            }
            e.insert(m);
        }
    }
    Ok(chis
        .par_iter()
        .zip(objects)
        .zip(&windows)
        .map(|((chi, obj), w)| {
            let stamps: Vec<&[f32]> = w.iter().map(|k| &*models[k]).collect();
            fit_parameters(chi, grid, obj, &stamps)
        })
        .collect())
}

/// A parabola y = a x^2 + b x + c through ln(chi) at the three log-radius samples around the
/// minimum (the window slid inward at the grid's ends), other axes fixed; the axis may
/// ascend or descend. Returns
/// (LOGR_PARAB, LOGR_STD): NaN both if the vertex is outside the grid or a < 0; (LOGR, NaN)
/// if it is outside the window; else (vertex, 1/sqrt(2a)).
fn parabola_logr(chi: &[f32], grid: &Grid, idx: [usize; 4], log_r: &[f64]) -> (f64, f64) {
    let nr = log_r.len();
    if nr < 3 {
        return (f64::NAN, f64::NAN);
    }
    let i = idx[3].clamp(1, nr - 2);
    let base = ((idx[0] * grid.axrat.count + idx[1]) * grid.posang.count + idx[2]) * nr;
    let x = [log_r[i - 1], log_r[i], log_r[i + 1]];
    let y = [0, 1, 2].map(|j| (chi[base + i - 1 + j] as f64).ln());
    let s01 = (y[1] - y[0]) / (x[1] - x[0]);
    let s12 = (y[2] - y[1]) / (x[2] - x[1]);
    let a = (s12 - s01) / (x[2] - x[0]);
    let b = s01 - a * (x[0] + x[1]);
    let vertex = -b / (2.0 * a);
    // By value, not by position: a descending radius axis (negative DLOGH) has its
    // smallest radius last. For an ascending axis these are the original's comparisons.
    let lo_hi = |u: f64, v: f64| (u.min(v), u.max(v));
    let (grid_lo, grid_hi) = lo_hi(log_r[0], log_r[nr - 1]);
    let (win_lo, win_hi) = lo_hi(x[0], x[2]);
    let outside_grid = vertex < grid_lo || vertex > grid_hi;
    let outside_window = vertex < win_lo || vertex > win_hi;
    if outside_grid || a < 0.0 {
        (f64::NAN, f64::NAN)
    } else if outside_window {
        (log_r[idx[3]], f64::NAN)
    } else {
        (vertex, 1.0 / (2.0 * a).sqrt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::cube::Axis;

    fn grid(nr: usize) -> Grid {
        Grid {
            index: Axis::new(4.0, 0.0, 1),
            axrat: Axis::new(0.5, 0.5, 2),
            posang: Axis::new(-90.0, 90.0, 3),
            logh: Axis::new(0.0, 0.25, nr),
            boxsize: 8,
        }
    }

    #[test]
    fn first_minimum_wins_ties() {
        assert_eq!(nan_argmin(&[f32::NAN, 2.0, 1.0, 1.0]), Some(2));
        assert_eq!(nan_argmin(&[f32::NAN, f32::NAN]), None);
    }

    #[test]
    fn parabola_recovers_the_vertex_of_a_lognormal_chi() {
        let g = grid(7);
        // ln chi = 3 (x - 0.8)^2 + 1 along log r at (q, theta) = (1, 2), worse elsewhere.
        let chi: Vec<f32> = (0..g.n_models())
            .map(|k| {
                let [_, q, t, r] = g.unravel(k);
                let x = g.logh.value(r) as f32 as f64;
                let base = if (q, t) == (1, 2) { 1.0 } else { 2.0 };
                ((3.0 * (x - 0.8).powi(2)) + base).exp() as f32
            })
            .collect();
        let p = parameters(&chi, &g).unwrap();
        assert_eq!(p.model_idx, [0, 1, 2, 3]);
        assert_eq!(p.logr, 0.75);
        assert!((p.logr_parab - 0.8).abs() < 1e-5, "{}", p.logr_parab);
        assert!((p.logr_std - 1.0 / 6f64.sqrt()).abs() < 1e-4);
        assert_eq!((p.ax_ratio, p.angle, p.index), (1.0, 90.0, 4.0));
    }

    #[test]
    fn parabola_border_cases() {
        let g = grid(4);
        let mut chi = vec![10.0f32; g.n_models()];
        // Decreasing to the last radius: vertex beyond the grid -> NaN, NaN.
        for (r, c) in chi.iter_mut().take(4).enumerate() {
            *c = (5.0 - r as f32).exp();
        }
        let p = parameters(&chi, &g).unwrap();
        assert!(p.logr_parab.is_nan() && p.logr_std.is_nan());
        // A concave window (a < 0) -> NaN, NaN.
        let chi2: Vec<f32> = chi
            .iter()
            .enumerate()
            .map(|(k, _)| {
                if k < 4 {
                    [3.0f32, 1.0, 0.9, 2.0][k]
                } else {
                    10.0
                }
            })
            .collect();
        let p = parameters(&chi2, &g).unwrap();
        assert_eq!(p.model_idx[3], 2);
        assert!(p.logr_parab.is_finite());
        assert!(p.logr_std.is_finite());
    }

    /// A negative DLOGH is the same grid read backwards: the same estimates, where the
    /// original's position-based test made LOGR_PARAB NaN for every object.
    #[test]
    fn a_descending_radius_axis_gives_the_same_estimates() {
        let up = grid(7);
        let mut down = up.clone();
        down.logh = Axis::new(1.5, -0.25, 7);
        let chi_of = |g: &Grid| -> Vec<f32> {
            (0..g.n_models())
                .map(|k| {
                    let [_, q, t, r] = g.unravel(k);
                    let x = g.logh.value(r) as f32 as f64;
                    let base = if (q, t) == (1, 2) { 1.0 } else { 2.0 };
                    ((3.0 * (x - 0.8).powi(2)) + base).exp() as f32
                })
                .collect()
        };
        let (a, b) = (
            parameters(&chi_of(&up), &up).unwrap(),
            parameters(&chi_of(&down), &down).unwrap(),
        );
        assert_eq!(b.model_idx, [0, 1, 2, 3]);
        assert_eq!((a.logr, b.logr), (0.75, 0.75));
        assert!((b.logr_parab - 0.8).abs() < 1e-5, "{}", b.logr_parab);
        assert!((a.logr_parab - b.logr_parab).abs() < 1e-12);
        assert!((a.logr_std - b.logr_std).abs() < 1e-12);
        assert_eq!(
            (a.chi, a.chi_std, a.logr_chi),
            (b.chi, b.chi_std, b.logr_chi)
        );
        // The grid's edge holds by value too: a vertex beyond the largest radius (first on
        // this axis) is NaN, NaN.
        let mut chi = vec![1e6f32; down.n_models()];
        for (r, c) in chi.iter_mut().take(7).enumerate() {
            let x = down.logh.value(r);
            *c = ((x - 2.0).powi(2) + 1.0).exp() as f32;
        }
        let p = parameters(&chi, &down).unwrap();
        assert_eq!(p.model_idx[3], 0);
        assert!(p.logr_parab.is_nan() && p.logr_std.is_nan());
    }

    #[test]
    fn weighted_radius_of_a_flat_cube_is_the_mean_radius() {
        let g = grid(3);
        let chi = vec![2.0f32; g.n_models()];
        let p = parameters(&chi, &g).unwrap();
        let mean_r = (1.0 + 10f64.powf(0.25) + 10f64.powf(0.5)) / 3.0;
        assert!((p.logr_chi as f64 - mean_r.log10()).abs() < 1e-6);
        assert_eq!(p.chi_std, 0.0);
        assert_eq!(p.model_idx, [0, 0, 0, 0]);
    }
}
