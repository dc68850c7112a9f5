//! The chi-square fit (SPEC 4): for every object and every convolved model k, over the
//! pixels p of the object's segment,
//!
//! ```text
//! F_d = nansum_p d_p,  F_k = sum_p m_kp,  s_k = F_d / F_k,
//! chi_k = nanmean_p (d_p - s_k m_kp)^2 / (s_k m_kp + rms_p^2)
//! ```
//!
//! The kernel works on the segment's bounding box, widened to a multiple of [`LANES`]
//! columns so every row is whole SIMD vectors; pixels outside the segment, or where the data
//! or the noise is NaN, are masked (they are exactly the terms numpy's nanmean drops).
//! Objects are fitted in batches: each pass over a block of models serves every object of the
//! batch while the block is in cache, and blocks run in parallel on the rayon pool.

use crate::cutfile::Cut;
use crate::error::{Error, Result};
use rayon::prelude::*;
use std::path::Path;

/// SIMD width the kernel is written for (8 f32 = one AVX register).
pub const LANES: usize = 8;

/// Models per cache block: 8 stamps of 128x128 f32 = 512 KiB, within a core's L2.
const BLOCK: usize = 8;

/// An object ready for the kernel.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub name: String,
    /// Top-left corner and size of the padded bounding box in the stamp.
    x0: usize,
    y0: usize,
    w: usize,
    h: usize,
    /// Row-major over the box: data (0 where masked), rms^2 (1 where masked), the segment
    /// (1.0 inside), and whether the term counts (segment and finite data and noise).
    d: Vec<f32>,
    r2: Vec<f32>,
    seg: Vec<f32>,
    keep: Vec<bool>,
    /// F_d, the nansum of the data over the segment.
    pub flux: f32,
    /// Number of segment pixels.
    pub n_seg: usize,
}

impl Prepared {
    /// Checks a cut against the cube's stamp size and packs its segment. An empty segment,
    /// or one without a finite pixel, cannot be fitted.
    pub fn new(cut: &Cut, boxsize: usize, file: &Path) -> Result<Prepared> {
        let b = boxsize;
        if cut.size != b {
            return Err(Error::object(
                file,
                &cut.name,
                format!("cut is {0}x{0} but the model stamps are {b}x{b}", cut.size),
            ));
        }
        let (mut xmin, mut xmax, mut ymin, mut ymax) = (b, 0, b, 0);
        let mut n_seg = 0;
        let mut n_finite = 0;
        let mut flux = 0f64;
        for y in 0..b {
            for x in 0..b {
                let p = y * b + x;
                if cut.seg[p] {
                    n_seg += 1;
                    xmin = xmin.min(x);
                    xmax = xmax.max(x);
                    ymin = ymin.min(y);
                    ymax = ymax.max(y);
                    if !cut.obj[p].is_nan() {
                        flux += cut.obj[p] as f64;
                        if !cut.rms[p].is_nan() {
                            n_finite += 1;
                        }
                    }
                }
            }
        }
        if n_seg == 0 {
            return Err(Error::object(file, &cut.name, "segment is empty"));
        }
        if n_finite == 0 {
            return Err(Error::object(
                file,
                &cut.name,
                "no pixel of its segment has finite data and noise (all NaN)",
            ));
        }
        let w = ((xmax - xmin + 1).div_ceil(LANES) * LANES).min(b);
        let x0 = xmin.min(b - w);
        let (y0, h) = (ymin, ymax - ymin + 1);
        let n = w * h;
        let (mut d, mut r2, mut seg, mut keep) =
            (vec![0f32; n], vec![1f32; n], vec![0f32; n], vec![false; n]);
        for i in 0..h {
            for j in 0..w {
                let p = (y0 + i) * b + x0 + j;
                let q = i * w + j;
                if cut.seg[p] {
                    seg[q] = 1.0;
                    let (dp, rp) = (cut.obj[p], cut.rms[p]);
                    if !dp.is_nan() && !rp.is_nan() {
                        d[q] = dp;
                        r2[q] = rp * rp;
                        keep[q] = true;
                    }
                }
            }
        }
        Ok(Prepared {
            name: cut.name.clone(),
            x0,
            y0,
            w,
            h,
            d,
            r2,
            seg,
            keep,
            flux: flux as f32,
            n_seg,
        })
    }

    /// The flux scale s_k = F_d / F_k of a (convolved) model.
    pub fn scale(&self, model: &[f32], boxsize: usize) -> f32 {
        let mut fk = 0f64;
        for i in 0..self.h {
            let row = &model[(self.y0 + i) * boxsize + self.x0..][..self.w];
            for (m, s) in row.iter().zip(&self.seg[i * self.w..(i + 1) * self.w]) {
                fk += (*m * *s) as f64;
            }
        }
        self.flux / fk as f32
    }
}

/// Chi-square of one object against one model: the scalar definition, kept as the
/// reference the vector kernel is tested against.
#[cfg(test)]
fn chi_scalar(o: &Prepared, model: &[f32], b: usize) -> f32 {
    let s = o.scale(model, b);
    let (mut sum, mut n) = (0f64, 0usize);
    for i in 0..o.h {
        for j in 0..o.w {
            let q = i * o.w + j;
            if !o.keep[q] {
                continue;
            }
            let t = term(s, model[(o.y0 + i) * b + o.x0 + j], o.d[q], o.r2[q]);
            if !t.is_nan() {
                sum += t as f64;
                n += 1;
            }
        }
    }
    (sum / n as f64) as f32
}

/// One chi term, (d - s m)^2 / (s m + rms^2), in the original's order of operations.
#[inline(always)]
fn term(s: f32, m: f32, d: f32, r2: f32) -> f32 {
    let sm = s * m;
    let diff = d - sm;
    diff * diff / (sm + r2)
}

/// The vector kernel: two passes over the box (F_k, then the chi terms) with LANES
/// independent accumulators, written so that LLVM vectorises each row.
#[inline(always)]
fn chi_kernel(o: &Prepared, model: &[f32], b: usize) -> f32 {
    let w = o.w;
    let mut fk = [0f32; LANES];
    for i in 0..o.h {
        let row = &model[(o.y0 + i) * b + o.x0..][..w];
        let seg = &o.seg[i * w..(i + 1) * w];
        let (mc, sc) = (row.chunks_exact(LANES), seg.chunks_exact(LANES));
        for (m, s) in mc.remainder().iter().zip(sc.remainder()) {
            fk[0] += m * s;
        }
        for (m, s) in mc.zip(sc) {
            for l in 0..LANES {
                fk[l] += m[l] * s[l];
            }
        }
    }
    let fk: f32 = fk.iter().sum();
    if fk == 0.0 {
        return f32::NAN;
    }
    let s = o.flux / fk;
    let mut sum = [0f32; LANES];
    let mut cnt = [0f32; LANES];
    for i in 0..o.h {
        let row = &model[(o.y0 + i) * b + o.x0..][..w];
        let r = i * w..(i + 1) * w;
        let (d, r2, keep) = (&o.d[r.clone()], &o.r2[r.clone()], &o.keep[r]);
        let whole = w - w % LANES;
        for (((m, d), r2), k) in row
            .chunks_exact(LANES)
            .zip(d.chunks_exact(LANES))
            .zip(r2.chunks_exact(LANES))
            .zip(keep.chunks_exact(LANES))
        {
            for l in 0..LANES {
                let t = term(s, m[l], d[l], r2[l]);
                let ok = k[l] & (t == t);
                sum[l] += if ok { t } else { 0.0 };
                cnt[l] += if ok { 1.0 } else { 0.0 };
            }
        }
        for p in whole..w {
            let t = term(s, row[p], d[p], r2[p]);
            if keep[p] && !t.is_nan() {
                sum[0] += t;
                cnt[0] += 1.0;
            }
        }
    }
    let n: f32 = cnt.iter().sum();
    (sum.iter().map(|&v| v as f64).sum::<f64>() / n as f64) as f32
}

/// Fills `out[kk * objects.len() + j]` with the chi of object j against model `k0 + kk`.
#[inline(always)]
fn fit_block_impl(models: &[f32], b: usize, objects: &[Prepared], out: &mut [f32]) {
    let nb = objects.len();
    for (j, o) in objects.iter().enumerate() {
        for (kk, model) in models.chunks_exact(b * b).enumerate() {
            out[kk * nb + j] = chi_kernel(o, model, b);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fit_block_avx2(models: &[f32], b: usize, objects: &[Prepared], out: &mut [f32]) {
    fit_block_impl(models, b, objects, out)
}

fn fit_block(models: &[f32], b: usize, objects: &[Prepared], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports the features the function was compiled for.
        return unsafe { fit_block_avx2(models, b, objects, out) };
    }
    fit_block_impl(models, b, objects, out)
}

/// Chi cubes of a batch of objects against every model of a convolved cube: `result[j]` is
/// object j's cube, flat in the cube's C order (n, q, theta, logr).
pub fn fit_batch(models: &[f32], boxsize: usize, objects: &[Prepared]) -> Vec<Vec<f32>> {
    let stamp = boxsize * boxsize;
    let n_models = models.len() / stamp;
    let nb = objects.len();
    if nb == 0 {
        return Vec::new();
    }
    let mut by_model = vec![0f32; n_models * nb];
    by_model
        .par_chunks_mut(BLOCK * nb)
        .zip(models.par_chunks(BLOCK * stamp))
        .for_each(|(out, block)| fit_block(block, boxsize, objects, out));
    (0..nb)
        .map(|j| (0..n_models).map(|k| by_model[k * nb + j]).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(b: usize, seed: usize) -> Cut {
        let c = (b as f32 - 1.0) / 2.0;
        let mut obj = Vec::new();
        let mut seg = Vec::new();
        for y in 0..b {
            for x in 0..b {
                let (dx, dy) = (x as f32 - c, y as f32 - c);
                let noise = (((y * b + x + seed) * 2654435761) % 1000) as f32 / 1000.0 - 0.5;
                // Model k = 7 of `models`, plus noise.
                obj.push(100.0 * (-(dx * dx + 0.5 * dy * dy) / 12.0).exp() + noise);
                seg.push(dx * dx + dy * dy < 30.0 + seed as f32);
            }
        }
        Cut {
            name: format!("00_{seed:04}"),
            size: b,
            obj,
            seg,
            rms: vec![0.7; b * b],
        }
    }

    fn models(b: usize, n: usize) -> Vec<f32> {
        let c = (b as f32 - 1.0) / 2.0;
        (0..n)
            .flat_map(|k| {
                (0..b * b).map(move |p| {
                    let (x, y) = ((p % b) as f32 - c, (p / b) as f32 - c);
                    (-(x * x + 0.5 * y * y) / (5.0 + k as f32)).exp()
                })
            })
            .collect()
    }

    #[test]
    fn kernel_matches_the_definition() {
        let b = 30; // not a multiple of LANES: exercises the row tails
        let ms = models(b, 19);
        let objs: Vec<Prepared> = [0, 1, 2, 3, 400] // the last spans the whole box
            .into_iter()
            .map(|s| Prepared::new(&cut(b, s), b, Path::new("t.h5")).unwrap())
            .collect();
        let chi = fit_batch(&ms, b, &objs);
        for (o, cube) in objs.iter().zip(&chi) {
            for (k, &c) in cube.iter().enumerate() {
                let want = chi_scalar(o, &ms[k * b * b..(k + 1) * b * b], b);
                assert!((c - want).abs() <= 2e-6 * want.abs(), "{c} vs {want}");
            }
        }
        // The data are model 7 plus noise.
        let best = chi[0]
            .iter()
            .enumerate()
            .min_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0;
        assert_eq!(best, 7);
    }

    #[test]
    fn nan_pixels_are_dropped_like_nanmean() {
        let b = 16;
        let ms = models(b, 2);
        let mut c = cut(b, 1);
        let mut clean = c.clone();
        // A NaN in the data drops the term and the flux; a NaN noise drops the term only.
        let p = 8 * b + 8;
        c.obj[p] = f32::NAN;
        clean.seg[p] = false;
        let a = fit_batch(&ms, b, &[Prepared::new(&c, b, Path::new("t")).unwrap()]);
        let o = Prepared::new(&clean, b, Path::new("t")).unwrap();
        assert_eq!(o.flux, Prepared::new(&c, b, Path::new("t")).unwrap().flux);
        let want = chi_scalar(&o, &ms[..b * b], b);
        // The model flux still counts the NaN pixel, so s differs slightly: compare to the
        // scalar reference on the NaN cut itself instead.
        let on = Prepared::new(&c, b, Path::new("t")).unwrap();
        assert!((a[0][0] - chi_scalar(&on, &ms[..b * b], b)).abs() < 1e-6 * a[0][0]);
        assert!(a[0][0].is_finite() && want.is_finite());
    }

    #[test]
    fn empty_or_all_nan_segments_are_errors() {
        let b = 16;
        let mut c = cut(b, 0);
        c.seg.iter_mut().for_each(|s| *s = false);
        let e = Prepared::new(&c, b, Path::new("Cuts/t_cuts.h5")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Cuts/t_cuts.h5: object 00_0000: segment is empty"
        );
        let mut c = cut(b, 0);
        c.obj.iter_mut().for_each(|v| *v = f32::NAN);
        assert!(Prepared::new(&c, b, Path::new("t")).is_err());
        assert!(Prepared::new(&cut(b, 0), 32, Path::new("t")).is_err());
    }
}
