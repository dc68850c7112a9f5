//! Benchmark of the fit: `cargo bench -p dre-core --bench fit`.
//!
//! Prints a markdown table: convolution seconds per tile, fit objects/s and ns per
//! model-pixel (model-pixel = one model times one segment pixel, the original's unit) on
//! 1 and 2 threads, for the golden 180-model cube and the default 2730-model cube, and the
//! peak memory of a whole tile against the size of the cube.

use dre::{
    default_grid, open_fitter, read_cube, read_psf, render_cube, run, write_cube, Compression,
    CpuFitter, CutReader, Device, Fitter, ModelCube, Observer, Prepared, PsfSource,
    RadiusConvention, RunConfig, TileReport,
};
use std::path::Path;
use std::time::Instant;

fn pool(n: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .unwrap()
}

/// Best of `reps` timings of `f`, in seconds.
fn time(reps: usize, mut f: impl FnMut()) -> f64 {
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

/// The default cube (the original's grid, 2730 models), rendered.
fn default_cube() -> ModelCube {
    render_cube(&default_grid(), RadiusConvention::Major, &|| {}).unwrap()
}

fn golden_objects(boxsize: usize, copies: usize) -> Vec<Prepared> {
    let cuts = dre_testdata::golden().join("Cuts/gold_cuts.h5");
    let r = CutReader::open(&cuts).unwrap();
    let one: Vec<Prepared> = r
        .names()
        .iter()
        .map(|n| Prepared::new(&r.read(n).unwrap(), boxsize, &cuts).unwrap())
        .collect();
    (0..copies).flat_map(|_| one.iter().cloned()).collect()
}

fn bench_cube(label: &str, cube: &ModelCube, copies: usize) {
    let g = dre_testdata::golden();
    let psf = read_psf(g.join("PSF/gold.psf")).unwrap();
    // Two PSFs in turn, so that every call convolves (a PSF the models already have is
    // not convolved again).
    let mut psf2 = psf.clone();
    psf2.data.reverse();
    let mut fitter = CpuFitter::new(cube.clone());
    let mut conv_t = [0.0; 2];
    // Which PSF is next: kept across the loops, so that no call finds its PSF done.
    let mut turn = false;
    for (i, n) in [1, 2].into_iter().enumerate() {
        conv_t[i] = time(3, || {
            turn = !turn;
            let p = if turn { &psf2 } else { &psf };
            pool(n).install(|| assert!(fitter.convolve(p).unwrap()));
        });
        // Each convolution starts with a copy of the raw cube; take it out.
        let mut copy = cube.data.clone();
        let copy_t = time(3, || copy.copy_from_slice(std::hint::black_box(&cube.data)));
        conv_t[i] = (conv_t[i] - copy_t).max(0.0);
    }
    fitter.convolve(&psf).unwrap();
    let objs = golden_objects(cube.grid.boxsize, copies);
    let model_pixels: f64 =
        objs.iter().map(|o| o.n_seg as f64).sum::<f64>() * cube.n_models() as f64;
    for (i, n) in [1, 2].into_iter().enumerate() {
        let t = time(3, || {
            pool(n).install(|| std::hint::black_box(fitter.fit(&objs).unwrap()));
        });
        println!(
            "| {label} | {} | {n} | {:.3} | {:.0} | {:.3} |",
            cube.n_models(),
            conv_t[i],
            objs.len() as f64 / t,
            t * 1e9 / model_pixels * n as f64,
        );
    }
}

struct Quiet;
impl Observer for Quiet {
    fn tile_started(&self, _: usize, _: usize, _: &str, _: usize) {}
    fn convolved(&self, _: f64) {}
    fn objects_done(&self, _: usize) {}
    fn tile_finished(&self, _: &str, r: &TileReport) {
        assert_eq!(r.failures.len(), 0);
    }
    fn tile_failed(&self, name: &str, e: &dre::Error) {
        panic!("{name}: {e}")
    }
}

fn peak_rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// A whole tile through `run` (read cube, convolve, fit 30 objects, write outputs): the
/// wall time and the peak memory against one float32 copy of the cube.
fn whole_tile(cube_file: &Path, n_models: usize) {
    let g = dre_testdata::golden();
    let out = tempfile::tempdir().unwrap();
    let cfg = RunConfig {
        psf: PsfSource::PerTile(g.join("PSF")),
        cuts_dir: g.join("Cuts"),
        summary_dir: out.path().join("Summary"),
        chi_dir: out.path().join("Chi"),
        catalogs_dir: g.join("Sextracted"),
        mosaics_dir: None,
        png: false,
        compression: Compression::Medium,
        chunk: None,
        resume: false,
        cube_file: Some(cube_file.to_path_buf()),
    };
    let t = Instant::now();
    let mut fitter = open_fitter(Device::Cpu, cube_file).unwrap();
    run(&cfg, &Quiet, fitter.as_mut()).unwrap();
    let secs = t.elapsed().as_secs_f64();
    let cube_mib = (n_models * 128 * 128 * 4) as f64 / (1 << 20) as f64;
    let peak_mib = peak_rss_kib() as f64 / 1024.0;
    println!(
        "| {n_models} | {secs:.2} | {peak_mib:.0} | {cube_mib:.0} | {:.2} |",
        peak_mib / cube_mib
    );
}

/// Set in the child process that measures a whole tile, so its peak memory is the run's.
const WHOLE_TILE: &str = "DRE_BENCH_WHOLE_TILE";

fn main() {
    if let Ok(cube) = std::env::var(WHOLE_TILE) {
        let n: usize = std::env::var("DRE_BENCH_MODELS").unwrap().parse().unwrap();
        return whole_tile(Path::new(&cube), n);
    }
    let g = dre_testdata::golden();
    println!(
        "| cube | models | threads | convolution s | objects/s | ns per model-pixel (per thread) |"
    );
    println!("|---|---|---|---|---|---|");
    let golden = read_cube(g.join("cube_small.fits")).unwrap();
    bench_cube("golden cube_small", &golden, 8);
    let big = default_cube();
    bench_cube("default grid (2730)", &big, 8);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cube2730.fits");
    write_cube(&file, &big, &[]).unwrap();
    drop(big);
    drop(golden);
    println!();
    println!("Whole tile (read cube, convolve, fit the 30 golden objects, write outputs), 2 threads, fresh process:");
    println!();
    println!("| models | seconds | peak RSS MiB | cube MiB | peak / cube |");
    println!("|---|---|---|---|---|");
    for (cube, n) in [(g.join("cube_small.fits"), 180), (file, 2730)] {
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .env(WHOLE_TILE, &cube)
            .env("DRE_BENCH_MODELS", n.to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }
}
