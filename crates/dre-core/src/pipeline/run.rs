//! A whole `dre` run: every `*_cuts.h5` of the input folder in sorted order, each tile's
//! PSF, one convolution of the cube per distinct PSF, and the fit of each tile.
//!
//! The backend keeps the raw cube and one convolved copy: a tile whose PSF differs from the
//! last one's convolves again, one PSF for every tile convolves once.
//!
//! The output folders are locked for the run (a second run into them is refused), and each
//! tile whose every object was fitted gets a record beside its Summary, so that a run with
//! [`RunConfig::resume`] skips the tiles already done.

use crate::error::{AtPath, Error, Result};
use crate::fit::backend::Fitter;
use crate::io::compression::Compression;
use crate::io::lock::{lock_output_dir, OutputLock};
use crate::io::psf::read_psf;
use crate::layout;
use crate::pipeline::resume::{forget_record, record_file, Provenance};
use crate::pipeline::tile::{fit_cuts, TileCuts, TilePaths, TileReport};
use crate::survey::select::TileSelection;
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

/// What a [`run`] reads and writes: `dre`'s options, folders as in the working-directory
/// layout.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// The PSFs (`--psf`; default the folder `PSF`, as the original).
    pub psf: PsfSource,
    /// Folder of the cut files `NAME_cuts.h5` (`-i`; default `Cuts`, as the original).
    pub cuts_dir: PathBuf,
    /// Folder of the Summary tables `NAME_dre.fits` (`-o`; default `Summary`).
    pub summary_dir: PathBuf,
    /// Folder of the chi files `NAME_chi.h5` (`--chi`; default `Chi`, the folder the
    /// original's `-o` named).
    pub chi_dir: PathBuf,
    /// Folder of the SExtractor catalogues to join (`--catalogs`; default `Sextracted`).
    pub catalogs_dir: PathBuf,
    /// Folder of the mosaics, one sub-folder per tile; None writes none (`--mosaics`,
    /// `--mosaics-dir`; default None, the folder `Mosaics` when on, as the original).
    pub mosaics_dir: Option<PathBuf>,
    /// Also a PNG picture beside each mosaic (`--png`; default false); nothing without
    /// `mosaics_dir`.
    pub png: bool,
    /// Compression of the chi files (default medium, as the original).
    pub compression: Compression,
    /// Objects read and fitted per pass over the cube (`--chunk`; default None: the
    /// backend's, 64 on the CPU, 4096 on a GPU; the original's was a queue size).
    pub chunk: Option<usize>,
    /// Skip a tile whose outputs are complete and were made from the same inputs, options
    /// and cube (`--resume`; default false: every tile is fitted again, as the original).
    pub resume: bool,
    /// The file the cube was read from, recorded with each tile's outputs so that `resume`
    /// redoes tiles fitted with another cube (None: a cube made in memory; nothing is then
    /// skipped).
    pub cube_file: Option<PathBuf>,
}

/// How a run tells its caller what is happening (progress bars, logs).
pub trait Observer: Sync {
    /// Tile `index` of `total` (0-based), `name`, holding `objects` objects, is starting.
    fn tile_started(&self, index: usize, total: usize, name: &str, objects: usize);
    /// The cube was convolved with a new PSF in `seconds` (not called when the PSF is
    /// unchanged).
    fn convolved(&self, seconds: f64);
    /// `count` more objects of the current tile are done (fitted or failed).
    fn objects_done(&self, count: usize);
    /// The tile's outputs are written; `report` lists its failed objects and warnings.
    fn tile_finished(&self, name: &str, report: &TileReport);
    /// The tile as a whole failed (no PSF, unreadable cut file, unwritable output).
    fn tile_failed(&self, name: &str, error: &Error);
    /// Tile `index` of `total`, `name`, is skipped: its outputs are complete and made from
    /// the same inputs (only with [`RunConfig::resume`]).
    fn tile_skipped(&self, index: usize, total: usize, name: &str) {
        let _ = (index, total, name);
    }
}

/// Totals of a [`run`].
#[derive(Debug, Default)]
pub struct RunReport {
    /// Cut files found.
    pub tiles: usize,
    /// Tiles that failed as a whole.
    pub tiles_failed: usize,
    /// Tiles skipped because their outputs were complete ([`RunConfig::resume`]).
    pub tiles_skipped: usize,
    /// Objects in the tiles that did not fail.
    pub objects: usize,
    /// Objects fitted and written.
    pub fitted: usize,
    /// Objects reported as failed, and tile-level faults that did not stop their tile.
    pub objects_failed: usize,
}

impl RunReport {
    /// No tile and no object failed: exit status 0.
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
/// [`crate::open_fitter`]). Errors only when nothing can run at all (no cut folder, an
/// output folder another run is writing into); a bad tile is reported through `obs` and
/// the others go on.
pub fn run(cfg: &RunConfig, obs: &dyn Observer, fitter: &mut dyn Fitter) -> Result<RunReport> {
    run_tiles(cfg, &TileSelection::all(), obs, fitter)
}

/// [`run`] on the tiles of `selected` only (`--tiles`): a tile named that has no cut file
/// is a failed tile.
pub fn run_tiles(
    cfg: &RunConfig,
    selected: &TileSelection,
    obs: &dyn Observer,
    fitter: &mut dyn Fitter,
) -> Result<RunReport> {
    let all = list_cut_files(&cfg.cuts_dir)?;
    let missing = selected.missing(all.iter().map(|(n, _)| n.as_str()));
    let tiles = selected.filter(all, |(n, _)| n);
    let _locks = lock_outputs(cfg)?;
    let mut report = RunReport {
        tiles: tiles.len() + missing.len(),
        ..RunReport::default()
    };
    for name in &missing {
        let e = Error::file(layout::cuts_file(&cfg.cuts_dir, name), "no such cut file");
        report.tiles_failed += 1;
        obs.tile_failed(name, &e);
    }
    let chunk = cfg.chunk.unwrap_or_else(|| fitter.default_chunk());
    // A PSF's warning (an even size) is said once per file, however many tiles share it.
    let mut warned: std::collections::HashSet<PathBuf> = std::collections::HashSet::new();
    let backend = backend_name(fitter);
    for (i, (name, cuts)) in tiles.iter().enumerate() {
        let paths = tile_paths(cfg, name, cuts);
        let psf_file = cfg.psf.for_tile(name);
        let record = record_file(&cfg.summary_dir, name, "dre");
        let made_of = provenance(cfg, &backend, &paths, &psf_file);
        if cfg.resume && made_of.matches(&record) {
            report.tiles_skipped += 1;
            obs.tile_skipped(i, tiles.len(), name);
            continue;
        }
        let result = forget_record(&record)
            .and_then(|()| TileCuts::open(cuts, chunk))
            .and_then(|mut cuts| {
                obs.tile_started(i, tiles.len(), name, cuts.len());
                let psf = read_psf(&psf_file)?;
                let start = Instant::now();
                // The first batch of cuts is read while the cube is convolved.
                let boxsize = fitter.grid().boxsize;
                let convolved = rayon::in_place_scope(|s| {
                    s.spawn(|_| cuts.read_first(boxsize));
                    fitter.convolve(&psf)
                });
                if convolved.map_err(|e| e.at_file(&psf_file))? {
                    obs.convolved(start.elapsed().as_secs_f64());
                }
                fit_cuts(fitter, &paths, cuts, cfg.compression, &|k| {
                    obs.objects_done(k)
                })
                .map(|mut r| {
                    if let Some(note) = psf.centring_note() {
                        if warned.insert(psf_file.clone()) {
                            r.warnings.push(format!("{}: {note}", psf_file.display()));
                        }
                    }
                    r
                })
            })
            .map(|mut t| {
                // Only a tile with no failure is done: the others are fitted again.
                if t.failures.is_empty() {
                    if let Err(e) = made_of.write(&record, &t.outputs) {
                        t.failures.push(e);
                    }
                }
                t
            });
        tally(&mut report, obs, name, result);
    }
    Ok(report)
}

/// Whether tile `name`'s outputs are complete and were made from its cut file (in
/// `cfg.cuts_dir`), PSF, catalogue and cube with `cfg`'s options on `backend` ("CPU", or
/// "GPU NAME": [`Fitter::describe`] up to its first comma): what a run with
/// [`RunConfig::resume`] skips.
pub fn tile_up_to_date(cfg: &RunConfig, backend: &str, name: &str) -> bool {
    let cuts = layout::cuts_file(&cfg.cuts_dir, name);
    let paths = tile_paths(cfg, name, &cuts);
    let record = record_file(&cfg.summary_dir, name, "dre");
    provenance(cfg, backend, &paths, &cfg.psf.for_tile(name)).matches(&record)
}

/// Locks every output folder of the run.
fn lock_outputs(cfg: &RunConfig) -> Result<Vec<OutputLock>> {
    [
        Some(&cfg.summary_dir),
        Some(&cfg.chi_dir),
        cfg.mosaics_dir.as_ref(),
    ]
    .into_iter()
    .flatten()
    .map(|d| lock_output_dir(d, "dre"))
    .collect()
}

/// The backend without its thread count ("CPU", "GPU NAME"): what may change the bits.
fn backend_name(fitter: &dyn Fitter) -> String {
    let d = fitter.describe();
    d.split(',').next().unwrap_or_default().to_string()
}

/// What a tile's outputs are made from: its cut file, PSF, catalogue and the cube, and the
/// options that change (or place) the outputs.
fn provenance(cfg: &RunConfig, backend: &str, paths: &TilePaths, psf: &Path) -> Provenance {
    let mut p = Provenance::new("dre");
    let shown = |d: Option<&PathBuf>| d.map_or("none".to_string(), |d| d.display().to_string());
    p.option("backend", backend)
        .option("compression", format!("{:?}", cfg.compression))
        .option("chi", paths.chi.display())
        .option("summary", paths.summary.display())
        .option("mosaics", shown(paths.mosaics.as_ref()))
        .input(&paths.cuts)
        .input(psf);
    // Only when on, so that the records of runs without pictures keep matching.
    if paths.png && paths.mosaics.is_some() {
        p.option("png", "on");
    }
    if let Some(c) = &paths.catalog {
        p.input(c);
    }
    match &cfg.cube_file {
        Some(f) => p.input(f),
        None => p.unknown(),
    };
    p
}

fn tile_paths(cfg: &RunConfig, name: &str, cuts: &Path) -> TilePaths {
    TilePaths {
        name: name.to_string(),
        cuts: cuts.to_path_buf(),
        catalog: Some(layout::find_sextracted(&cfg.catalogs_dir, name).catalog),
        chi: layout::chi_file(&cfg.chi_dir, name),
        summary: layout::summary_file(&cfg.summary_dir, name),
        mosaics: cfg
            .mosaics_dir
            .as_ref()
            .map(|d| layout::mosaic_dir(d, name)),
        png: cfg.png,
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
