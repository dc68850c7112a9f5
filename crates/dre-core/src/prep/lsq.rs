//! A small Levenberg–Marquardt least-squares solver for the few-parameter fits of the
//! centroids (the original uses astropy's fitters; any method reaching the minimum will do).

/// Residuals and their Jacobian at a point: `eval(p, r, j)` fills `r` (m values) and `j`
/// (m x n, row-major).
pub trait Residuals {
    fn len(&self) -> usize;
    fn eval(&self, p: &[f64], r: &mut [f64], j: &mut [f64]);
}

const MAX_ITER: usize = 500;

/// Minimises the sum of squared residuals from `p0`; None if the fit diverges.
pub fn minimise(f: &impl Residuals, p0: &[f64]) -> Option<Vec<f64>> {
    let n = p0.len();
    let m = f.len();
    let mut p = p0.to_vec();
    let (mut r, mut j) = (vec![0.0; m], vec![0.0; m * n]);
    let (mut r_new, mut j_new) = (r.clone(), j.clone());
    f.eval(&p, &mut r, &mut j);
    let mut cost = sum_sq(&r);
    let mut lambda = 1e-3;
    for _ in 0..MAX_ITER {
        let (a, g) = normal_equations(&j, &r, n);
        let mut stepped = false;
        while lambda < 1e16 {
            let mut damped = a.clone();
            for k in 0..n {
                damped[k * n + k] += lambda * a[k * n + k].max(1e-300);
            }
            let minus_g: Vec<f64> = g.iter().map(|v| -v).collect();
            let Some(delta) = solve(damped, minus_g, n) else {
                lambda *= 10.0;
                continue;
            };
            let trial: Vec<f64> = p.iter().zip(&delta).map(|(a, b)| a + b).collect();
            f.eval(&trial, &mut r_new, &mut j_new);
            let new_cost = sum_sq(&r_new);
            if new_cost.is_finite() && new_cost <= cost {
                let small_step = delta
                    .iter()
                    .zip(&trial)
                    .all(|(d, t)| d.abs() <= 1e-12 * (t.abs() + 1e-12));
                let small_gain = cost - new_cost <= 1e-15 * cost;
                p = trial;
                std::mem::swap(&mut r, &mut r_new);
                std::mem::swap(&mut j, &mut j_new);
                cost = new_cost;
                lambda = (lambda / 10.0).max(1e-12);
                if small_step || small_gain {
                    return finite(p);
                }
                stepped = true;
                break;
            }
            lambda *= 10.0;
        }
        if !stepped {
            // No step lowers the cost: p is the minimum to machine precision.
            return finite(p);
        }
    }
    finite(p)
}

fn finite(p: Vec<f64>) -> Option<Vec<f64>> {
    p.iter().all(|v| v.is_finite()).then_some(p)
}

fn sum_sq(r: &[f64]) -> f64 {
    r.iter().map(|v| v * v).sum()
}

/// (J^T J, J^T r).
fn normal_equations(j: &[f64], r: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut a = vec![0.0; n * n];
    let mut g = vec![0.0; n];
    for (row, &ri) in j.chunks(n).zip(r) {
        for k in 0..n {
            g[k] += row[k] * ri;
            for l in 0..n {
                a[k * n + l] += row[k] * row[l];
            }
        }
    }
    (a, g)
}

/// Solves `a x = b` by Gaussian elimination with partial pivoting; None if singular.
fn solve(mut a: Vec<f64>, mut b: Vec<f64>, n: usize) -> Option<Vec<f64>> {
    for col in 0..n {
        let piv =
            (col..n).max_by(|&x, &y| a[x * n + col].abs().total_cmp(&a[y * n + col].abs()))?;
        let usable = a[piv * n + col].abs() > 0.0;
        if !usable {
            return None;
        }
        for k in 0..n {
            a.swap(col * n + k, piv * n + k);
        }
        b.swap(col, piv);
        for row in col + 1..n {
            let f = a[row * n + col] / a[col * n + col];
            for k in col..n {
                a[row * n + k] -= f * a[col * n + k];
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let s: f64 = (row + 1..n).map(|k| a[row * n + k] * x[k]).sum();
        x[row] = (b[row] - s) / a[row * n + row];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// y = p0 * exp(p1 * x) sampled exactly.
    struct Exp {
        x: Vec<f64>,
        y: Vec<f64>,
    }

    impl Residuals for Exp {
        fn len(&self) -> usize {
            self.x.len()
        }
        fn eval(&self, p: &[f64], r: &mut [f64], j: &mut [f64]) {
            for (i, (&x, &y)) in self.x.iter().zip(&self.y).enumerate() {
                let e = (p[1] * x).exp();
                r[i] = p[0] * e - y;
                j[2 * i] = e;
                j[2 * i + 1] = p[0] * x * e;
            }
        }
    }

    #[test]
    fn recovers_exact_parameters() {
        let x: Vec<f64> = (0..20).map(|i| i as f64 * 0.1).collect();
        let y = x.iter().map(|x| 3.0 * (-1.3 * x).exp()).collect();
        let p = minimise(&Exp { x, y }, &[1.0, 0.0]).unwrap();
        assert!(
            (p[0] - 3.0).abs() < 1e-9 && (p[1] + 1.3).abs() < 1e-9,
            "{p:?}"
        );
    }

    #[test]
    fn solves_small_systems() {
        let x = solve(vec![0.0, 2.0, 1.0, 1.0], vec![4.0, 3.0], 2).unwrap();
        assert_eq!(x, vec![1.0, 2.0]);
        assert!(solve(vec![1.0, 2.0, 2.0, 4.0], vec![1.0, 1.0], 2).is_none());
    }
}
