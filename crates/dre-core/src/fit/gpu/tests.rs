//! The GPU backend on the golden tile.
//!
//! Without a GPU (every build): the kernels' algorithm, emulated on the CPU operation for
//! operation (`emulate`), against the CPU backend and against the original's chi
//! cubes. With the `cuda` feature and a CUDA device: the device against the emulation (bit
//! for bit but for the last ulp) and the CPU backend; without a device these tests print
//! "skipped: ..." on stderr and pass.

use super::emulate;
use super::pack::Packed;
use crate::fit::backend::{CpuFitter, Fitter};
use crate::fit::convolve::convolve_cube;
use crate::fit::kernel::Prepared;
use crate::fit::params::nan_argmin;
use crate::io::cube_file::read_cube;
use crate::io::cuts::CutReader;
use crate::io::psf::{read_psf, Psf};
use crate::model::cube::{ModelCube, Twins};
use std::io::Write;

/// A line on the real stderr: libtest captures `eprintln!` but not direct writes, and a
/// skipped GPU test must be visible.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn golden() -> (ModelCube, Psf, Vec<Prepared>) {
    let g = dre_testdata::golden();
    let cube = read_cube(g.join("cube_small.fits")).unwrap();
    let psf = read_psf(g.join("PSF/gold.psf")).unwrap();
    let cuts = g.join("Cuts/gold_cuts.h5");
    let r = CutReader::open(&cuts).unwrap();
    let objs = r
        .names()
        .iter()
        .map(|n| Prepared::new(&r.read(n).unwrap(), cube.grid.boxsize, &cuts).unwrap())
        .collect();
    (cube, psf, objs)
}

/// `a` within `rel` of `b` (relative to |b|), NaN where `b` is NaN; same best model, or a
/// tie to `tie` in `b`.
fn assert_close(a: &[f32], b: &[f32], rel: f32, tie: f32, what: &str) {
    assert_eq!(a.len(), b.len());
    for (k, (x, y)) in a.iter().zip(b).enumerate() {
        let ok = (x.is_nan() && y.is_nan()) || (x - y).abs() <= rel * y.abs();
        assert!(ok, "{what}: model {k}: {x} vs {y}");
    }
    let (ka, kb) = (nan_argmin(a), nan_argmin(b));
    if ka != kb {
        let (ka, kb) = (ka.unwrap(), kb.unwrap());
        assert!(
            (b[ka] - b[kb]).abs() <= tie * b[kb],
            "{what}: best model {ka} vs {kb}"
        );
    }
}

fn by_object(flat: &[f32], n_models: usize) -> Vec<Vec<f32>> {
    flat.chunks_exact(n_models).map(<[f32]>::to_vec).collect()
}

#[test]
fn emulated_fit_kernel_matches_the_cpu_backend() {
    let (raw, psf, objs) = golden();
    let mut fitter = CpuFitter::new(raw);
    fitter.convolve(&psf).unwrap();
    let cpu = fitter.fit(&objs).unwrap();
    let cube = fitter.convolved().unwrap();
    let b = cube.grid.boxsize;
    let packed = Packed::new(&objs, b * b).unwrap();
    let emu = by_object(&emulate::fit(&cube.data, b * b, &packed), cube.n_models());
    assert_eq!(emu.len(), objs.len());
    for ((o, c), e) in objs.iter().zip(&cpu).zip(&emu) {
        // Only the order of the float32 sums differs.
        assert_close(e, c, 1e-5, 1e-6, &o.name);
    }
}

#[test]
fn emulated_convolution_matches_the_fft_and_the_original() {
    let (cube, psf, objs) = golden();
    let b = cube.grid.boxsize;
    let direct = emulate::convolve(&cube.data, b, &psf);
    let mut fft = cube.clone();
    convolve_cube(&cube, &mut fft, &psf, &Twins::of(&cube)).unwrap();
    for (k, (d, f)) in direct.chunks(b * b).zip(fft.data.chunks(b * b)).enumerate() {
        let peak = f.iter().cloned().fold(0f32, f32::max);
        for (x, y) in d.iter().zip(f) {
            assert!((x - y).abs() <= 2e-6 * peak, "model {k}: {x} vs {y}");
        }
    }
    // The whole GPU algorithm (direct convolution, warp-reduced fit) against the original.
    let packed = Packed::new(&objs, b * b).unwrap();
    let emu = by_object(&emulate::fit(&direct, b * b, &packed), cube.n_models());
    let gold = dre_testdata::golden().join("Chi/gold_chi.h5");
    for (o, e) in objs.iter().zip(&emu) {
        let (want, shape) = crate::io::chi::read_chi(&gold, &o.name).unwrap();
        assert_eq!(shape, cube.grid.shape().to_vec());
        assert_close(e, &want, 1e-4, 1e-6, &o.name);
    }
}

#[cfg(feature = "cuda")]
mod device {
    use super::*;
    use crate::fit::gpu::GpuFitter;

    /// The device with the golden cube, or None after saying on stderr why the test is
    /// skipped.
    fn gpu(test: &str, cube: &ModelCube) -> Option<GpuFitter> {
        match GpuFitter::open(0, cube) {
            Ok(g) => {
                say(&format!("{test}: on {}", g.device_name()));
                Some(g)
            }
            Err(e) => {
                say(&format!("{test}: skipped: {e}"));
                None
            }
        }
    }

    #[test]
    fn gpu_convolution_and_fit_match_the_emulation_and_the_cpu() {
        let (cube, psf, objs) = golden();
        let Some(mut g) = gpu(
            "gpu_convolution_and_fit_match_the_emulation_and_the_cpu",
            &cube,
        ) else {
            return;
        };
        let b = cube.grid.boxsize;
        assert!(g.fit(&objs).is_err(), "fit before convolution");
        assert!(g.convolve(&psf).unwrap());
        assert!(
            !g.convolve(&psf).unwrap(),
            "same PSF: no second convolution"
        );
        let dev_conv = g.convolved().unwrap();
        let emu_conv = emulate::convolve(&cube.data, b, &psf);
        for (k, (d, e)) in dev_conv
            .chunks(b * b)
            .zip(emu_conv.chunks(b * b))
            .enumerate()
        {
            let peak = e.iter().cloned().fold(0f32, f32::max);
            for (x, y) in d.iter().zip(e) {
                assert!(
                    (x - y).abs() <= 1e-7 * peak,
                    "model {k}: {x} vs emulated {y}"
                );
            }
        }
        assert_eq!(*g.model(7).unwrap(), dev_conv[7 * b * b..8 * b * b]);

        // Several launches per call (batch 7: 30 objects = 5 launches on 2 streams), twice
        // over, so the pipeline's buffers are reused.
        g.set_batch(7);
        let many: Vec<Prepared> = objs.iter().chain(&objs).cloned().collect();
        let dev = g.fit(&many).unwrap();
        assert_eq!(dev.len(), many.len());
        let packed = Packed::new(&objs, b * b).unwrap();
        let emu = by_object(&emulate::fit(&dev_conv, b * b, &packed), cube.n_models());
        let mut cpu_fitter = CpuFitter::new(cube.clone());
        cpu_fitter.convolve(&psf).unwrap();
        let cpu = cpu_fitter.fit(&objs).unwrap();
        for (j, o) in objs.iter().enumerate() {
            for d in [&dev[j], &dev[j + objs.len()]] {
                assert_close(d, &emu[j], 1e-6, 1e-6, &o.name);
                assert_close(d, &cpu[j], 1e-4, 1e-6, &o.name);
            }
        }
        assert!(g.fit(&[]).unwrap().is_empty());

        // A new PSF convolves the raw cube again (not the convolved one).
        let mut psf2 = psf.clone();
        psf2.data.reverse();
        assert!(g.convolve(&psf2).unwrap());
        let d2 = g.convolved().unwrap();
        let e2 = emulate::convolve(&cube.data, b, &psf2);
        let peak = e2.iter().cloned().fold(0f32, f32::max);
        assert!(d2
            .iter()
            .zip(&e2)
            .all(|(x, y)| (x - y).abs() <= 1e-7 * peak));
    }

    #[test]
    fn gpu_refuses_a_psf_larger_than_the_stamps() {
        let (cube, _, _) = golden();
        let Some(mut g) = gpu("gpu_refuses_a_psf_larger_than_the_stamps", &cube) else {
            return;
        };
        let n = cube.grid.boxsize + 1;
        let big = Psf {
            width: n,
            height: n,
            data: vec![1.0 / (n * n) as f32; n * n],
        };
        let e = g.convolve(&big).unwrap_err().to_string();
        assert!(e.contains("larger than"), "{e}");
    }

    /// Without a driver the constructor says so in one line instead of panicking.
    #[test]
    fn no_driver_is_an_error_not_a_panic() {
        let (cube, _, _) = golden();
        match GpuFitter::open(0, &cube) {
            Ok(g) => say(&format!(
                "no_driver_is_an_error_not_a_panic: skipped: found {}",
                g.device_name()
            )),
            Err(e) => {
                let e = e.to_string();
                assert!(!e.contains('\n'), "{e}");
                assert!(
                    e.contains("CUDA") || e.contains("NVRTC") || e.contains("GPU"),
                    "{e}"
                );
                // An absent device ordinal is refused the same way on a GPU machine.
            }
        }
        if let Ok(_g) = GpuFitter::open(0, &cube) {
            assert!(GpuFitter::open(1 << 20, &cube).is_err());
        }
    }
}

#[cfg(not(feature = "cuda"))]
#[test]
fn gpu_tests_need_the_cuda_feature() {
    say("gpu device tests: skipped: built without the `cuda` feature (cargo test --features cuda)");
}
