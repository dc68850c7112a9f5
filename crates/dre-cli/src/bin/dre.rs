//! `dre`: fits every object of every cut file against a PSF-convolved model cube.

use clap::Parser;
use dre::{
    load_fitter, read_cube, Device, Fitter, ModelCube, Observer, PsfSource, RunConfig, TileReport,
};
use dre_cli::args::{CompressionArg, DeviceArg, PipelineOptions};
use dre_cli::{lock, Failure, Outcome, Reporter, Tool};
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
/// SExtractor catalogue) and, with --mosaics, `Mosaics/NAME/NAME_EE_NNNN_mosaic.fits`
/// (with --png, also its picture `NAME_EE_NNNN_mosaic.png` beside it).
/// Outputs are written to temporary files and renamed, so re-runs are safe; with --resume
/// the tiles whose outputs are complete and made from the same inputs are skipped (a
/// record beside the Summary says what each was made from). A second run into the same
/// output folders is refused while the first runs.
///
/// Exit status: 0 when every object was fitted, 1 when a tile or an object failed (each
/// reported on one line of stderr; the rest of the run completes), 2 for bad arguments.
#[derive(Parser, Debug)]
#[command(version, verbatim_doc_comment)]
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

    /// Also write a PNG picture of each fit beside its mosaic, NAME_EE_NNNN_mosaic.png:
    /// data | model | residual | segment, the first three on one asinh stretch with a
    /// colour bar, titled with the object's name and fitted values. Implies --mosaics
    #[arg(long)]
    png: bool,

    /// Folder for the mosaics (one sub-folder per tile)
    #[arg(long, value_name = "DIR", default_value = "Mosaics")]
    mosaics_dir: PathBuf,

    /// Convolve and fit on an NVIDIA GPU (same as --device cuda); falls back to the CPU with
    /// a warning when no CUDA driver or device is found
    #[arg(long, conflicts_with = "device")]
    gpu: bool,

    /// Where to convolve and fit: cpu, or cuda (an NVIDIA GPU; needs a dre built with
    /// `--features cuda`, a CUDA driver and libnvrtc at run time)
    #[arg(long, value_name = "DEVICE", value_enum, default_value = "cpu")]
    device: DeviceArg,

    /// Objects read and fitted together in one pass over the cube (memory: N cuts and N chi
    /// cubes) [default: 64 on the CPU, 4096 on a GPU, where each pass is one kernel launch]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    chunk: Option<u64>,

    /// Compression of the chi files: none, low (lzf), medium (gzip 4), high (gzip 9)
    #[arg(long, value_name = "LEVEL", value_enum, default_value = "medium")]
    compression: CompressionArg,

    /// Print warnings (they are always printed; kept for scripts written for the original)
    #[arg(long)]
    warn: bool,

    #[command(flatten)]
    common: PipelineOptions,
}

fn main() -> ExitCode {
    dre_cli::main::<Args>()
}

impl Tool for Args {
    const NAME: &'static str = "dre";
    const RESUMABLE: bool = true;

    fn pipeline(&self) -> Option<&PipelineOptions> {
        Some(&self.common)
    }

    fn run(self, out: &Reporter) -> Result<Outcome, Failure> {
        let selected = self.common.tiles.selection()?;
        let device = if self.gpu {
            Device::Cuda(0)
        } else {
            self.device.into()
        };
        if device != Device::Cpu && !cfg!(feature = "cuda") {
            return Err(Failure::usage(dre::CUDA_NOT_BUILT));
        }
        let (cube_file, cube) = match self.model.or(self.model_pos) {
            Some(path) => {
                let cube = read_cube(&path)?;
                (path, cube)
            }
            None => {
                let dir = dre::default_cache_dir();
                out.info(format!(
                    "dre: no model cube given: the default cube (n = 4, 2730 models) from {}",
                    dir.display()
                ));
                dre::load_default_cube(&dir)?
            }
        };
        let mut fitter = fitter(device, cube, out)?;
        let resume = self.common.resume.resume;
        let cfg = RunConfig {
            psf: PsfSource::from_path(&self.psf),
            cuts_dir: self.input,
            summary_dir: self.output,
            chi_dir: self.chi,
            catalogs_dir: self.catalogs,
            mosaics_dir: (self.mosaics || self.png).then_some(self.mosaics_dir),
            png: self.png,
            compression: self.compression.into(),
            chunk: self.chunk.map(|n| n as usize),
            resume,
            cube_file: Some(cube_file),
        };
        let progress = Progress {
            out,
            tile_start: Mutex::new(None),
            tile: Mutex::new(String::new()),
        };
        let start = Instant::now();
        let r = dre::run_tiles(&cfg, &selected, &progress, &mut *fitter)?;
        let skipped = if resume {
            format!(", {} skipped as done before", r.tiles_skipped)
        } else {
            String::new()
        };
        out.info(format!(
            "dre: {} tiles ({} failed{skipped}), {} objects, {} fitted, {} failed, {:.1} s",
            r.tiles,
            r.tiles_failed,
            r.objects,
            r.fitted,
            r.objects_failed,
            start.elapsed().as_secs_f64()
        ));
        Ok(Outcome::all_ok_if(r.all_ok()))
    }
}

/// The cube loaded on `device`; on the CPU, with a warning, when the GPU has no usable
/// driver or device.
fn fitter(device: Device, cube: ModelCube, out: &Reporter) -> dre::Result<Box<dyn Fitter + Send>> {
    match load_fitter(device, cube) {
        Ok(f) => {
            if device != Device::Cpu {
                out.info(format!("dre: {}", f.describe()));
            }
            Ok(f)
        }
        Err(failed) => match *failed {
            (dre::Error::Device(e), cube) if device != Device::Cpu => {
                out.warn(format!("{e}; fitting on the CPU"));
                load_fitter(Device::Cpu, cube).map_err(|failed| failed.0)
            }
            (e, _) => Err(e),
        },
    }
}

/// Progress of the run: a bar per tile on a terminal, a line per tile in logs.
struct Progress<'a> {
    out: &'a Reporter,
    tile_start: Mutex<Option<(Instant, f64)>>,
    /// `tile NAME (3/20)` of the tile being fitted.
    tile: Mutex<String>,
}

impl Observer for Progress<'_> {
    fn tile_started(&self, index: usize, total: usize, name: &str, objects: usize) {
        let tile = format!("tile {name} ({}/{total})", index + 1);
        self.out.working_on(tile.clone());
        *lock(&self.tile) = tile;
        *lock(&self.tile_start) = Some((Instant::now(), 0.0));
        self.out
            .start_bar(objects as u64, format!("({}/{total}) {name}", index + 1));
    }

    fn convolved(&self, seconds: f64) {
        if let Some(t) = lock(&self.tile_start).as_mut() {
            t.1 = seconds;
        }
    }

    fn objects_done(&self, count: usize) {
        self.out.advance(count as u64);
    }

    fn tile_finished(&self, name: &str, r: &TileReport) {
        self.out.done_with(lock(&self.tile).clone());
        self.out.finish_bar();
        for e in &r.failures {
            self.out.error(e);
        }
        for w in &r.warnings {
            self.out.warn(w);
        }
        let conv = lock(&self.tile_start).map_or(0.0, |t| t.1);
        self.out.info(format!(
            "{name}: {} objects, {} fitted, {} failed, {:.1} objects/s (convolution {conv:.2} s)",
            r.objects,
            r.fitted,
            r.objects - r.fitted,
            r.fitted as f64 / r.fit_seconds.max(1e-9),
        ));
    }

    fn tile_skipped(&self, index: usize, total: usize, name: &str) {
        self.out.info(format!(
            "{name}: done before, skipped ({}/{total}, --resume)",
            index + 1
        ));
        self.out
            .done_with(format!("tile {name} ({}/{total})", index + 1));
    }

    fn tile_failed(&self, _name: &str, error: &dre::Error) {
        self.out.done_with(lock(&self.tile).clone());
        self.out.finish_bar();
        self.out.error(error);
    }
}
