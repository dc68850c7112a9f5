//! Off-grid parameters, their uncertainties and the fit's flags (`DRE_FLAGS`).
//!
//! Around the best grid point, a quadratic in every axis with more than two values at once
//! (all cross terms) is fitted by least squares to the chi-square on the 3^d neighbourhood
//! and minimised: the window is slid inward at the grid's ends, theta wraps modulo 180 and
//! is left out (undefined) when the best q is 1. The object's chi-square is the sum over
//! its segment, `CHI x NPIX`; one-sigma errors are the square roots of the diagonal of
//! 2 H^-1 (H the chi-square's Hessian), scaled by the reduced chi-square where it exceeds 1.

use super::statistics::invert;
use crate::conventions::{fold_angle, is_round};
use crate::model::cube::{Axis, Grid};

/// `DRE_FLAGS` bit: the best log r is the grid's first or last.
pub const FLAG_LOGR_EDGE: i32 = 1;
/// `DRE_FLAGS` bit: the best q is the grid's first or last (q = 1: a round fit).
pub const FLAG_Q_EDGE: i32 = 2;
/// `DRE_FLAGS` bit: the best n is the grid's first or last (cubes of more than one n).
pub const FLAG_N_EDGE: i32 = 4;
/// `DRE_FLAGS` bit: the local quadratic could not be fitted or is not convex: the `_FIT`
/// values are the grid's.
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
        "local quadratic not convex: grid values",
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
    /// (n, q, theta in degrees folded into (-90, 90], log10 R_e): the quadratic's minimum
    /// on axes of more than two values, the grid's value elsewhere; theta NaN at q = 1.
    pub values: [f64; 4],
    /// One-sigma errors in the same units; NaN on axes not refined or where the fit failed.
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

/// Grid index of `i + o` on one axis and its offset from `i` in steps: slid inward at the
/// ends, wrapped on a periodic axis.
fn neighbour(n: usize, period: Option<usize>, i: usize, o: isize) -> (usize, f64) {
    match period {
        Some(p) => ((i as isize + o).rem_euclid(p as isize) as usize, o as f64),
        None => {
            let c = i.clamp(1, n - 2) as isize + o;
            (c as usize, (c - i as isize) as f64)
        }
    }
}

/// Refines the minimum of `chi` (a cube of `grid`, flat in C order) for an object of
/// `npix` counted pixels whose segment does (`at_edge`) or does not reach the cut's border.
/// None when `chi` is all NaN.
///
/// # Panics
/// If `chi.len() != grid.n_models()`.
pub fn refine(chi: &[f32], grid: &Grid, npix: usize, at_edge: bool) -> Option<Refined> {
    assert_eq!(chi.len(), grid.n_models());
    let k = super::params::nan_argmin(chi)?;
    let best = grid.unravel(k);
    let chi_min = chi[k] as f64;
    let shape = grid.shape();
    let axes = [&grid.index, &grid.axrat, &grid.posang, &grid.logh];
    let round = is_round(grid.axrat.value(best[1]));
    let period = [None, None, angle_period(&grid.posang), None];

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
    if at_edge {
        flags |= FLAG_SEGMENT_AT_EDGE;
    }
    if second_minimum(chi, grid, best, npix, &period) {
        flags |= FLAG_SECOND_MINIMUM;
    }

    let active: Vec<usize> = (0..4)
        .filter(|&a| shape[a] > 2 && !(a == 2 && round))
        .collect();
    let mut values = [0.0; 4];
    for a in 0..4 {
        values[a] = axes[a].value(best[a]);
    }
    let mut errors = [f64::NAN; 4];
    if round {
        values[2] = f64::NAN;
    } else {
        values[2] = fold_angle(values[2]);
    }

    match fit_quadratic(chi, grid, best, &active, &period) {
        Some((g, h)) => {
            let d = active.len();
            let mut ok = false;
            if let Some(inv) = invert(&h, d).filter(|_| positive_definite(&h, d)) {
                ok = true;
                let npix = npix.max(1) as f64;
                let dof = (npix - d as f64).max(1.0);
                let scale = (chi_min * npix / dof).max(1.0);
                for (j, &a) in active.iter().enumerate() {
                    let step = axes[a].step.abs();
                    let mut u: f64 = -(0..d).map(|l| inv[j * d + l] * g[l]).sum::<f64>();
                    // Keep the minimum within the sampled window.
                    let (lo, hi) = match period[a] {
                        Some(_) => (-1.0, 1.0),
                        None => {
                            let c = best[a].clamp(1, shape[a] - 2) as f64 - best[a] as f64;
                            (c - 1.0, c + 1.0)
                        }
                    };
                    u = u.clamp(lo, hi);
                    let v = axes[a].value(best[a]) + u * axes[a].step;
                    values[a] = if a == 2 { fold_angle(v) } else { v };
                    // chi2 = npix chi: cov = 2 (npix H)^-1, in steps.
                    errors[a] = (2.0 * inv[j * d + j] / npix * scale).sqrt() * step;
                }
            }
            if !ok {
                flags |= FLAG_REFINE_FAILED;
            }
        }
        None if !active.is_empty() => flags |= FLAG_REFINE_FAILED,
        None => {}
    }
    Some(Refined {
        values,
        errors,
        flags,
        npix,
        multi_index: grid.index.count > 1,
    })
}

fn positive_definite(h: &[f64], d: usize) -> bool {
    // Cholesky without keeping the factor.
    let mut l = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..=i {
            let s: f64 = h[i * d + j] - (0..j).map(|k| l[i * d + k] * l[j * d + k]).sum::<f64>();
            if i == j {
                if s <= 0.0 || !s.is_finite() {
                    return false;
                }
                l[i * d + i] = s.sqrt();
            } else {
                l[i * d + j] = s / l[j * d + j];
            }
        }
    }
    true
}

/// Least-squares quadratic chi(u) = c + g.u + u.H.u / 2 over the 3^d neighbourhood of
/// `best` on the `active` axes (u in steps from the best point); (g, H) or None when too
/// few finite points or a singular system.
fn fit_quadratic(
    chi: &[f32],
    grid: &Grid,
    best: [usize; 4],
    active: &[usize],
    period: &[Option<usize>; 4],
) -> Option<(Vec<f64>, Vec<f64>)> {
    let d = active.len();
    if d == 0 {
        return None;
    }
    let shape = grid.shape();
    let pairs: Vec<(usize, usize)> = (0..d).flat_map(|a| (a..d).map(move |b| (a, b))).collect();
    let nf = 1 + d + pairs.len();
    let mut ata = vec![0.0; nf * nf];
    let mut atb = vec![0.0; nf];
    let mut used = 0;
    for m in 0..3usize.pow(d as u32) {
        let mut idx = best;
        let mut u = vec![0.0; d];
        let mut code = m;
        for (j, &a) in active.iter().enumerate() {
            let o = (code % 3) as isize - 1;
            code /= 3;
            let (i, du) = neighbour(shape[a], period[a], best[a], o);
            idx[a] = i;
            u[j] = du;
        }
        let y = chi[((idx[0] * shape[1] + idx[1]) * shape[2] + idx[2]) * shape[3] + idx[3]] as f64;
        if !y.is_finite() {
            continue;
        }
        used += 1;
        let mut f = Vec::with_capacity(nf);
        f.push(1.0);
        f.extend_from_slice(&u);
        f.extend(pairs.iter().map(|&(a, b)| u[a] * u[b]));
        for r in 0..nf {
            atb[r] += f[r] * y;
            for c in 0..nf {
                ata[r * nf + c] += f[r] * f[c];
            }
        }
    }
    if used < nf {
        return None;
    }
    let inv = invert(&ata, nf)?;
    let coef: Vec<f64> = (0..nf)
        .map(|r| (0..nf).map(|c| inv[r * nf + c] * atb[c]).sum())
        .collect();
    let g = coef[1..1 + d].to_vec();
    let mut h = vec![0.0; d * d];
    for (p, &(a, b)) in pairs.iter().enumerate() {
        let c = coef[1 + d + p];
        if a == b {
            h[a * d + a] = 2.0 * c;
        } else {
            h[a * d + b] = c;
            h[b * d + a] = c;
        }
    }
    Some((g, h))
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
    use crate::model::default_cube::default_grid;

    /// chi of a quadratic bowl centred off the grid: chi = 1 + sum w_a (x_a - m_a)^2 / s_a^2.
    fn bowl(grid: &Grid, m: [f64; 4], w: [f64; 4]) -> Vec<f32> {
        let axes = [&grid.index, &grid.axrat, &grid.posang, &grid.logh];
        (0..grid.n_models())
            .map(|k| {
                let i = grid.unravel(k);
                let mut c = 1.0;
                for a in 0..4 {
                    let mut d = axes[a].value(i[a]) - m[a];
                    if a == 2 {
                        d = crate::conventions::angle_difference(axes[a].value(i[a]), m[a]);
                    }
                    c += w[a] * (d / axes[a].step.abs().max(1e-12)).powi(2);
                }
                c as f32
            })
            .collect()
    }

    #[test]
    fn recovers_an_off_grid_minimum_and_its_errors() {
        let g = default_grid();
        let chi = bowl(&g, [4.0, 0.43, 37.0, 0.57], [0.0, 0.01, 0.02, 0.03]);
        let r = refine(&chi, &g, 1000, false).unwrap();
        assert_eq!(r.flags, 0);
        assert!((r.values[1] - 0.43).abs() < 1e-4, "{r:?}");
        assert!((r.values[2] - 37.0).abs() < 1e-3, "{r:?}");
        assert!((r.values[3] - 0.57).abs() < 1e-4, "{r:?}");
        assert_eq!(r.values[0], 4.0);
        assert!(r.errors[0].is_nan());
        // chi2 = 1000 w (u)^2: H = 2000 w per step^2 -> sigma = sqrt(2 / 2000 w) steps.
        let low = chi.iter().cloned().fold(f32::INFINITY, f32::min) as f64;
        let scale = (low * 1000.0 / 997.0).sqrt();
        for (a, w, s) in [(1, 0.01, 0.1), (2, 0.02, 15.0), (3, 0.03, 0.1)] {
            let want = (1.0f64 / (1000.0 * w)).sqrt() * s * scale;
            assert!((r.errors[a] - want).abs() < 1e-3 * want, "{a} {r:?}");
        }
        // A reduced chi-square of 4 doubles the errors.
        let chi4: Vec<f32> = chi.iter().map(|&c| c + 3.0).collect();
        let r4 = refine(&chi4, &g, 1000, false).unwrap();
        assert!((r4.errors[3] / r.errors[3] - ((low + 3.0) / low).sqrt()).abs() < 1e-3);
    }

    #[test]
    fn theta_wraps_through_plus_minus_90() {
        let g = default_grid();
        let chi = bowl(&g, [4.0, 0.3, 85.0, 0.5], [0.0, 0.01, 0.02, 0.03]);
        let r = refine(&chi, &g, 1000, false).unwrap();
        assert!((r.values[2] - 85.0).abs() < 1e-3, "{r:?}");
        let chi = bowl(&g, [4.0, 0.3, -86.0, 0.5], [0.0, 0.01, 0.02, 0.03]);
        let r = refine(&chi, &g, 1000, false).unwrap();
        assert!((r.values[2] + 86.0).abs() < 1e-3, "{r:?}");
    }

    #[test]
    fn each_flag_on_purpose() {
        let g = default_grid();
        // Larger than the largest radius: log r on the edge.
        let chi = bowl(&g, [4.0, 0.5, 10.0, 1.9], [0.0, 0.01, 0.02, 0.03]);
        let r = refine(&chi, &g, 1000, false).unwrap();
        assert_eq!(r.flags, FLAG_LOGR_EDGE);
        assert!(r.values[3] <= 1.6 + 1e-9);
        // Round: q on the edge, theta undefined.
        let mut chi = bowl(&g, [4.0, 1.05, 0.0, 0.5], [0.0, 0.01, 0.0, 0.03]);
        let r = refine(&chi, &g, 1000, false).unwrap();
        assert_eq!(r.flags, FLAG_Q_EDGE);
        assert!(r.values[2].is_nan() && r.errors[2].is_nan());
        // A second minimum far away within delta chi2 < 1; none when it is 2 above.
        let low = chi.iter().cloned().fold(f32::INFINITY, f32::min);
        for (k, c) in chi.iter_mut().enumerate() {
            let i = g.unravel(k);
            if i[1] == 2 && i[3] == 3 && i[2] == 4 {
                *c = low + 0.0005;
            }
        }
        assert_eq!(
            refine(&chi, &g, 1000, false).unwrap().flags,
            FLAG_Q_EDGE | FLAG_SECOND_MINIMUM
        );
        assert_eq!(refine(&chi, &g, 4000, false).unwrap().flags, FLAG_Q_EDGE);
        // Few pixels, segment at the edge.
        let chi = bowl(&g, [4.0, 0.43, 37.0, 0.57], [0.0, 0.01, 0.02, 0.03]);
        let r = refine(&chi, &g, 29, true).unwrap();
        assert_eq!(r.flags, FLAG_FEW_PIXELS | FLAG_SEGMENT_AT_EDGE);
        // A saddle in (q, log r) with the best point still the lowest: refinement failed,
        // grid values kept.
        let g2 = Grid {
            index: Axis::new(4.0, 0.0, 1),
            axrat: Axis::new(0.3, 0.1, 3),
            posang: Axis::new(0.0, 15.0, 1),
            logh: Axis::new(0.0, 0.1, 3),
            boxsize: 8,
        };
        let chi = [11.0f32, 6.0, 1.001, 6.0, 1.0, 6.0, 1.001, 6.0, 11.0];
        let r = refine(&chi, &g2, 1000, false).unwrap();
        assert_eq!(r.flags, FLAG_REFINE_FAILED, "{r:?}");
        assert_eq!((r.values[1], r.values[3]), (g2.axrat.value(1), 0.1));
        assert!(r.errors[1].is_nan() && r.errors[3].is_nan());
        assert!(refine(&vec![f32::NAN; g.n_models()], &g, 1000, false).is_none());
    }
}
