//! `dre`: fits every object of every cut file against a PSF-convolved model cube.

use clap::Parser;
use dre::compression::Compression;
use dre::run::{run_with, Backend, Observer, PsfSource, RunConfig};
use dre::tile::TileReport;
use dre_cli::{cache_dir, init_threads, Reporter};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Instant;

/// Fit Sérsic / de Vaucouleurs models to the galaxies of every cut file, by brute force over
/// a cube of PSF-convolved model images.
///
/// For each `NAME_cuts.h5` of the input folder (sorted), the cube is convolved with the
/// tile's PSF (`PSF/NAME.psf`, or one PSF file for all tiles), every object is fitted
/// against every model, and the results are written to `Chi/NAME_chi.h5` (one chi-square
/// cube per object), `Summary/NAME_dre.fits` (one row per object, joined with the
/// SExtractor catalogue) and, with --mosaics, `Mosaics/NAME/NAME_EE_NNNN_mosaic.fits`.
/// Outputs are written to temporary files and renamed, so re-runs are safe.
///
/// Exit status: 0 when every object was fitted, 1 when a tile or an object failed (each
/// reported on one line of stderr; the rest of the run completes), 2 for bad arguments.
#[derive(Parser, Debug)]
#[command(name = "dre", version, verbatim_doc_comment)]
struct Args {
    /// Model cube (FITS, layout of the original's modelbulge.fits); same as -m. Without one,
    /// the default cube (n = 4; q = 0.1..1 step 0.1; theta = -90..90 step 15; log10 R_e =
    /// -0.4..1.6 step 0.1, R_e along the major axis; 128x128) is rendered on first use into
    /// $DRE_CACHE_DIR, else $XDG_CACHE_HOME/dre, else ~/.cache/dre, and reused afterwards
    #[arg(value_name = "MODEL")]
    model_pos: Option<PathBuf>,

    /// Model cube (FITS)
    #[arg(
        short = 'm',
        long = "model",
        value_name = "FILE",
        conflicts_with = "model_pos"
    )]
    model: Option<PathBuf>,

    /// Folder of PSFEx outputs `NAME.psf`, or one PSF file (.psf or FITS image) for every tile
    #[arg(long, value_name = "DIR|FILE", default_value = "PSF")]
    psf: PathBuf,

    /// Folder with the cut files `NAME_cuts.h5`
    #[arg(
        short = 'i',
        long = "input",
        value_name = "DIR",
        default_value = "Cuts"
    )]
    input: PathBuf,

    /// Folder for the Summary tables `NAME_dre.fits`
    #[arg(
        short = 'o',
        long = "output",
        value_name = "DIR",
        default_value = "Summary"
    )]
    output: PathBuf,

    /// Folder for the chi-square cubes `NAME_chi.h5`
    #[arg(long, value_name = "DIR", default_value = "Chi")]
    chi: PathBuf,

    /// Folder with the SExtractor catalogues (`NAME/NAME_cat.fits` or `NAME_cat.fits`)
    #[arg(long, value_name = "DIR", default_value = "Sextracted")]
    catalogs: PathBuf,

    /// Write a mosaic per object: data | segment | scaled model | residual
    #[arg(long)]
    mosaics: bool,

    /// Folder for the mosaics (one sub-folder per tile)
    #[arg(long, value_name = "DIR", default_value = "Mosaics")]
    mosaics_dir: PathBuf,

    /// Number of threads (default: every core)
    #[arg(long, value_name = "N")]
    cpu: Option<usize>,

    /// Convolve and fit on an NVIDIA GPU (same as --device cuda); falls back to the CPU with
    /// a warning when no CUDA driver or device is found
    #[arg(long, conflicts_with = "device")]
    gpu: bool,

    /// Where to convolve and fit: cpu, or cuda (an NVIDIA GPU; needs a dre built with
    /// `--features cuda`, a CUDA driver and libnvrtc at run time)
    #[arg(long, value_name = "DEVICE", default_value = "cpu", value_parser = ["cpu", "cuda"])]
    device: String,

    /// Objects read and fitted together in one pass over the cube (memory: N cuts and N chi
    /// cubes) [default: 64 on the CPU, 4096 on a GPU, where each pass is one kernel launch]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    chunk: Option<u64>,

    /// Compression of the chi files: none, low (lzf), medium (gzip 4), high (gzip 9)
    #[arg(long, value_name = "LEVEL", default_value = "medium")]
    compression: Compression,

    /// Print warnings (they are always printed; kept for scripts written for the original)
    #[arg(long)]
    warn: bool,

    /// Print nothing but errors and warnings
    #[arg(short = 'q', long)]
    quiet: bool,
}

struct Cli {
    out: Reporter,
    tile_start: Mutex<Option<(Instant, f64)>>,
}

impl Observer for Cli {
    fn tile_started(&self, index: usize, total: usize, name: &str, objects: usize) {
        *self.tile_start.lock().unwrap() = Some((Instant::now(), 0.0));
        self.out
            .start_bar(objects as u64, format!("({}/{total}) {name}", index + 1));
    }

    fn convolved(&self, seconds: f64) {
        if let Some(t) = self.tile_start.lock().unwrap().as_mut() {
            t.1 = seconds;
        }
    }

    fn objects_done(&self, count: usize) {
        self.out.advance(count as u64);
    }

    fn tile_finished(&self, name: &str, r: &TileReport) {
        self.out.finish_bar();
        for e in &r.failures {
            self.out.error(e);
        }
        for w in &r.warnings {
            self.out.warn(w);
        }
        let conv = self.tile_start.lock().unwrap().map_or(0.0, |t| t.1);
        self.out.info(format!(
            "{name}: {} objects, {} fitted, {} failed, {:.1} objects/s (convolution {conv:.2} s)",
            r.objects,
            r.fitted,
            r.objects - r.fitted,
            r.fitted as f64 / r.fit_seconds.max(1e-9),
        ));
    }

    fn tile_failed(&self, _name: &str, error: &dre::Error) {
        self.out.finish_bar();
        self.out.error(error);
    }
}

/// The GPU backend, the CPU one (with a warning) when no driver or device is usable, or
/// None (bad arguments) when this build has no GPU backend.
#[cfg(feature = "cuda")]
fn gpu_backend(out: &Reporter) -> Option<Backend> {
    match dre::gpu::GpuFitter::new(0) {
        Ok(g) => {
            out.info(format!("dre: GPU {}", g.device_name()));
            Some(Backend::Gpu(Box::new(g)))
        }
        Err(e) => {
            out.warn(format!("{e}; fitting on the CPU"));
            Some(Backend::Cpu)
        }
    }
}

#[cfg(not(feature = "cuda"))]
fn gpu_backend(out: &Reporter) -> Option<Backend> {
    out.error(dre::gpu::NOT_BUILT);
    None
}

fn main() -> ExitCode {
    let args = Args::parse();
    let out = Reporter::new("dre", args.quiet);
    if let Err(e) = init_threads(args.cpu) {
        out.error(e);
        return ExitCode::from(2);
    }
    let on_gpu = args.gpu || args.device == "cuda";
    let backend = if on_gpu {
        match gpu_backend(&out) {
            Some(b) => b,
            None => return ExitCode::from(2),
        }
    } else {
        Backend::Cpu
    };
    let cube = match args.model.or(args.model_pos) {
        Some(cube) => cube,
        None => {
            let dir = cache_dir();
            out.info(format!(
                "dre: no model cube given: the default cube (n = 4, 2730 models) from {}",
                dir.display()
            ));
            match dre::render::default_cube(&dir) {
                Ok(path) => path,
                Err(e) => {
                    out.error(e);
                    return ExitCode::FAILURE;
                }
            }
        }
    };
    let cfg = RunConfig {
        cube,
        psf: PsfSource::from_path(&args.psf),
        cuts_dir: args.input,
        summary_dir: args.output,
        chi_dir: args.chi,
        catalogs_dir: args.catalogs,
        mosaics_dir: args.mosaics.then_some(args.mosaics_dir),
        compression: args.compression,
        chunk: args.chunk.unwrap_or(if on_gpu { 4096 } else { 64 }) as usize,
    };
    let cli = Cli {
        out,
        tile_start: Mutex::new(None),
    };
    let start = Instant::now();
    match run_with(&cfg, &cli, backend) {
        Ok(r) => {
            cli.out.info(format!(
                "dre: {} tiles ({} failed), {} objects, {} fitted, {} failed, {:.1} s",
                r.tiles,
                r.tiles_failed,
                r.objects,
                r.fitted,
                r.objects_failed,
                start.elapsed().as_secs_f64()
            ));
            if r.all_ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            cli.out.error(e);
            ExitCode::FAILURE
        }
    }
}
