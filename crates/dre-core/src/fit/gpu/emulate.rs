//! The GPU kernels' arithmetic on the CPU, operation for operation (same operands, same
//! order, same roundings), so that the algorithm can be tested where there is no GPU and a
//! GPU's results can be checked bit for bit where there is one. Slow: for tests.

use super::kernels::WARP;
use super::pack::Packed;
use crate::io::psf::Psf;
use rayon::prelude::*;

/// `dre_conv_*` on every stamp of `models` (stamps of `b` x `b`): direct 'same'
/// convolution, PSF row outer, column inner, one fused multiply-add per step.
pub fn convolve(models: &[f32], b: usize, psf: &Psf) -> Vec<f32> {
    let (pw, ph) = (psf.width, psf.height);
    let (oy, ox) = ((ph - 1) / 2, (pw - 1) / 2);
    let mut out = vec![0f32; models.len()];
    out.par_chunks_mut(b * b)
        .zip(models.par_chunks(b * b))
        .for_each(|(dst, src)| {
            for y in 0..b {
                for x in 0..b {
                    let mut acc = 0f32;
                    for a in 0..ph {
                        for c in 0..pw {
                            let w = psf.data[a * pw + c];
                            let (iy, ix) = (
                                (y + oy) as isize - a as isize,
                                (x + ox) as isize - c as isize,
                            );
                            let inside =
                                iy >= 0 && ix >= 0 && (iy as usize) < b && (ix as usize) < b;
                            let v = if inside {
                                src[iy as usize * b + ix as usize]
                            } else {
                                0.0
                            };
                            acc = v.mul_add(w, acc);
                        }
                    }
                    dst[y * b + x] = acc;
                }
            }
        });
    out
}

/// The butterfly of `__shfl_xor_sync` with offsets 16, 8, 4, 2, 1: every lane ends with
/// the same total; lane 0's is returned.
fn warp_sum<T: Copy + std::ops::Add<Output = T>>(mut v: [T; WARP]) -> T {
    let mut o = WARP / 2;
    while o > 0 {
        let prev = v;
        for (i, x) in v.iter_mut().enumerate() {
            *x = prev[i] + prev[i ^ o];
        }
        o /= 2;
    }
    v[0]
}

/// One warp of `dre_fit_*`: object `j` of `p` against one model stamp.
pub fn chi(p: &Packed, j: usize, m: &[f32]) -> f32 {
    let r = p.range(j);
    let mut fk = [0f32; WARP];
    for (i, q) in r.clone().enumerate() {
        fk[i % WARP] += m[p.pix[q] as usize];
    }
    let fk = warp_sum(fk);
    if fk == 0.0 {
        return f32::NAN;
    }
    let s = p.flux[j] / fk;
    let (mut sum, mut n) = ([0f32; WARP], [0u32; WARP]);
    for (i, q) in r.enumerate() {
        let sm = s * m[p.pix[q] as usize];
        let diff = p.dat[q] - sm;
        let t = diff * diff / (sm + p.r2[q]);
        if !t.is_nan() {
            sum[i % WARP] += t;
            n[i % WARP] += 1;
        }
    }
    (warp_sum(sum) as f64 / warp_sum(n) as f64) as f32
}

/// `dre_fit_*` on a whole batch: `chi[j * n_models + k]`.
pub fn fit(models: &[f32], stamp: usize, p: &Packed) -> Vec<f32> {
    let n_models = models.len() / stamp;
    let mut out = vec![0f32; p.n_objects() * n_models];
    out.par_chunks_mut(n_models.max(1))
        .enumerate()
        .for_each(|(j, row)| {
            for (k, m) in models.chunks_exact(stamp).enumerate() {
                row[k] = chi(p, j, m);
            }
        });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn butterfly_sums_every_lane() {
        let v: [u32; WARP] = std::array::from_fn(|i| i as u32);
        assert_eq!(warp_sum(v), (0..32).sum::<u32>());
        let f: [f32; WARP] = std::array::from_fn(|i| 0.1 * i as f32);
        assert!((warp_sum(f) - 49.6).abs() < 1e-4);
    }

    #[test]
    fn convolution_with_a_delta_is_the_identity_and_shifts_follow_scipy() {
        let b = 5;
        let img: Vec<f32> = (0..b * b).map(|i| i as f32).collect();
        let delta = Psf {
            width: 3,
            height: 3,
            data: vec![0., 0., 0., 0., 1., 0., 0., 0., 0.],
        };
        assert_eq!(convolve(&img, b, &delta), img);
        // An even 2x2 kernel with its weight at [0][0]: 'same' window starts at (0, 0), so
        // out[y][x] = in[y][x].
        let corner = Psf {
            width: 2,
            height: 2,
            data: vec![1., 0., 0., 0.],
        };
        assert_eq!(convolve(&img, b, &corner), img);
        // Weight at [1][1]: out[y][x] = in[y-1][x-1], zero on the first row and column.
        let shift = Psf {
            width: 2,
            height: 2,
            data: vec![0., 0., 0., 1.],
        };
        let out = convolve(&img, b, &shift);
        assert_eq!(out[0], 0.0);
        assert_eq!(out[b + 1], img[0]);
        assert_eq!(out[4 * b + 4], img[3 * b + 3]);
    }
}
