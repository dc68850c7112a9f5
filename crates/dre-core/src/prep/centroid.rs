//! Centroids of a cut for re-centring, as photutils computes them: `com` (flux-weighted centre
//! of mass), `1dg` (1-D Gaussians fitted to the x and y marginal sums), `2dg` (a 2-D Gaussian
//! fitted to the image). Masked and non-finite pixels count as 0 (and get no weight in fits).

use crate::error::{Error, Result};
use crate::prep::lsq::{minimise, Residuals};
use std::str::FromStr;

/// How `make_cuts --centroids` finds the centre to re-centre a cut on (`--centroids-mode`:
/// `com`, `1dg`, `2dg`; the CLI's default is `com`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CentroidMode {
    /// Centre of mass.
    Com,
    /// 1-D Gaussians on the marginal distributions.
    Gauss1d,
    /// 2-D Gaussian.
    Gauss2d,
}

impl FromStr for CentroidMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "com" => Ok(CentroidMode::Com),
            "1dg" => Ok(CentroidMode::Gauss1d),
            "2dg" => Ok(CentroidMode::Gauss2d),
            _ => Err(Error::Invalid(format!(
                "centroid mode must be com, 1dg or 2dg, not {s:?}"
            ))),
        }
    }
}

/// The (x, y) centroid (0-based pixels) of a `size` x `size` row-major image, leaving out
/// pixels where `masked` is true; None when it cannot be found (no flux, a diverging fit).
pub fn centroid(
    data: &[f32],
    masked: &[bool],
    size: usize,
    mode: CentroidMode,
) -> Option<(f64, f64)> {
    let (values, bad) = prepare(data, masked);
    let c = match mode {
        CentroidMode::Com => com(&values, size),
        CentroidMode::Gauss1d => gauss_1d(&values, &bad, size),
        CentroidMode::Gauss2d => gauss_2d(&values, &bad, size),
    }?;
    (c.0.is_finite() && c.1.is_finite()).then_some(c)
}

/// The data as f64 with masked and non-finite pixels set to 0, and the mask of those pixels.
fn prepare(data: &[f32], masked: &[bool]) -> (Vec<f64>, Vec<bool>) {
    let bad: Vec<bool> = data
        .iter()
        .zip(masked)
        .map(|(v, &m)| m || !v.is_finite())
        .collect();
    let values = data
        .iter()
        .zip(&bad)
        .map(|(&v, &b)| if b { 0.0 } else { v as f64 })
        .collect();
    (values, bad)
}

fn com(v: &[f64], size: usize) -> Option<(f64, f64)> {
    let total: f64 = v.iter().sum();
    if total.abs() < 1e-30 {
        return None;
    }
    let (mut sx, mut sy) = (0.0, 0.0);
    for (i, &d) in v.iter().enumerate() {
        sx += (i % size) as f64 * d;
        sy += (i / size) as f64 * d;
    }
    Some((sx / total, sy / total))
}

/// A 1-D Gaussian `a exp(-(x - m)^2 / 2 s^2)` against weighted samples at x = 0, 1, ...
struct Gauss1 {
    y: Vec<f64>,
    w: Vec<f64>,
}

impl Residuals for Gauss1 {
    fn len(&self) -> usize {
        self.y.len()
    }
    fn eval(&self, p: &[f64], r: &mut [f64], j: &mut [f64]) {
        let (a, m, s) = (p[0], p[1], p[2]);
        for (i, (&y, &w)) in self.y.iter().zip(&self.w).enumerate() {
            let u = (i as f64 - m) / s;
            let g = (-0.5 * u * u).exp();
            r[i] = w * (a * g - y);
            j[3 * i] = w * g;
            j[3 * i + 1] = w * a * g * u / s;
            j[3 * i + 2] = w * a * g * u * u / s;
        }
    }
}

fn gauss_1d(v: &[f64], bad: &[bool], size: usize) -> Option<(f64, f64)> {
    let fit_axis = |along_x: bool| -> Option<f64> {
        let at = |k: usize, l: usize| if along_x { l * size + k } else { k * size + l };
        let y: Vec<f64> = (0..size)
            .map(|k| (0..size).map(|l| v[at(k, l)]).sum())
            .collect();
        // A row or column masked whole carries no information.
        let w: Vec<f64> = (0..size)
            .map(|k| {
                if (0..size).all(|l| bad[at(k, l)]) {
                    0.0
                } else {
                    1.0
                }
            })
            .collect();
        let total: f64 = y.iter().sum();
        let mean = y.iter().enumerate().map(|(i, d)| i as f64 * d).sum::<f64>() / total;
        let var = y
            .iter()
            .enumerate()
            .map(|(i, d)| d * (i as f64 - mean).powi(2))
            .sum::<f64>()
            / total;
        let (lo, hi) = y
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &d| {
                (lo.min(d), hi.max(d))
            });
        let p = minimise(&Gauss1 { y, w }, &[hi - lo, mean, var.abs().sqrt()])?;
        Some(p[1])
    };
    Some((fit_axis(true)?, fit_axis(false)?))
}

/// A 2-D Gaussian `a exp(-(A dx^2 + B dx dy + C dy^2))` against a weighted image.
/// (The same family as astropy's Gaussian2D in a parametrisation with simpler derivatives.)
struct Gauss2<'a> {
    v: &'a [f64],
    w: Vec<f64>,
    size: usize,
}

impl Residuals for Gauss2<'_> {
    fn len(&self) -> usize {
        self.v.len()
    }
    fn eval(&self, p: &[f64], r: &mut [f64], j: &mut [f64]) {
        let (amp, x0, y0, qa, qb, qc) = (p[0], p[1], p[2], p[3], p[4], p[5]);
        for (i, (&d, &w)) in self.v.iter().zip(&self.w).enumerate() {
            let dx = (i % self.size) as f64 - x0;
            let dy = (i / self.size) as f64 - y0;
            let g = (-(qa * dx * dx + qb * dx * dy + qc * dy * dy)).exp();
            let f = amp * g;
            r[i] = w * (f - d);
            let jr = &mut j[6 * i..6 * i + 6];
            jr[0] = w * g;
            jr[1] = w * f * (2.0 * qa * dx + qb * dy);
            jr[2] = w * f * (qb * dx + 2.0 * qc * dy);
            jr[3] = -w * f * dx * dx;
            jr[4] = -w * f * dx * dy;
            jr[5] = -w * f * dy * dy;
        }
    }
}

fn gauss_2d(v: &[f64], bad: &[bool], size: usize) -> Option<(f64, f64)> {
    if bad.iter().filter(|&&b| !b).count() < 6 {
        return None;
    }
    // Starting point: moments of the data made non-negative (as photutils does).
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let shifted: Vec<f64> = v.iter().map(|d| d - min).collect();
    let total: f64 = shifted.iter().sum();
    if total <= 0.0 {
        return None;
    }
    let amp = shifted.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (x0, y0) = com(&shifted, size)?;
    let (mut mxx, mut myy, mut mxy) = (0.0, 0.0, 0.0);
    for (i, &d) in shifted.iter().enumerate() {
        let dx = (i % size) as f64 - x0;
        let dy = (i / size) as f64 - y0;
        mxx += dx * dx * d;
        myy += dy * dy * d;
        mxy += dx * dy * d;
    }
    let (mxx, myy, mxy) = (mxx / total, myy / total, mxy / total);
    let det = mxx * myy - mxy * mxy;
    // The quadratic form is half the inverse covariance; a degenerate start falls back to round.
    let (qa, qb, qc) = if det > 0.0 {
        (0.5 * myy / det, -mxy / det, 0.5 * mxx / det)
    } else {
        let r = 0.5 / mxx.max(myy).max(1.0);
        (r, 0.0, r)
    };
    let w = bad.iter().map(|&b| if b { 0.0 } else { 1.0 }).collect();
    let p = minimise(&Gauss2 { v, w, size }, &[amp, x0, y0, qa, qb, qc])?;
    Some((p[1], p[2]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An elliptical Gaussian centred at (x0, y0) on a `size` box, plus a constant.
    fn blob(size: usize, x0: f64, y0: f64, floor: f64) -> Vec<f32> {
        let (sx, sy, th) = (3.0f64, 1.8f64, 0.6f64);
        (0..size * size)
            .map(|i| {
                let dx = (i % size) as f64 - x0;
                let dy = (i / size) as f64 - y0;
                let u = dx * th.cos() + dy * th.sin();
                let v = -dx * th.sin() + dy * th.cos();
                (100.0 * (-0.5 * (u * u / (sx * sx) + v * v / (sy * sy))).exp() + floor) as f32
            })
            .collect()
    }

    #[test]
    fn gaussian_centres_are_recovered() {
        let size = 40;
        let (x0, y0) = (18.37, 21.81);
        let img = blob(size, x0, y0, 0.0);
        let none = vec![false; size * size];
        for mode in [
            CentroidMode::Com,
            CentroidMode::Gauss1d,
            CentroidMode::Gauss2d,
        ] {
            let (x, y) = centroid(&img, &none, size, mode).unwrap();
            assert!(
                (x - x0).abs() < 0.01 && (y - y0).abs() < 0.01,
                "{mode:?}: {x} {y}"
            );
        }
    }

    #[test]
    fn masked_pixels_are_left_out() {
        let size = 40;
        let (x0, y0) = (20.3, 19.6);
        let mut img = blob(size, x0, y0, 0.0);
        // A bright neighbour, masked, and a NaN: neither may pull the centroid.
        let mut mask = vec![false; size * size];
        for y in 0..6 {
            for x in 0..6 {
                img[y * size + x] = 500.0;
                mask[y * size + x] = true;
            }
        }
        img[39 * size + 39] = f32::NAN;
        for mode in [
            CentroidMode::Com,
            CentroidMode::Gauss1d,
            CentroidMode::Gauss2d,
        ] {
            let (x, y) = centroid(&img, &mask, size, mode).unwrap();
            assert!(
                (x - x0).abs() < 0.01 && (y - y0).abs() < 0.01,
                "{mode:?}: {x} {y}"
            );
        }
    }

    #[test]
    fn matches_photutils_on_a_noisy_masked_blob() {
        // photutils 3.0 centroid_com / centroid_1dg / centroid_2dg(img, mask=mask) on this image.
        let n = 24;
        let th = 0.4f64;
        let mut img: Vec<f32> = (0..n * n)
            .map(|i| {
                let dx = (i % n) as f64 - 11.3;
                let dy = (i / n) as f64 - 12.6;
                let u = dx * th.cos() + dy * th.sin();
                let v = -dx * th.sin() + dy * th.cos();
                let g = 100.0 * (-0.5 * (u * u / 2.5f64.powi(2) + v * v / 1.7f64.powi(2))).exp();
                (g + 4.0 * (i as f64 * 1.7).sin() + 1.0) as f32
            })
            .collect();
        let mut mask = vec![false; n * n];
        for y in 0..5 {
            for x in 0..5 {
                img[y * n + x] = 300.0;
                mask[y * n + x] = true;
            }
        }
        let expected = [
            (CentroidMode::Com, 11.41157966, 12.48387303),
            (CentroidMode::Gauss1d, 11.30102733, 12.60000358),
            (CentroidMode::Gauss2d, 11.30000027, 12.60000015),
        ];
        for (mode, ex, ey) in expected {
            let (x, y) = centroid(&img, &mask, n, mode).unwrap();
            assert!(
                (x - ex).abs() < 1e-6 && (y - ey).abs() < 1e-6,
                "{mode:?}: {x} {y}"
            );
        }
    }

    #[test]
    fn no_flux_has_no_centroid() {
        let zeros = vec![0.0f32; 64];
        let none = vec![false; 64];
        assert_eq!(centroid(&zeros, &none, 8, CentroidMode::Com), None);
        assert_eq!(centroid(&zeros, &none, 8, CentroidMode::Gauss2d), None);
    }

    #[test]
    fn modes_parse() {
        assert_eq!("2dg".parse::<CentroidMode>(), Ok(CentroidMode::Gauss2d));
        assert!("3dg".parse::<CentroidMode>().is_err());
    }
}
