//! A whole `dre` run: every `*_cuts.h5` of the input folder in sorted order, each tile's
//! PSF, one convolution of the cube per distinct PSF, and the fit of each tile.
//!
//! The backend keeps the raw cube and one convolved copy: a tile whose PSF differs from the
//! last one's convolves again, one PSF for every tile convolves once.

use crate::io::compression::Compression;
use crate::fit::backend::Fitter;
use crate::layout;
use crate::error::{AtPath, Error, Result};
use crate::io::psf::read_psf;
use crate::pipeline::tile::{count_objects, fit_tile, TilePaths, TileReport};
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
            PsfSource::PerTile(dir) => layout::psf_file(dir, name),
            PsfSource::Single(f) => f.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct RunConfig {
    pub psf: PsfSource,
    pub cuts_dir: PathBuf,
    pub summary_dir: PathBuf,
    pub chi_dir: PathBuf,
    pub catalogs_dir: PathBuf,
    pub mosaics_dir: Option<PathBuf>,
    pub compression: Compression,
    pub chunk: Option<usize>,
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
pub fn list_cut_files(cuts_dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    if !cuts_dir.is_dir() {
        return Err(Error::file(cuts_dir, "no such folder of cut files"));
    }
    let mut tiles: Vec<(String, PathBuf)> = std::fs::read_dir(cuts_dir)
        .at(cuts_dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let tile = layout::tile_name(&name, layout::CUTS_SUFFIX)?.to_string();
            Some((tile, e.path()))
        })
        .collect();
    tiles.sort();
    Ok(tiles)
}

/// Runs the fit over every tile on `fitter` (a cube loaded on a backend, see
/// [`crate::open_fitter`]). Errors only when nothing can run at all (no cut folder); a bad
/// tile is reported through `obs` and the others go on.
pub fn run(cfg: &RunConfig, obs: &dyn Observer, fitter: &mut dyn Fitter) -> Result<RunReport> {
    let tiles = list_cut_files(&cfg.cuts_dir)?;
    let mut report = RunReport {
        tiles: tiles.len(),
        ..RunReport::default()
    };
    let chunk = cfg.chunk.unwrap_or_else(|| fitter.default_chunk());
    for (i, (name, cuts)) in tiles.iter().enumerate() {
        let result = count_objects(cuts).and_then(|n| {
            obs.tile_started(i, tiles.len(), name, n);
            let psf_file = cfg.psf.for_tile(name);
            let psf = read_psf(&psf_file)?;
            let start = Instant::now();
            if fitter.convolve(&psf).map_err(|e| e.at_file(&psf_file))? {
                obs.convolved(start.elapsed().as_secs_f64());
            }
            let paths = tile_paths(cfg, name, cuts);
            fit_tile(fitter, &paths, cfg.compression, chunk, &|k| obs.objects_done(k))
        });
        tally(&mut report, obs, name, result);
    }
    Ok(report)
}

fn tile_paths(cfg: &RunConfig, name: &str, cuts: &Path) -> TilePaths {
    TilePaths {
        name: name.to_string(),
        cuts: cuts.to_path_buf(),
        catalog: Some(layout::find_sextracted(&cfg.catalogs_dir, name).catalog),
        chi: layout::chi_file(&cfg.chi_dir, name),
        summary: layout::summary_file(&cfg.summary_dir, name),
        mosaics: cfg.mosaics_dir.as_ref().map(|d| layout::mosaic_dir(d, name)),
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
