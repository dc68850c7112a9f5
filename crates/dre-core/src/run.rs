//! A whole `dre` run: every `*_cuts.h5` of the input folder in sorted order, each tile's
//! PSF, one convolution of the cube per distinct PSF, and the fit of each tile.
//!
//! Memory: the cube is held once, convolved in place. When the next tile's PSF differs, the
//! cube is read again from its file and convolved anew (a re-read costs far less than a
//! second copy of the cube would cost in memory); one PSF for every tile convolves once.

use crate::compression::Compression;
use crate::convolve::convolve_cube;
use crate::cube::{read_cube, ModelCube};
use crate::error::{AtPath, Error, Result};
use crate::psf::{read_psf, Psf};
use crate::tile::{count_objects, fit_tile, TilePaths, TileReport};
#[cfg(feature = "cuda")]
use crate::tile::{fit_tile_on, Models};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Where the PSFs come from.
#[derive(Clone, Debug)]
pub enum PsfSource {
    /// `DIR/NAME.psf` for tile NAME (PSFEx output).
    PerTile(PathBuf),
    /// One PSF file (PSFEx `.psf` or a FITS image) for every tile.
    Single(PathBuf),
}

impl PsfSource {
    /// A file is one PSF for every tile; anything else is a folder of `NAME.psf`.
    pub fn from_path(p: impl Into<PathBuf>) -> Self {
        let p = p.into();
        if p.is_file() {
            PsfSource::Single(p)
        } else {
            PsfSource::PerTile(p)
        }
    }

    fn for_tile(&self, name: &str) -> PathBuf {
        match self {
            PsfSource::PerTile(dir) => dir.join(format!("{name}.psf")),
            PsfSource::Single(f) => f.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct RunConfig {
    pub cube: PathBuf,
    pub psf: PsfSource,
    pub cuts_dir: PathBuf,
    pub summary_dir: PathBuf,
    pub chi_dir: PathBuf,
    pub catalogs_dir: PathBuf,
    pub mosaics_dir: Option<PathBuf>,
    pub compression: Compression,
    pub chunk: usize,
}

/// How a run tells its caller what is happening (progress bars, logs).
pub trait Observer: Sync {
    fn tile_started(&self, index: usize, total: usize, name: &str, objects: usize);
    fn convolved(&self, seconds: f64);
    fn objects_done(&self, count: usize);
    fn tile_finished(&self, name: &str, report: &TileReport);
    fn tile_failed(&self, name: &str, error: &Error);
}

#[derive(Debug, Default)]
pub struct RunReport {
    pub tiles: usize,
    pub tiles_failed: usize,
    pub objects: usize,
    pub fitted: usize,
    pub objects_failed: usize,
}

impl RunReport {
    pub fn all_ok(&self) -> bool {
        self.tiles_failed == 0 && self.objects_failed == 0
    }
}

/// The cut files of a folder, sorted, with their tile names.
pub fn list_tiles(cuts_dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    if !cuts_dir.is_dir() {
        return Err(Error::file(cuts_dir, "no such folder of cut files"));
    }
    let mut tiles: Vec<(String, PathBuf)> = std::fs::read_dir(cuts_dir)
        .at(cuts_dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let tile = name.strip_suffix("_cuts.h5")?.to_string();
            Some((tile, e.path()))
        })
        .collect();
    tiles.sort();
    Ok(tiles)
}

/// The catalogue of a tile: `DIR/NAME/NAME_cat.fits`, or the flat `DIR/NAME_cat.fits`.
pub fn catalog_path(dir: &Path, name: &str) -> PathBuf {
    let sub = dir.join(name);
    if sub.is_dir() {
        sub.join(format!("{name}_cat.fits"))
    } else {
        dir.join(format!("{name}_cat.fits"))
    }
}

/// Where the convolution and the fit run.
#[derive(Debug, Default)]
pub enum Backend {
    /// FFT convolution and the SIMD fit kernel on the rayon pool.
    #[default]
    Cpu,
    /// A CUDA device (feature `cuda`).
    #[cfg(feature = "cuda")]
    Gpu(Box<crate::gpu::GpuFitter>),
}

/// Runs the fit over every tile. Errors only when nothing can run at all (no cut folder,
/// no readable cube); a bad tile is reported through `obs` and the others go on.
pub fn run(cfg: &RunConfig, obs: &dyn Observer) -> Result<RunReport> {
    run_with(cfg, obs, Backend::Cpu)
}

/// [`run`] on the given backend.
pub fn run_with(cfg: &RunConfig, obs: &dyn Observer, backend: Backend) -> Result<RunReport> {
    match backend {
        Backend::Cpu => run_cpu(cfg, obs),
        #[cfg(feature = "cuda")]
        Backend::Gpu(mut gpu) => run_gpu(cfg, obs, &mut gpu),
    }
}

fn tile_paths(cfg: &RunConfig, name: &str, cuts: &Path) -> TilePaths {
    TilePaths {
        name: name.to_string(),
        cuts: cuts.to_path_buf(),
        catalog: Some(catalog_path(&cfg.catalogs_dir, name)),
        chi: cfg.chi_dir.join(format!("{name}_chi.h5")),
        summary: cfg.summary_dir.join(format!("{name}_dre.fits")),
        mosaics: cfg.mosaics_dir.as_ref().map(|d| d.join(name)),
    }
}

fn tally(report: &mut RunReport, obs: &dyn Observer, name: &str, result: Result<TileReport>) {
    match result {
        Ok(t) => {
            report.objects += t.objects;
            report.fitted += t.fitted;
            report.objects_failed += t.failures.len();
            obs.tile_finished(name, &t);
        }
        Err(e) => {
            report.tiles_failed += 1;
            obs.tile_failed(name, &e);
        }
    }
}

/// The walk both backends share: each tile is announced, its PSF read, `fit` called with
/// them (convolving as it needs), and the outcome tallied.
fn for_each_tile(
    cfg: &RunConfig,
    obs: &dyn Observer,
    tiles: &[(String, PathBuf)],
    mut fit: impl FnMut(&TilePaths, Psf, &Path) -> Result<TileReport>,
) -> RunReport {
    let mut report = RunReport {
        tiles: tiles.len(),
        ..RunReport::default()
    };
    for (i, (name, cuts)) in tiles.iter().enumerate() {
        let result = count_objects(cuts).and_then(|n| {
            obs.tile_started(i, tiles.len(), name, n);
            let psf_file = cfg.psf.for_tile(name);
            let psf = read_psf(&psf_file)?;
            fit(&tile_paths(cfg, name, cuts), psf, &psf_file)
        });
        tally(&mut report, obs, name, result);
    }
    report
}

/// The GPU run: the raw cube is uploaded once and the host copy dropped; the device keeps
/// it and a convolved copy, redone only when a tile's PSF differs from the last one.
#[cfg(feature = "cuda")]
fn run_gpu(
    cfg: &RunConfig,
    obs: &dyn Observer,
    gpu: &mut crate::gpu::GpuFitter,
) -> Result<RunReport> {
    let tiles = list_tiles(&cfg.cuts_dir)?;
    let cube = read_cube(&cfg.cube)?;
    gpu.load_cube(&cube)
        .map_err(|e| Error::file(&cfg.cube, e))?;
    drop(cube);
    Ok(for_each_tile(cfg, obs, &tiles, |paths, psf, psf_file| {
        let start = Instant::now();
        if gpu.convolve(&psf).map_err(|m| Error::file(psf_file, m))? {
            obs.convolved(start.elapsed().as_secs_f64());
        }
        fit_tile_on(Models::Gpu(gpu), paths, cfg.compression, cfg.chunk, &|k| {
            obs.objects_done(k)
        })
    }))
}

fn run_cpu(cfg: &RunConfig, obs: &dyn Observer) -> Result<RunReport> {
    let tiles = list_tiles(&cfg.cuts_dir)?;
    let mut cube = read_cube(&cfg.cube)?;
    let mut convolved_with: Option<Psf> = None;
    Ok(for_each_tile(cfg, obs, &tiles, |paths, psf, psf_file| {
        if convolved_with.as_ref() != Some(&psf) {
            // A convolved cube, or one whose re-read failed, must be read afresh.
            if convolved_with.take().is_some() || cube.data.is_empty() {
                reload(&mut cube, &cfg.cube)?;
            }
            let start = Instant::now();
            convolve_cube(&mut cube, &psf).map_err(|m| Error::file(psf_file, m))?;
            convolved_with = Some(psf);
            obs.convolved(start.elapsed().as_secs_f64());
        }
        fit_tile(&cube, paths, cfg.compression, cfg.chunk, &|k| {
            obs.objects_done(k)
        })
    }))
}

/// Reads the cube file again, freeing the convolved copy first so that only one is held.
fn reload(cube: &mut ModelCube, path: &Path) -> Result<()> {
    cube.data = Vec::new();
    *cube = read_cube(path)?;
    Ok(())
}
