//! GPU benchmark: `cargo bench -p dre-core --features cuda --bench gpu`.
//!
//! For the golden 180-model cube and a 2730-model cube of the original's default grid:
//! upload, convolution, and the fit of the golden objects (copied to `DRE_BENCH_OBJECTS`,
//! default 20480) including packing, uploads and the chi cubes' download; objects/s and ns
//! per model-pixel (one model times one segment pixel). Prints "skipped" without a device.

use dre::{read_cube, read_psf, Axis, CutReader, Fitter, GpuFitter, Grid, ModelCube, Prepared};
use std::time::Instant;

fn default_grid() -> Grid {
    Grid {
        index: Axis::new(4.0, 1.0, 1),
        axrat: Axis::new(0.1, 0.1, 10),
        posang: Axis::new(-90.0, 15.0, 13),
        logh: Axis::new(-0.4, 0.1, 21),
        boxsize: 128,
    }
}

/// Normalised elliptical exponential-of-r^0.25 stamps: the shape and size of a real cube.
fn synthetic_cube(grid: Grid) -> ModelCube {
    let b = grid.boxsize;
    let c = (b as f64 - 1.0) / 2.0;
    let mut data = vec![0f32; grid.n_models() * b * b];
    for (k, stamp) in data.chunks_exact_mut(b * b).enumerate() {
        let [_, q, t, r] = grid.unravel(k);
        let (q, th, re) = (
            grid.axrat.value(q),
            grid.posang.value(t).to_radians(),
            10f64.powf(grid.logh.value(r)),
        );
        let mut sum = 0.0;
        for (p, v) in stamp.iter_mut().enumerate() {
            let (x, y) = ((p % b) as f64 - c, (p / b) as f64 - c);
            let (xp, yp) = (x * th.cos() + y * th.sin(), -x * th.sin() + y * th.cos());
            let rr = (xp * xp + yp * yp / (q * q)).sqrt() / re;
            let i = (-7.669 * (rr.powf(0.25) - 1.0)).exp();
            *v = i as f32;
            sum += i;
        }
        stamp.iter_mut().for_each(|v| *v /= sum as f32);
    }
    ModelCube { grid, data }
}

/// The device with `cube` on it, and the seconds the opening and upload took.
fn open(cube: &ModelCube) -> Option<(GpuFitter, f64)> {
    let t = Instant::now();
    match GpuFitter::open(0, cube) {
        Ok(mut g) => {
            if let Some(b) = std::env::var("DRE_BENCH_BATCH")
                .ok()
                .and_then(|v| v.parse().ok())
            {
                g.set_batch(b);
            }
            Some((g, t.elapsed().as_secs_f64()))
        }
        Err(e) => {
            println!("gpu benchmark skipped: {e}");
            None
        }
    }
}

fn bench(label: &str, cube: &ModelCube, objs: &[Prepared]) {
    let psf = read_psf(dre_testdata::golden().join("PSF/gold.psf")).unwrap();
    let Some((mut g, upload)) = open(cube) else {
        return;
    };
    let t = Instant::now();
    g.convolve(&psf).unwrap();
    let conv = t.elapsed().as_secs_f64();
    g.fit(&objs[..objs.len().min(g.batch())]).unwrap(); // warm-up
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let t = Instant::now();
        let chi = g.fit(objs).unwrap();
        best = best.min(t.elapsed().as_secs_f64());
        assert_eq!(chi.len(), objs.len());
    }
    let model_pixels: f64 =
        objs.iter().map(|o| o.n_seg as f64).sum::<f64>() * cube.n_models() as f64;
    if label.starts_with("golden") {
        println!("GPU: {}, {} objects per launch", g.device_name(), g.batch());
        println!();
        println!(
            "| cube | models | objects | open + upload s | convolution s | objects/s | ns per model-pixel |"
        );
        println!("|---|---|---|---|---|---|---|");
    }
    println!(
        "| {label} | {} | {} | {upload:.3} | {conv:.4} | {:.0} | {:.4} |",
        cube.n_models(),
        objs.len(),
        objs.len() as f64 / best,
        best * 1e9 / model_pixels,
    );
}

fn main() {
    let n: usize = std::env::var("DRE_BENCH_OBJECTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20480);
    let gold = dre_testdata::golden();
    let cuts = gold.join("Cuts/gold_cuts.h5");
    let r = CutReader::open(&cuts).unwrap();
    let one: Vec<Prepared> = r
        .names()
        .iter()
        .map(|name| Prepared::new(&r.read(name).unwrap(), 128, &cuts).unwrap())
        .collect();
    let objs: Vec<Prepared> = one.iter().cycle().take(n).cloned().collect();
    let small = read_cube(gold.join("cube_small.fits")).unwrap();
    bench("golden cube_small", &small, &objs);
    let big = synthetic_cube(default_grid());
    bench("default grid (2730)", &big, &objs);
}
