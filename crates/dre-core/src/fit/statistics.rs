//! The original's `statistics` (`DRE/core/statistics.py`): numerical gradient and Hessian of
//! a cube at its minimum and the parameter uncertainties of `params_std`. Derivatives are
//! central differences on the 3-point window around the point, slid inward at the grid's
//! ends (as the `LOGR_PARAB` parabola is); an axis with one value has no derivative (0).

/// Flat C-order offset of `idx` in a cube of `shape`.
fn flat(shape: &[usize], idx: &[usize]) -> usize {
    idx.iter().zip(shape).fold(0, |k, (&i, &n)| k * n + i)
}

/// The window's centre on each axis: the point, slid inward to have a neighbour each side;
/// None for an axis of fewer than 3 values (no centred difference there).
fn centres(shape: &[usize], idx: &[usize]) -> Vec<Option<usize>> {
    shape
        .iter()
        .zip(idx)
        .map(|(&n, &i)| (n >= 3).then(|| i.clamp(1, n - 2)))
        .collect()
}

fn at(cube: &[f32], shape: &[usize], centre: &[usize], moves: &[(usize, isize)]) -> f64 {
    let mut p = centre.to_vec();
    for &(a, d) in moves {
        p[a] = (p[a] as isize + d) as usize;
    }
    cube[flat(shape, &p)] as f64
}

fn centre_point(shape: &[usize], idx: &[usize]) -> (Vec<usize>, Vec<Option<usize>>) {
    let c = centres(shape, idx);
    let p = c.iter().zip(idx).map(|(c, &i)| c.unwrap_or(i)).collect();
    (p, c)
}

/// Gradient of `cube` (C order, `shape`) at `idx`: per axis (f(+1) - f(-1)) / (2 step) on
/// the window, a forward difference on an axis of two values, 0 on an axis of one.
///
/// # Panics
/// If `idx` or `steps` do not have one entry per axis, or `cube` is not of `shape`.
pub fn cube_gradient(cube: &[f32], shape: &[usize], idx: &[usize], steps: &[f64]) -> Vec<f64> {
    assert_eq!(cube.len(), shape.iter().product::<usize>());
    let (p, c) = centre_point(shape, idx);
    (0..shape.len())
        .map(|a| match (c[a], shape[a]) {
            (Some(_), _) => {
                (at(cube, shape, &p, &[(a, 1)]) - at(cube, shape, &p, &[(a, -1)]))
                    / (2.0 * steps[a])
            }
            (None, 2) => {
                let mut q = p.clone();
                q[a] = 0;
                (at(cube, shape, &q, &[(a, 1)]) - at(cube, shape, &q, &[])) / steps[a]
            }
            _ => 0.0,
        })
        .collect()
}

/// Euclidean norm of [`cube_gradient`].
pub fn gradient_norm(cube: &[f32], shape: &[usize], idx: &[usize], steps: &[f64]) -> f64 {
    cube_gradient(cube, shape, idx, steps)
        .iter()
        .map(|g| g * g)
        .sum::<f64>()
        .sqrt()
}

/// Hessian of `cube` at `idx` (row-major d x d): (f(+1) - 2 f(0) + f(-1)) / step^2 on the
/// diagonal, (f(++) - f(+-) - f(-+) + f(--)) / (4 step_a step_b) off it; rows and columns of
/// axes with fewer than 3 values are 0.
///
/// # Panics
/// As [`cube_gradient`].
pub fn cube_hessian(cube: &[f32], shape: &[usize], idx: &[usize], steps: &[f64]) -> Vec<f64> {
    assert_eq!(cube.len(), shape.iter().product::<usize>());
    let d = shape.len();
    let (p, c) = centre_point(shape, idx);
    let mut h = vec![0.0; d * d];
    for a in 0..d {
        for b in a..d {
            if c[a].is_none() || c[b].is_none() {
                continue;
            }
            let v = if a == b {
                (at(cube, shape, &p, &[(a, 1)]) - 2.0 * at(cube, shape, &p, &[])
                    + at(cube, shape, &p, &[(a, -1)]))
                    / (steps[a] * steps[a])
            } else {
                (at(cube, shape, &p, &[(a, 1), (b, 1)])
                    - at(cube, shape, &p, &[(a, 1), (b, -1)])
                    - at(cube, shape, &p, &[(a, -1), (b, 1)])
                    + at(cube, shape, &p, &[(a, -1), (b, -1)]))
                    / (4.0 * steps[a] * steps[b])
            };
            h[a * d + b] = v;
            h[b * d + a] = v;
        }
    }
    h
}

/// Inverse of a symmetric d x d matrix by Gauss-Jordan with partial pivoting; None if
/// singular (a pivot below 1e-300 in magnitude).
pub(crate) fn invert(m: &[f64], d: usize) -> Option<Vec<f64>> {
    let mut a = m.to_vec();
    let mut inv = vec![0.0; d * d];
    for i in 0..d {
        inv[i * d + i] = 1.0;
    }
    for col in 0..d {
        let piv =
            (col..d).max_by(|&x, &y| a[x * d + col].abs().total_cmp(&a[y * d + col].abs()))?;
        if a[piv * d + col].abs() < 1e-300 || !a[piv * d + col].is_finite() {
            return None;
        }
        for k in 0..d {
            a.swap(col * d + k, piv * d + k);
            inv.swap(col * d + k, piv * d + k);
        }
        let p = a[col * d + col];
        for k in 0..d {
            a[col * d + k] /= p;
            inv[col * d + k] /= p;
        }
        for r in 0..d {
            if r != col {
                let f = a[r * d + col];
                for k in 0..d {
                    a[r * d + k] -= f * a[col * d + k];
                    inv[r * d + k] -= f * inv[col * d + k];
                }
            }
        }
    }
    Some(inv)
}

/// `params_std(chi_cube, idx_min, steps)`: the square roots of the diagonal of the inverse
/// of the Hessian of ln(chi) at `idx`, in the units of `steps`; a negative variance, an
/// axis with fewer than 3 values, or a singular Hessian gives NaN (the inverse is taken
/// over the axes with 3 values or more).
///
/// # Panics
/// As [`cube_gradient`].
pub fn params_std(chi: &[f32], shape: &[usize], idx: &[usize], steps: &[f64]) -> Vec<f64> {
    let ln: Vec<f32> = chi.iter().map(|&c| c.ln()).collect();
    let h = cube_hessian(&ln, shape, idx, steps);
    let d = shape.len();
    let live: Vec<usize> = (0..d).filter(|&a| shape[a] >= 3).collect();
    let m = live.len();
    let sub: Vec<f64> = live
        .iter()
        .flat_map(|&a| live.iter().map(move |&b| (a, b)))
        .map(|(a, b)| h[a * d + b])
        .collect();
    let mut out = vec![f64::NAN; d];
    if let Some(inv) = invert(&sub, m) {
        for (j, &a) in live.iter().enumerate() {
            let v = inv[j * m + j];
            if v >= 0.0 {
                out[a] = v.sqrt();
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// f(x, y) = 1 + 2x + 3y + x^2 + x y + 2 y^2 sampled on x = 0.5 i, y = 0.25 j (4 x 5);
    /// a quadratic, so the central differences are exact.
    fn quad() -> (Vec<f32>, [usize; 2], [f64; 2]) {
        let f = |x: f64, y: f64| 1.0 + 2.0 * x + 3.0 * y + x * x + x * y + 2.0 * y * y;
        let cube = (0..4)
            .flat_map(|i| (0..5).map(move |j| f(0.5 * i as f64, 0.25 * j as f64) as f32))
            .collect();
        (cube, [4, 5], [0.5, 0.25])
    }

    #[test]
    fn gradient_and_hessian_of_a_quadratic_by_hand() {
        let (c, s, st) = quad();
        // At (x, y) = (0.5, 0.5): df/dx = 2 + 2x + y = 3.5, df/dy = 3 + x + 4y = 5.5.
        let g = cube_gradient(&c, &s, &[1, 2], &st);
        assert!(
            (g[0] - 3.5).abs() < 1e-5 && (g[1] - 5.5).abs() < 1e-5,
            "{g:?}"
        );
        assert!(
            (gradient_norm(&c, &s, &[1, 2], &st) - (3.5f64.powi(2) + 5.5f64.powi(2)).sqrt()).abs()
                < 1e-5
        );
        let h = cube_hessian(&c, &s, &[1, 2], &st);
        for (v, want) in h.iter().zip([2.0, 1.0, 1.0, 4.0]) {
            assert!((v - want).abs() < 1e-4, "{h:?}");
        }
        // At the corner the window slides inward: the Hessian is the same, the gradient is
        // the one at the window's centre (1, 1) -> x = 0.5, y = 0.25.
        let g = cube_gradient(&c, &s, &[0, 0], &st);
        assert!(
            (g[0] - 3.25).abs() < 1e-5 && (g[1] - 4.5).abs() < 1e-5,
            "{g:?}"
        );
        assert_eq!(cube_hessian(&c, &s, &[0, 0], &st).len(), 4);
    }

    #[test]
    fn params_std_is_the_inverse_hessian_of_ln_chi() {
        // ln chi = x^2 / 2 + y^2 / 8 (Hessian diag(1, 1/4)): std 1 and 2 in the steps' units.
        let (n, m) = (5, 7);
        let chi: Vec<f32> = (0..n)
            .flat_map(|i| {
                (0..m).map(move |j| {
                    let (x, y) = (i as f64 - 2.0, 0.5 * (j as f64 - 3.0));
                    (x * x / 2.0 + y * y / 8.0 + 1.0).exp() as f32
                })
            })
            .collect();
        let s = params_std(&chi, &[n, m], &[2, 3], &[1.0, 0.5]);
        assert!(
            (s[0] - 1.0).abs() < 1e-4 && (s[1] - 2.0).abs() < 1e-3,
            "{s:?}"
        );
        // A maximum along y: negative variance -> NaN; an axis of one value -> NaN.
        let chi: Vec<f32> = chi.iter().map(|&c| 1.0 / c).collect();
        let s = params_std(&chi, &[n, m], &[2, 3], &[1.0, 0.5]);
        assert!(s[0].is_nan() && s[1].is_nan(), "{s:?}");
        let s = params_std(&[2.0, 1.0, 2.0], &[1, 3], &[0, 1], &[1.0, 1.0]);
        assert!(s[0].is_nan() && (s[1] - (1.0 / (2.0 * 2f64.ln())).sqrt()).abs() < 1e-6);
        assert_eq!(
            cube_gradient(&[2.0, 1.0, 2.0], &[1, 3], &[0, 1], &[1.0, 1.0]),
            vec![0.0, 0.0]
        );
    }
}
