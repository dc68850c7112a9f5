//! Projected Newton minimisation in a box, for the refinement's few parameters (the window's
//! offsets in grid steps; the object's sub-pixel offset).

use super::statistics::invert;

/// A gradient (d) and a Hessian (d x d, row-major).
pub(crate) type GradHess = (Vec<f64>, Vec<f64>);

/// Minimum of `f` (gradient and Hessian `derivatives`) over the box `lo..hi` from `u`:
/// Newton steps (gradient steps where the Hessian is not positive definite), at most 0.5
/// long on every axis, projected on the box and halved until `f` decreases; it stops when a
/// step moves no coordinate by more than `tol`.
pub(crate) fn minimise(
    f: &dyn Fn(&[f64]) -> f64,
    derivatives: &dyn Fn(&[f64]) -> GradHess,
    mut u: Vec<f64>,
    (lo, hi): (&[f64], &[f64]),
    tol: f64,
) -> Vec<f64> {
    let d = u.len();
    let mut fu = f(&u);
    for _ in 0..50 {
        let (g, h) = derivatives(&u);
        let newton = if positive_definite(&h, d) {
            invert(&h, d).map(|inv| {
                (0..d)
                    .map(|j| -(0..d).map(|k| inv[j * d + k] * g[k]).sum::<f64>())
                    .collect::<Vec<f64>>()
            })
        } else {
            None
        };
        let mut step = newton.unwrap_or_else(|| {
            (0..d)
                .map(|j| -g[j] / h[j * d + j].abs().max(1e-12))
                .collect()
        });
        let longest = step.iter().fold(0.0f64, |m, s| m.max(s.abs()));
        if longest > 0.5 {
            step.iter_mut().for_each(|s| *s *= 0.5 / longest);
        }
        let mut t = 1.0;
        let mut moved = false;
        for _ in 0..30 {
            let v: Vec<f64> = (0..d)
                .map(|j| (u[j] + t * step[j]).clamp(lo[j], hi[j]))
                .collect();
            let fv = f(&v);
            if fv < fu {
                let shift = (0..d).fold(0.0f64, |m, j| m.max((v[j] - u[j]).abs()));
                u = v;
                fu = fv;
                moved = shift > tol;
                break;
            }
            t *= 0.5;
        }
        if !moved {
            break;
        }
    }
    u
}

/// Whether the symmetric d x d matrix `h` is positive definite (its Cholesky factor exists).
pub(crate) fn positive_definite(h: &[f64], d: usize) -> bool {
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
