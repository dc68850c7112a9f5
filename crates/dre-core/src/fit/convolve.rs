//! 'Same'-size linear convolution of every stamp of a cube with the tile's PSF, as scipy's
//! `fftconvolve(model, psf, mode='same')`: zero-pad, multiply spectra, and crop the centred
//! BOX x BOX window, which starts at o = (P - 1) / 2 on each axis. Only that window must be
//! free of wrap-around, so the FFT size need only be the 5-smooth size at least
//! max(BOX + P - 1 - o, BOX + o) (144 for 128 and 25, where the full 152 would take 160).
//!
//! 2-D real FFT = real FFTs along rows (realfft) + complex FFTs along columns (rustfft, all
//! columns in one batched call on a transposed buffer). Plans and the PSF spectrum are made
//! once per tile; each thread has its own scratch buffers.

use crate::error::{Error, Result};
use crate::io::psf::Psf;
use crate::model::cube::{ModelCube, Twins};
use rayon::prelude::*;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};
use std::sync::Arc;

/// A PSF ready to convolve stamps of one size.
pub struct Convolver {
    boxsize: usize,
    /// FFT sizes along y (columns) and x (rows).
    ny: usize,
    nx: usize,
    /// Crop offsets of the 'same' window.
    oy: usize,
    ox: usize,
    row_fwd: Arc<dyn RealToComplex<f32>>,
    row_inv: Arc<dyn ComplexToReal<f32>>,
    col_fwd: Arc<dyn Fft<f32>>,
    col_inv: Arc<dyn Fft<f32>>,
    /// PSF spectrum scaled by 1/(nx*ny), transposed: index `c * ny + r`.
    psf_hat: Vec<Complex<f32>>,
}

/// Per-thread work space.
pub struct Scratch {
    row: Vec<f32>,
    row_hat: Vec<Complex<f32>>,
    spec: Vec<Complex<f32>>,
    fft: Vec<Complex<f32>>,
}

/// Smallest n >= m whose only prime factors are 2, 3 and 5.
fn smooth_size(m: usize) -> usize {
    (m.max(1)..)
        .find(|&n| {
            let mut k = n;
            for p in [2, 3, 5] {
                while k % p == 0 {
                    k /= p;
                }
            }
            k == 1
        })
        .unwrap_or(m)
}

impl Convolver {
    /// Fails when the PSF is larger than the stamps ('same' mode would crop the model).
    pub fn new(psf: &Psf, boxsize: usize) -> Result<Self> {
        psf.check_shape()?;
        if psf.width > boxsize || psf.height > boxsize {
            return Err(Error::Invalid(format!(
                "PSF of {}x{} pixels is larger than the {boxsize}x{boxsize} model stamps",
                psf.height, psf.width
            )));
        }
        let size = |p: usize| {
            let o = (p - 1) / 2;
            smooth_size((boxsize + p - 1 - o).max(boxsize + o))
        };
        let (ny, nx) = (size(psf.height), size(psf.width));
        let mut real_planner = RealFftPlanner::<f32>::new();
        let mut planner = FftPlanner::<f32>::new();
        let mut conv = Convolver {
            boxsize,
            ny,
            nx,
            oy: (psf.height - 1) / 2,
            ox: (psf.width - 1) / 2,
            row_fwd: real_planner.plan_fft_forward(nx),
            row_inv: real_planner.plan_fft_inverse(nx),
            col_fwd: planner.plan_fft_forward(ny),
            col_inv: planner.plan_fft_inverse(ny),
            psf_hat: Vec::new(),
        };
        let mut s = conv.scratch();
        conv.forward(&psf.data, psf.width, psf.height, &mut s);
        let scale = 1.0 / (nx * ny) as f32;
        conv.psf_hat = s.spec.iter().map(|c| c * scale).collect();
        Ok(conv)
    }

    pub fn scratch(&self) -> Scratch {
        let nxc = self.nx / 2 + 1;
        let fft_len = self
            .row_fwd
            .get_scratch_len()
            .max(self.row_inv.get_scratch_len())
            .max(self.col_fwd.get_inplace_scratch_len())
            .max(self.col_inv.get_inplace_scratch_len());
        Scratch {
            row: vec![0.0; self.nx],
            row_hat: vec![Complex::default(); nxc],
            spec: vec![Complex::default(); nxc * self.ny],
            fft: vec![Complex::default(); fft_len],
        }
    }

    /// 2-D spectrum of a w x h image zero-padded to ny x nx, into `s.spec` (transposed).
    fn forward(&self, img: &[f32], w: usize, h: usize, s: &mut Scratch) {
        let ny = self.ny;
        s.spec.fill(Complex::default());
        for r in 0..h {
            s.row[..w].copy_from_slice(&img[r * w..(r + 1) * w]);
            s.row[w..].fill(0.0);
            // realfft fails only on buffer lengths, and `scratch()` sized these from the plan.
            self.row_fwd
                .process_with_scratch(&mut s.row, &mut s.row_hat, &mut s.fft)
                .expect("buffer sizes come from the plan");
            for (c, v) in s.row_hat.iter().enumerate() {
                s.spec[c * ny + r] = *v;
            }
        }
        self.col_fwd.process_with_scratch(&mut s.spec, &mut s.fft);
    }

    /// Convolves one BOX x BOX stamp in place.
    pub fn convolve(&self, stamp: &mut [f32], s: &mut Scratch) {
        self.forward(stamp, self.boxsize, self.boxsize, s);
        self.inverse(stamp, s);
    }

    /// Convolves the BOX x BOX stamp `src` into `dst`.
    pub fn convolve_into(&self, src: &[f32], dst: &mut [f32], s: &mut Scratch) {
        self.forward(src, self.boxsize, self.boxsize, s);
        self.inverse(dst, s);
    }

    /// Multiplies `s.spec` by the PSF's spectrum and writes the 'same' window of its inverse
    /// transform into `stamp`.
    fn inverse(&self, stamp: &mut [f32], s: &mut Scratch) {
        let (b, ny) = (self.boxsize, self.ny);
        for (v, h) in s.spec.iter_mut().zip(&self.psf_hat) {
            *v *= h;
        }
        self.col_inv.process_with_scratch(&mut s.spec, &mut s.fft);
        let nxc = s.row_hat.len();
        for y in 0..b {
            let r = y + self.oy;
            for (c, v) in s.row_hat.iter_mut().enumerate() {
                *v = s.spec[c * ny + r];
            }
            // The spectrum of a real row is real at 0 and at Nyquist; drop the rounding.
            s.row_hat[0].im = 0.0;
            if self.nx % 2 == 0 {
                s.row_hat[nxc - 1].im = 0.0;
            }
            // realfft fails only on buffer lengths (`scratch()` sized these from the plan) or
            // on imaginary parts at 0 and Nyquist (zeroed just above).
            self.row_inv
                .process_with_scratch(&mut s.row_hat, &mut s.row, &mut s.fft)
                .expect("buffer sizes come from the plan");
            stamp[y * b..(y + 1) * b].copy_from_slice(&s.row[self.ox..self.ox + b]);
        }
    }
}

/// Convolves every stamp of `raw` into `out` (a cube of the same grid), in parallel on the
/// current rayon pool; twin stamps (the same image) are convolved once and copied. Out of
/// place, so that no serial copy of the raw cube precedes each new PSF.
pub(crate) fn convolve_cube(
    raw: &ModelCube,
    out: &mut ModelCube,
    psf: &Psf,
    twins: &Twins,
) -> Result<()> {
    let conv = Convolver::new(psf, raw.grid.boxsize)?;
    let len = raw.grid.stamp_len();
    debug_assert_eq!(raw.data.len(), out.data.len());
    out.data
        .par_chunks_mut(len)
        .zip(raw.data.par_chunks(len))
        .enumerate()
        .with_min_len(4)
        .filter(|(k, _)| twins.is_first(*k))
        .for_each_init(
            || conv.scratch(),
            |s, (_, (dst, src))| conv.convolve_into(src, dst, s),
        );
    twins.fill(&mut out.data, len);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct 'same' convolution, as scipy defines it.
    fn direct(img: &[f32], b: usize, psf: &Psf) -> Vec<f64> {
        let (oy, ox) = ((psf.height - 1) / 2, (psf.width - 1) / 2);
        let mut out = vec![0.0; b * b];
        for y in 0..b {
            for x in 0..b {
                let mut acc = 0.0f64;
                for py in 0..psf.height {
                    for px in 0..psf.width {
                        let (iy, ix) = (
                            (y + oy) as isize - py as isize,
                            (x + ox) as isize - px as isize,
                        );
                        if iy >= 0 && ix >= 0 && (iy as usize) < b && (ix as usize) < b {
                            acc += img[iy as usize * b + ix as usize] as f64
                                * psf.data[py * psf.width + px] as f64;
                        }
                    }
                }
                out[y * b + x] = acc;
            }
        }
        out
    }

    fn check(b: usize, pw: usize, ph: usize) {
        let img: Vec<f32> = (0..b * b)
            .map(|i| ((i * 7919) % 101) as f32 / 101.0)
            .collect();
        let mut psf = Psf {
            width: pw,
            height: ph,
            data: (0..pw * ph).map(|i| 1.0 + ((i * 31) % 7) as f32).collect(),
        };
        let sum: f32 = psf.data.iter().sum();
        psf.data.iter_mut().for_each(|v| *v /= sum);
        let want = direct(&img, b, &psf);
        let conv = Convolver::new(&psf, b).unwrap();
        let mut got = img.clone();
        conv.convolve(&mut got, &mut conv.scratch());
        let max = want.iter().cloned().fold(0.0, f64::max);
        for (g, w) in got.iter().zip(&want) {
            assert!(
                (*g as f64 - w).abs() < 1e-5 * max,
                "{g} vs {w} (box {b}, psf {ph}x{pw})"
            );
        }
    }

    #[test]
    fn matches_direct_same_convolution() {
        check(16, 5, 5);
        check(16, 4, 4); // even PSF: the window starts at (P-1)/2 = 1
        check(12, 3, 6); // rectangular
        check(9, 9, 9); // PSF as large as the stamp
    }

    /// What `Psf::centring_note` tells the user: an even PSF centred on its middle moves a
    /// point by +0.5 pixel on that axis, an odd one leaves it where it is.
    #[test]
    fn an_even_psf_moves_the_models_by_half_a_pixel() {
        let b = 16;
        let centroid = |pw: usize, ph: usize| {
            let psf = Psf {
                width: pw,
                height: ph,
                data: vec![1.0 / (pw * ph) as f32; pw * ph],
            };
            let mut img = vec![0f32; b * b];
            img[7 * b + 7] = 1.0;
            let conv = Convolver::new(&psf, b).unwrap();
            conv.convolve(&mut img, &mut conv.scratch());
            let (mut sx, mut sy, mut s) = (0f64, 0f64, 0f64);
            for (p, &v) in img.iter().enumerate() {
                sx += (p % b) as f64 * v as f64;
                sy += (p / b) as f64 * v as f64;
                s += v as f64;
            }
            (sx / s, sy / s)
        };
        let near = |(x, y): (f64, f64), (wx, wy): (f64, f64)| {
            assert!((x - wx).abs() < 1e-4 && (y - wy).abs() < 1e-4, "({x}, {y})");
        };
        near(centroid(5, 5), (7.0, 7.0));
        near(centroid(4, 4), (7.5, 7.5));
        near(centroid(6, 5), (7.5, 7.0));
    }

    #[test]
    fn refuses_psf_larger_than_stamp() {
        let psf = Psf {
            width: 9,
            height: 9,
            data: vec![1.0 / 81.0; 81],
        };
        assert!(Convolver::new(&psf, 8).is_err());
    }

    #[test]
    fn smooth_sizes() {
        assert_eq!(smooth_size(152), 160);
        assert_eq!(smooth_size(128), 128);
        assert_eq!(smooth_size(7), 8);
    }
}
