//! The chi-square fit (SPEC 4): for every object and every convolved model k, over the
//! pixels p of the object's segment,
//!
//! ```text
//! F_d = nansum_p d_p,  F_k = sum_p m_kp,  s_k = F_d / F_k,
//! chi_k = nanmean_p (d_p - s_k m_kp)^2 / (s_k m_kp + rms_p^2)
//! ```
//!
//! The kernel works on the segment's bounding box, widened to a multiple of [`LANES`]
//! columns so every row is whole SIMD vectors; pixels outside the segment, where the data
//! are NaN (the terms numpy's nanmean drops) or where the noise is not a positive finite
//! number (rms <= 0 would weigh a pixel infinitely, a NaN or infinite rms means no noise
//! estimate) are masked. An infinite data pixel under the segment refuses the object: its
//! flux, and so every chi, would be NaN.
//! Objects are fitted in batches: each pass over a block of models serves every object of the
//! batch while the block is in cache, and blocks run in parallel on the rayon pool.

use crate::error::{Error, Result};
use crate::io::cuts::Cut;
use crate::model::cube::Twins;
use rayon::prelude::*;
use std::path::Path;

/// SIMD width the kernel is written for (8 f32 = one AVX register).
pub const LANES: usize = 8;

/// Models per cache block: 8 stamps of 128x128 f32 = 512 KiB, within a core's L2.
const BLOCK: usize = 8;

/// One row of an object's segment: `len` pixels starting at `model` in the stamp and at
/// `data` in the packed arrays.
#[derive(Clone, Copy, Debug)]
struct Span {
    model: usize,
    data: usize,
    len: usize,
}

/// An object ready for the kernel.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// The object's name, `EE_NNNN`.
    pub name: String,
    /// Per row of the segment, its extent widened to whole SIMD vectors.
    spans: Vec<Span>,
    /// Packed over the spans: data (0 where masked), rms^2 (1 where masked), the segment
    /// (1 inside), and 1 where the term counts (segment, finite data and noise).
    d: Vec<f32>,
    r2: Vec<f32>,
    seg: Vec<f32>,
    keep: Vec<f32>,
    /// Number of counted terms.
    n_keep: usize,
    /// F_d, the nansum of the data over the segment.
    pub flux: f32,
    /// Number of segment pixels.
    pub n_seg: usize,
    /// Segment pixels left out for their noise (rms <= 0, NaN or infinite).
    pub bad_rms: usize,
    /// Segment pixels left out for NaN data (numpy's nanmean drops them too).
    pub nan_data: usize,
    /// Pixels in a stamp: every span lies within it.
    stamp: usize,
    /// Whether the segment reaches the cut's border (`DRE_FLAGS` bit 64).
    pub seg_at_edge: bool,
}

impl Prepared {
    /// Checks a cut against the cube's stamp size and packs its segment. An empty segment,
    /// an infinite data pixel in it, or no pixel in it with finite data and a positive
    /// finite rms cannot be fitted; each says which.
    pub fn new(cut: &Cut, boxsize: usize, file: &Path) -> Result<Prepared> {
        let b = boxsize;
        if cut.size != b {
            return Err(Error::object(
                file,
                &cut.name,
                format!("cut is {0}x{0} but the model stamps are {b}x{b}", cut.size),
            ));
        }
        Prepared::from_stamps(&cut.name, &cut.obj, &cut.seg, &cut.rms, b, file)
    }

    /// As [`Prepared::new`], from a cut's three stamps (row-major, boxsize x boxsize each)
    /// borrowed where they lie, e.g. in a caller's larger array.
    pub fn from_stamps(
        name: &str,
        obj: &[f32],
        seg: &[bool],
        rms: &[f32],
        boxsize: usize,
        file: &Path,
    ) -> Result<Prepared> {
        let b = boxsize;
        // A hand-made cut (its fields are public) or a caller's slices may be short.
        let n = b * b;
        if obj.len() != n || seg.len() != n || rms.len() != n {
            return Err(Error::object(
                file,
                name,
                format!(
                    "cut holds {} obj, {} seg and {} rms values, not {b}x{b}",
                    obj.len(),
                    seg.len(),
                    rms.len()
                ),
            ));
        }
        let mut p = Prepared {
            name: name.to_string(),
            spans: Vec::new(),
            d: Vec::new(),
            r2: Vec::new(),
            seg: Vec::new(),
            keep: Vec::new(),
            n_keep: 0,
            flux: 0.0,
            n_seg: 0,
            bad_rms: 0,
            nan_data: 0,
            stamp: b * b,
            seg_at_edge: false,
        };
        let mut flux = 0f64;
        let (mut inf_data, mut first_inf, mut rms_not_positive) = (0, None, 0);
        for y in 0..b {
            let row = &seg[y * b..(y + 1) * b];
            let (Some(first), Some(last)) =
                (row.iter().position(|&s| s), row.iter().rposition(|&s| s))
            else {
                continue;
            };
            p.seg_at_edge |= y == 0 || y == b - 1 || first == 0 || last == b - 1;
            let len = ((last - first + 1).div_ceil(LANES) * LANES).min(b);
            let x0 = first.min(b - len);
            p.spans.push(Span {
                model: y * b + x0,
                data: p.d.len(),
                len,
            });
            for x in x0..x0 + len {
                let q = y * b + x;
                let (inside, dq, rq) = (seg[q], obj[q], rms[q]);
                let rms_ok = rq.is_finite() && rq > 0.0;
                let counted = inside && !dq.is_nan() && rms_ok;
                if inside {
                    p.n_seg += 1;
                    if !dq.is_nan() {
                        flux += dq as f64;
                    }
                    p.nan_data += dq.is_nan() as usize;
                    if dq.is_infinite() {
                        inf_data += 1;
                        first_inf.get_or_insert((x, y));
                    }
                    p.bad_rms += !rms_ok as usize;
                    rms_not_positive += (rq <= 0.0) as usize;
                }
                p.seg.push(if inside { 1.0 } else { 0.0 });
                p.keep.push(if counted { 1.0 } else { 0.0 });
                p.d.push(if counted { dq } else { 0.0 });
                p.r2.push(if counted { rq * rq } else { 1.0 });
                p.n_keep += counted as usize;
            }
        }
        if p.n_seg == 0 {
            return Err(Error::object(file, name, "segment is empty"));
        }
        if let Some((x, y)) = first_inf {
            return Err(Error::object(
                file,
                name,
                format!(
                    "{inf_data} infinite data pixels in its segment, the first at (x, y) = \
                     ({x}, {y}) of the cut: its flux, and every chi, would be NaN"
                ),
            ));
        }
        if p.bad_rms == p.n_seg {
            return Err(Error::object(
                file,
                name,
                format!(
                    "no pixel of its segment has a positive finite rms ({} of {} zero or \
                     negative, {} NaN or infinite)",
                    rms_not_positive,
                    p.n_seg,
                    p.n_seg - rms_not_positive
                ),
            ));
        }
        if p.n_keep == 0 {
            let msg = if p.nan_data == p.n_seg {
                "no pixel of its segment has finite data and noise (all NaN)".to_string()
            } else {
                format!(
                    "no pixel of its segment has both data and a positive finite rms \
                     ({} NaN data, {} rms <= 0 or not finite, of {})",
                    p.nan_data, p.bad_rms, p.n_seg
                )
            };
            return Err(Error::object(file, name, msg));
        }
        p.flux = flux as f32;
        Ok(p)
    }

    /// `NPIX`: the pixels counted in the chi-square (segment, finite data, positive finite
    /// rms); the object's chi-square is `CHI x NPIX`.
    pub fn n_pix(&self) -> usize {
        self.n_keep
    }

    /// The segment's pixels row by row, for other kernels (the GPU, the refinement): (index
    /// in the stamp, data, rms^2, counted), counted = non-NaN data and a positive finite rms
    /// (masked: data 0, rms^2 1).
    pub(crate) fn segment_pixels(&self) -> impl Iterator<Item = (usize, f32, f32, bool)> + '_ {
        self.spans.iter().flat_map(move |sp| {
            (0..sp.len).filter_map(move |i| {
                let q = sp.data + i;
                (self.seg[q] != 0.0)
                    .then(|| (sp.model + i, self.d[q], self.r2[q], self.keep[q] != 0.0))
            })
        })
    }

    /// Pixels in the stamps this object was prepared for.
    pub(crate) fn stamp_len(&self) -> usize {
        self.stamp
    }

    /// The model flux over the segment, F_k.
    #[inline(always)]
    fn model_flux(&self, model: &[f32]) -> f32 {
        let mut acc = [0f32; LANES];
        for sp in &self.spans {
            let m = &model[sp.model..sp.model + sp.len];
            let s = &self.seg[sp.data..sp.data + sp.len];
            let (mc, sc) = (m.chunks_exact(LANES), s.chunks_exact(LANES));
            for (m, s) in mc.remainder().iter().zip(sc.remainder()) {
                acc[0] += m * s;
            }
            for (m, s) in mc.zip(sc) {
                // chunks_exact(LANES) yields slices of exactly LANES values.
                let (m, s): (&[f32; LANES], &[f32; LANES]) =
                    (m.try_into().unwrap(), s.try_into().unwrap());
                for l in 0..LANES {
                    acc[l] += m[l] * s[l];
                }
            }
        }
        acc.iter().sum()
    }

    /// The flux scale s_k = F_d / F_k of a (convolved) model.
    pub fn scale(&self, model: &[f32]) -> f32 {
        self.flux / self.model_flux(model)
    }

    /// Chi-square against one model, numpy's nanmean semantics: every term is computed and
    /// the NaN ones dropped. The reference the fast kernel falls back on.
    fn chi_exact(&self, model: &[f32]) -> f32 {
        let s = self.scale(model);
        let (mut sum, mut n) = (0f64, 0usize);
        for sp in &self.spans {
            for i in 0..sp.len {
                let q = sp.data + i;
                if self.keep[q] == 0.0 {
                    continue;
                }
                let t = term(s, model[sp.model + i], self.d[q], self.r2[q]);
                if !t.is_nan() {
                    sum += t as f64;
                    n += 1;
                }
            }
        }
        (sum / n as f64) as f32
    }

    /// Chi-square against one model. Masked pixels hold d = 0, rms^2 = 1, so with s >= 0
    /// and positive noise no term is NaN and a multiply by `keep` masks them; a non-finite
    /// total (negative flux, zero noise) is recomputed term by term.
    #[inline(always)]
    fn chi(&self, model: &[f32]) -> f32 {
        let fk = self.model_flux(model);
        if fk == 0.0 {
            return f32::NAN;
        }
        let s = self.flux / fk;
        let mut acc = [0f32; LANES];
        for sp in &self.spans {
            let r = sp.data..sp.data + sp.len;
            let m = &model[sp.model..sp.model + sp.len];
            let (d, r2, k) = (&self.d[r.clone()], &self.r2[r.clone()], &self.keep[r]);
            let whole = sp.len - sp.len % LANES;
            for i in whole..sp.len {
                acc[0] += term(s, m[i], d[i], r2[i]) * k[i];
            }
            for (((m, d), r2), k) in m
                .chunks_exact(LANES)
                .zip(d.chunks_exact(LANES))
                .zip(r2.chunks_exact(LANES))
                .zip(k.chunks_exact(LANES))
            {
                // chunks_exact(LANES) yields slices of exactly LANES values.
                let m: &[f32; LANES] = m.try_into().unwrap();
                let d: &[f32; LANES] = d.try_into().unwrap();
                let r2: &[f32; LANES] = r2.try_into().unwrap();
                let k: &[f32; LANES] = k.try_into().unwrap();
                for l in 0..LANES {
                    acc[l] += term(s, m[l], d[l], r2[l]) * k[l];
                }
            }
        }
        let total: f64 = acc.iter().map(|&v| v as f64).sum();
        if !total.is_finite() {
            return self.chi_exact(model);
        }
        (total / self.n_keep as f64) as f32
    }
}

/// One warning line per cut file for the objects fitted without some of their segment's
/// pixels (rms <= 0 or not finite, NaN data), naming the first few; None if there are none.
pub(crate) fn masked_pixels_warning(
    file: &Path,
    objects: &[(String, usize, usize)],
) -> Option<String> {
    const SHOWN: usize = 5;
    let hit: Vec<&(String, usize, usize)> = objects
        .iter()
        .filter(|(_, rms, nan)| rms + nan > 0)
        .collect();
    if hit.is_empty() {
        return None;
    }
    let (rms, nan): (usize, usize) = hit.iter().fold((0, 0), |(a, b), o| (a + o.1, b + o.2));
    let mut names: Vec<&str> = hit.iter().take(SHOWN).map(|o| o.0.as_str()).collect();
    let more = format!("{} more", hit.len().saturating_sub(SHOWN));
    if hit.len() > SHOWN {
        names.push(&more);
    }
    let mut why = Vec::new();
    if rms > 0 {
        why.push(format!("{rms} with an rms <= 0 or not finite"));
    }
    if nan > 0 {
        why.push(format!("{nan} with NaN data"));
    }
    Some(format!(
        "{}: {} objects ({}) were fitted without some segment pixels ({}): those pixels \
         are left out of their fit",
        file.display(),
        hit.len(),
        names.join(", "),
        why.join(", ")
    ))
}

/// One chi term, (d - s m)^2 / (s m + rms^2), in the original's order of operations.
#[inline(always)]
fn term(s: f32, m: f32, d: f32, r2: f32) -> f32 {
    let sm = s * m;
    let diff = d - sm;
    diff * diff / (sm + r2)
}

/// Fills `out[kk * objects.len() + j]` with the chi of object j against model `kk` of the
/// block. Objects outside, models inside: an object's packed pixels stay in L1 while the
/// block's models stay in L2.
fn fit_block(
    models: &[f32],
    k0: usize,
    twins: &Twins,
    stamp: usize,
    objects: &[Prepared],
    out: &mut [f32],
) {
    let nb = objects.len();
    // The block's models that are fitted (the others are copied from their twins).
    let firsts: Vec<usize> = (0..models.len() / stamp)
        .filter(|&kk| twins.is_first(k0 + kk))
        .collect();
    let model = |kk: usize| &models[kk * stamp..(kk + 1) * stamp];
    #[cfg(target_arch = "x86_64")]
    let avx2 =
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma");
    for (j, o) in objects.iter().enumerate() {
        // `CpuFitter::fit` refuses such objects with an error; this guards the unsafe AVX2
        // reads below, which rely on it.
        assert_eq!(o.stamp, stamp, "object prepared for another stamp size");
        #[cfg(target_arch = "x86_64")]
        if avx2 {
            for group in firsts.chunks(avx2::GROUP) {
                // A short last group repeats its last model (computed again, not kept).
                let ms: [&[f32]; avx2::GROUP] =
                    std::array::from_fn(|g| model(group[g.min(group.len() - 1)]));
                // SAFETY: the CPU has AVX2 and FMA, and every model holds `o.stamp` pixels.
                let chis = unsafe { avx2::chi(o, &ms) };
                for (&kk, chi) in group.iter().zip(chis) {
                    out[kk * nb + j] = chi;
                }
            }
            continue;
        }
        for &kk in &firsts {
            out[kk * nb + j] = o.chi(model(kk));
        }
    }
}

/// The kernel in AVX2 intrinsics: 8 pixels per step, and the division replaced by the
/// hardware reciprocal refined by one Newton step (within 2 ulp of the quotient, far below
/// the float32 FFT rounding of the models), about twice as fast as `vdivps`.
///
/// [`GROUP`] models at a time: segments are short rows (a typical one, 25 rows of 17
/// pixels, is three vectors a row), so one model at a time spends as much on each row's
/// loop and on loading the object's pixels as on the arithmetic, and every step waits on
/// its accumulator's latency. Each model keeps its own accumulator summed in the order of
/// the one-model kernel, so the chi values are the same bit for bit.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{Prepared, LANES};
    use std::arch::x86_64::*;

    /// Models fitted together: their flux scales, accumulators and the object's three
    /// vectors fill the 16 AVX registers.
    pub const GROUP: usize = 4;

    #[target_feature(enable = "avx2,fma")]
    unsafe fn hsum(v: __m256) -> f32 {
        let mut a = [0f32; LANES];
        _mm256_storeu_ps(a.as_mut_ptr(), v);
        a.iter().sum()
    }

    /// The chi of `o` against each of `models`.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA; every model holds `o.stamp` pixels.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn chi(o: &Prepared, models: &[&[f32]; GROUP]) -> [f32; GROUP] {
        debug_assert!(models.iter().all(|m| m.len() == o.stamp));
        let mp: [*const f32; GROUP] = std::array::from_fn(|g| models[g].as_ptr());
        let mut acc = [_mm256_setzero_ps(); GROUP];
        let mut tail = [0f32; GROUP];
        for sp in &o.spans {
            let sg = o.seg.as_ptr().add(sp.data);
            let whole = sp.len - sp.len % LANES;
            let mut i = 0;
            while i < whole {
                let g = _mm256_loadu_ps(sg.add(i));
                for (a, m) in acc.iter_mut().zip(mp) {
                    *a = _mm256_fmadd_ps(_mm256_loadu_ps(m.add(sp.model + i)), g, *a);
                }
                i += LANES;
            }
            for i in whole..sp.len {
                for (t, m) in tail.iter_mut().zip(mp) {
                    *t += *m.add(sp.model + i) * *sg.add(i);
                }
            }
        }
        let mut s = [0f32; GROUP];
        let mut none = [false; GROUP];
        for g in 0..GROUP {
            let fk = hsum(acc[g]) + tail[g];
            none[g] = fk == 0.0;
            s[g] = o.flux / fk;
        }
        let sv: [__m256; GROUP] = std::array::from_fn(|g| _mm256_set1_ps(s[g]));
        let two = _mm256_set1_ps(2.0);
        let mut acc = [_mm256_setzero_ps(); GROUP];
        let mut tail = [0f32; GROUP];
        for sp in &o.spans {
            let (d, r2, k) = (
                o.d.as_ptr().add(sp.data),
                o.r2.as_ptr().add(sp.data),
                o.keep.as_ptr().add(sp.data),
            );
            let whole = sp.len - sp.len % LANES;
            let mut i = 0;
            while i < whole {
                let (dv, r2v, kv) = (
                    _mm256_loadu_ps(d.add(i)),
                    _mm256_loadu_ps(r2.add(i)),
                    _mm256_loadu_ps(k.add(i)),
                );
                for g in 0..GROUP {
                    let sm = _mm256_mul_ps(sv[g], _mm256_loadu_ps(mp[g].add(sp.model + i)));
                    let diff = _mm256_sub_ps(dv, sm);
                    let den = _mm256_add_ps(sm, r2v);
                    let r = _mm256_rcp_ps(den);
                    let r = _mm256_mul_ps(r, _mm256_fnmadd_ps(den, r, two));
                    let t = _mm256_mul_ps(_mm256_mul_ps(diff, diff), r);
                    acc[g] = _mm256_fmadd_ps(t, kv, acc[g]);
                }
                i += LANES;
            }
            for i in whole..sp.len {
                for g in 0..GROUP {
                    let m = *mp[g].add(sp.model + i);
                    tail[g] += super::term(s[g], m, *d.add(i), *r2.add(i)) * *k.add(i);
                }
            }
        }
        std::array::from_fn(|g| {
            if none[g] {
                return f32::NAN;
            }
            let total = hsum(acc[g]) as f64 + tail[g] as f64;
            if !total.is_finite() {
                return o.chi_exact(models[g]);
            }
            (total / o.n_keep as f64) as f32
        })
    }
}

/// Chi cubes of a batch of objects against every model of a convolved cube: `result[j]` is
/// object j's cube, flat in the cube's C order (n, q, theta, logr). Twin models are fitted
/// once and copied.
pub(crate) fn fit_batch(
    models: &[f32],
    boxsize: usize,
    objects: &[Prepared],
    twins: &Twins,
) -> Vec<Vec<f32>> {
    let stamp = boxsize * boxsize;
    let n_models = models.len() / stamp;
    debug_assert_eq!(twins.len(), n_models, "twins of another cube");
    let nb = objects.len();
    if nb == 0 {
        return Vec::new();
    }
    let mut by_model = vec![0f32; n_models * nb];
    by_model
        .par_chunks_mut(BLOCK * nb)
        .zip(models.par_chunks(BLOCK * stamp))
        .enumerate()
        .for_each(|(blk, (out, block))| fit_block(block, blk * BLOCK, twins, stamp, objects, out));
    twins.fill(&mut by_model, nb);
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
    fn npix_and_segment_at_the_cut_edge() {
        let b = 30;
        let small = Prepared::new(&cut(b, 0), b, Path::new("t")).unwrap();
        assert!(!small.seg_at_edge);
        assert_eq!(small.n_pix(), small.n_seg);
        // seed 400: radius^2 < 430 reaches the border of a 30 px cut.
        assert!(
            Prepared::new(&cut(b, 400), b, Path::new("t"))
                .unwrap()
                .seg_at_edge
        );
        let mut c = cut(b, 0);
        c.rms[(b / 2) * b + b / 2] = 0.0;
        c.seg[b - 1] = true; // one pixel in the first row's last column
        let p = Prepared::new(&c, b, Path::new("t")).unwrap();
        assert!(p.seg_at_edge);
        assert_eq!(p.n_pix(), small.n_pix());
    }

    #[test]
    fn stamps_borrowed_from_a_batch_pack_as_their_cut() {
        let b = 30;
        let cuts = [cut(b, 0), cut(b, 400)];
        let obj: Vec<f32> = cuts.iter().flat_map(|c| c.obj.clone()).collect();
        let seg: Vec<bool> = cuts.iter().flat_map(|c| c.seg.clone()).collect();
        let rms: Vec<f32> = cuts.iter().flat_map(|c| c.rms.clone()).collect();
        for (i, c) in cuts.iter().enumerate() {
            let at = i * b * b..(i + 1) * b * b;
            let (o, s, r) = (&obj[at.clone()], &seg[at.clone()], &rms[at]);
            let p = Prepared::from_stamps(&c.name, o, s, r, b, Path::new("t")).unwrap();
            let want = Prepared::new(c, b, Path::new("t")).unwrap();
            assert_eq!(format!("{p:?}"), format!("{want:?}"));
        }
        let short = Prepared::from_stamps("7", &obj[1..b * b], &seg, &rms, b, Path::new("t.h5"));
        assert_eq!(
            short.unwrap_err().to_string(),
            "t.h5: object 7: cut holds 899 obj, 1800 seg and 1800 rms values, not 30x30"
        );
    }

    #[test]
    fn kernel_matches_the_definition() {
        // 30 is not a multiple of LANES: the row tails are exercised. 19 models: the last
        // group of the AVX2 kernel is short. Model 10, all zeros, has no flux: its chi is
        // NaN and its group's others are unaffected.
        let b = 30;
        let mut ms = models(b, 19);
        ms[10 * b * b..11 * b * b].fill(0.0);
        let objs: Vec<Prepared> = [0, 1, 2, 3, 400] // the last spans the whole box
            .into_iter()
            .map(|s| Prepared::new(&cut(b, s), b, Path::new("t.h5")).unwrap())
            .collect();
        let chi = fit_batch(&ms, b, &objs, &Twins::none(19));
        for (o, cube) in objs.iter().zip(&chi) {
            for (k, &c) in cube.iter().enumerate() {
                if k == 10 {
                    assert!(c.is_nan(), "a model of zeros has chi {c}");
                    continue;
                }
                let want = o.chi_exact(&ms[k * b * b..(k + 1) * b * b]);
                assert!((c - want).abs() <= 2e-6 * want.abs(), "{c} vs {want}");
            }
        }
        // The portable kernel (machines without AVX2) agrees too.
        for o in &objs {
            for k in (0..19).filter(|&k| k != 10) {
                let m = &ms[k * b * b..(k + 1) * b * b];
                let (got, want) = (o.chi(m), o.chi_exact(m));
                assert!((got - want).abs() <= 2e-6 * want.abs(), "{got} vs {want}");
            }
            assert!(o.chi(&ms[10 * b * b..11 * b * b]).is_nan());
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

    /// SPEC 4 written as numpy does it, on the whole stamp: the independent reference.
    /// Pixels whose rms is not a positive finite number are left out of the terms (not of
    /// the fluxes): numpy's formula would weigh them infinitely or not at all.
    fn numpy_chi(c: &Cut, model: &[f32]) -> f32 {
        let idx: Vec<usize> = (0..c.seg.len()).filter(|&p| c.seg[p]).collect();
        let fd: f32 = idx.iter().map(|&p| c.obj[p]).filter(|v| !v.is_nan()).sum();
        let fk: f32 = idx.iter().map(|&p| model[p]).sum();
        let s = fd / fk;
        let terms: Vec<f32> = idx
            .iter()
            .filter(|&&p| c.rms[p].is_finite() && c.rms[p] > 0.0)
            .map(|&p| (c.obj[p] - s * model[p]).powi(2) / (s * model[p] + c.rms[p] * c.rms[p]))
            .filter(|t| !t.is_nan())
            .collect();
        terms.iter().sum::<f32>() / terms.len() as f32
    }

    fn assert_like_numpy(c: &Cut, ms: &[f32], b: usize) {
        let n = ms.len() / (b * b);
        let chi = fit_batch(
            ms,
            b,
            &[Prepared::new(c, b, Path::new("t")).unwrap()],
            &Twins::none(n),
        );
        for (k, &got) in chi[0].iter().enumerate() {
            let want = numpy_chi(c, &ms[k * b * b..(k + 1) * b * b]);
            let same = (got.is_nan() && want.is_nan())
                || got == want
                || (got - want).abs() <= 1e-5 * want.abs();
            assert!(same, "model {k}: {got} vs numpy {want}");
        }
    }

    #[test]
    fn nan_pixels_are_dropped_like_nanmean() {
        let b = 16;
        let ms = models(b, 6);
        let mut c = cut(b, 1);
        // A NaN in the data drops the term and the flux; a NaN noise drops the term only.
        c.obj[8 * b + 8] = f32::NAN;
        c.rms[7 * b + 8] = f32::NAN;
        assert_like_numpy(&c, &ms, b);
    }

    #[test]
    fn negative_flux_follows_numpy_and_bad_noise_is_masked() {
        let b = 16;
        let ms = models(b, 6);
        // Negative total flux: s < 0, denominators can cross zero (the exact fallback).
        let mut c = cut(b, 2);
        c.obj.iter_mut().for_each(|v| *v = -*v);
        assert_like_numpy(&c, &ms, b);
        // Zero, negative and infinite noise: those pixels are left out, and counted.
        let mut c = cut(b, 3);
        c.rms[8 * b + 8] = 0.0;
        c.rms[8 * b + 9] = -0.7;
        c.rms[9 * b + 8] = f32::INFINITY;
        c.obj[7 * b + 7] = f32::NAN;
        assert_like_numpy(&c, &ms, b);
        let p = Prepared::new(&c, b, Path::new("t")).unwrap();
        assert_eq!((p.bad_rms, p.nan_data), (3, 1));
        // Masking a pixel is the same as cutting it out of the segment, fluxes aside.
        let mut out = c.clone();
        for q in [8 * b + 8, 8 * b + 9, 9 * b + 8] {
            out.rms[q] = 0.7;
        }
        let (chi, chi_ok) = (
            fit_batch(&ms, b, &[p], &Twins::none(6)),
            fit_batch(
                &ms,
                b,
                &[Prepared::new(&out, b, Path::new("t")).unwrap()],
                &Twins::none(6),
            ),
        );
        assert_ne!(chi, chi_ok);
    }

    #[test]
    fn objects_without_usable_noise_or_with_infinite_data_say_so() {
        let b = 16;
        let msg = |c: &Cut| {
            Prepared::new(c, b, Path::new("Cuts/t_cuts.h5"))
                .unwrap_err()
                .to_string()
        };
        let mut c = cut(b, 0);
        let n_seg = c.seg.iter().filter(|&&s| s).count();
        c.rms.iter_mut().for_each(|v| *v = 0.0);
        c.rms[0] = f32::NAN; // outside the segment: not counted
        assert_eq!(
            msg(&c),
            format!(
                "Cuts/t_cuts.h5: object 00_0000: no pixel of its segment has a positive \
                 finite rms ({n_seg} of {n_seg} zero or negative, 0 NaN or infinite)"
            )
        );
        let centre = 7 * b + 7;
        assert!(c.seg[centre]);
        c.rms[centre] = f32::NAN;
        assert!(msg(&c).ends_with(&format!(
            "({} of {n_seg} zero or negative, 1 NaN or infinite)",
            n_seg - 1
        )));
        let mut c = cut(b, 0);
        c.obj[centre] = f32::INFINITY;
        c.obj[centre + 1] = f32::NEG_INFINITY;
        assert_eq!(
            msg(&c),
            "Cuts/t_cuts.h5: object 00_0000: 2 infinite data pixels in its segment, the \
             first at (x, y) = (7, 7) of the cut: its flux, and every chi, would be NaN"
        );
        // NaN data where the noise is good, bad noise where the data are good.
        let mut c = cut(b, 0);
        for q in 0..b * b {
            if q % 2 == 0 {
                c.obj[q] = f32::NAN;
            } else {
                c.rms[q] = -1.0;
            }
        }
        assert!(msg(&c).contains("no pixel of its segment has both data and a positive finite rms"));
    }

    #[test]
    fn one_warning_per_file_names_the_masked_objects() {
        let objs: Vec<(String, usize, usize)> = (1..=7)
            .map(|k| (format!("00_000{k}"), k % 2, (k == 4) as usize))
            .collect();
        assert_eq!(
            masked_pixels_warning(Path::new("Cuts/t_cuts.h5"), &objs).unwrap(),
            "Cuts/t_cuts.h5: 5 objects (00_0001, 00_0003, 00_0004, 00_0005, 00_0007) were \
             fitted without some segment pixels (4 with an rms <= 0 or not finite, 1 with NaN \
             data): those pixels are left out of their fit"
        );
        assert_eq!(
            masked_pixels_warning(Path::new("t"), &[("00_0001".into(), 0, 0)]),
            None
        );
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
