//! Fitting one tile: its cut file against the cube convolved with its PSF, writing the chi
//! file, the Summary and (optionally) the mosaics and their pictures. A bad object is reported and skipped;
//! only a fault of the tile as a whole (unreadable cut file, unwritable output) is an error.

use crate::conventions::parse_object_name;
use crate::error::{Error, Result};
use crate::fit::backend::Fitter;
use crate::fit::kernel::{masked_pixels_warning, Prepared};
use crate::fit::params::batch_parameters;
use crate::io::atomic::PendingFile;
use crate::io::chi::ChiWriter;
use crate::io::compression::Compression;
use crate::io::cuts::{Cut, CutReader};
use crate::io::table::{read_catalog, write_table_with_cards};
use crate::layout;
use crate::output::mosaic::{mosaic, MosaicWriter};
use crate::output::mosaic_png::{mosaic_title, write_mosaic_png};
use crate::output::summary::{join_keys, summary_table, FitRow};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Where one tile's inputs are and its outputs go.
#[derive(Clone, Debug)]
pub struct TilePaths {
    /// Tile name NAME (names the mosaics).
    pub name: String,
    /// The cut file `NAME_cuts.h5`.
    pub cuts: PathBuf,
    /// The SExtractor catalogue to join; None or a missing file gives a Summary without it.
    pub catalog: Option<PathBuf>,
    /// The chi file to write, `NAME_chi.h5`.
    pub chi: PathBuf,
    /// The Summary table to write, `NAME_dre.fits`.
    pub summary: PathBuf,
    /// Folder for this tile's mosaics, when wanted.
    pub mosaics: Option<PathBuf>,
    /// Also a PNG picture beside each mosaic ([`crate::mosaic_png`]); nothing without
    /// `mosaics`.
    pub png: bool,
}

/// What happened to one tile.
#[derive(Debug, Default)]
pub struct TileReport {
    /// Objects (groups) in the cut file.
    pub objects: usize,
    /// Objects fitted and written to the chi file.
    pub fitted: usize,
    /// Objects that could not be fitted, and tile-level faults that did not stop the tile.
    pub failures: Vec<Error>,
    /// Things worth knowing that are not failures (no catalogue to join).
    pub warnings: Vec<String>,
    /// Wall time of the tile in seconds: reading, fitting and writing, not the convolution.
    pub fit_seconds: f64,
    /// The files written: the mosaics (and their pictures), the chi file and the Summary.
    pub outputs: Vec<PathBuf>,
}

/// Fits every object of a tile against the models of `fitter`, already convolved with the
/// tile's PSF. `chunk` objects are read and fitted together; `progress(k)` is called as k
/// more objects are done.
pub fn fit_tile(
    fitter: &mut dyn Fitter,
    paths: &TilePaths,
    compression: Compression,
    chunk: usize,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<TileReport> {
    let cuts = TileCuts::open(&paths.cuts, chunk)?;
    fit_cuts(fitter, paths, cuts, compression, progress)
}

/// A tile's cut file, open, its objects read `chunk` at a time; the first batch may be read
/// ahead (while the cube is convolved, by [`crate::run`]).
pub(crate) struct TileCuts {
    reader: CutReader,
    chunk: usize,
    first: Option<Vec<Result<Loaded>>>,
}

impl TileCuts {
    pub(crate) fn open(path: &Path, chunk: usize) -> Result<TileCuts> {
        Ok(TileCuts {
            reader: CutReader::open(path)?,
            chunk: chunk.max(1),
            first: None,
        })
    }

    /// Number of objects (for progress bars).
    pub(crate) fn len(&self) -> usize {
        self.reader.names().len()
    }

    /// Reads and packs the first batch, for stamps of `boxsize`.
    pub(crate) fn read_first(&mut self, boxsize: usize) {
        let names = self.reader.names().chunks(self.chunk).next();
        self.first = names.map(|names| load(&self.reader, names, boxsize));
    }
}

/// [`fit_tile`] on a cut file already open.
pub(crate) fn fit_cuts(
    fitter: &mut dyn Fitter,
    paths: &TilePaths,
    cuts: TileCuts,
    compression: Compression,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<TileReport> {
    let start = Instant::now();
    let TileCuts {
        reader,
        chunk,
        first,
    } = cuts;
    let grid = &fitter.grid().clone();
    let b = grid.boxsize;
    let mut report = TileReport {
        objects: reader.names().len(),
        ..TileReport::default()
    };
    let catalog = match &paths.catalog {
        // A catalogue that cannot be joined (repeated NUMBERs) is refused like an unreadable
        // one: a failure, and a Summary of the fit columns.
        Some(p) if p.is_file() => match read_catalog(p).and_then(|t| match join_keys(&t) {
            Ok(_) => Ok(t),
            Err(e) => Err(Error::file(
                p,
                format!("{e}; the Summary has the fit columns only"),
            )),
        }) {
            Ok(t) => Some(t),
            Err(e) => {
                report.failures.push(e);
                None
            }
        },
        Some(p) => {
            report.warnings.push(format!(
                "{}: no catalogue, the Summary has the fit columns only",
                p.display()
            ));
            None
        }
        None => None,
    };

    // Every output folder must be writable before any output is written, so that a tile
    // never ends with a new chi file beside an old Summary.
    drop(PendingFile::new(&paths.summary)?);
    let mut chi_out = ChiWriter::create(&paths.chi, grid.shape(), compression)?;
    let mut mosaics = match &paths.mosaics {
        Some(_) => Some(MosaicWriter::start(b)?),
        None => None,
    };
    let mut rows = Vec::new();
    // Objects fitted without some of their pixels, for one warning per file.
    let mut masked: Vec<(String, usize, usize)> = Vec::new();
    // The next batch is read and packed on the thread pool while this one is fitted: its
    // reading takes the HDF5 lock, one thread at a time, and would leave the other cores idle.
    let batches: Vec<&[String]> = reader.names().chunks(chunk).collect();
    let mut next = first.or_else(|| batches.first().map(|names| load(&reader, names, b)));
    for (i, names) in batches.iter().enumerate() {
        let mut cuts: Vec<(Cut, (u32, u64))> = Vec::new();
        let mut ready: Vec<Prepared> = Vec::new();
        for loaded in next.take().unwrap_or_default() {
            match loaded {
                Ok((cut, key, p)) => {
                    masked.push((p.name.clone(), p.bad_rms, p.nan_data));
                    cuts.push((cut, key));
                    ready.push(p);
                }
                Err(e) => report.failures.push(e),
            }
        }
        let fitted = rayon::in_place_scope(|s| {
            if let Some(names) = batches.get(i + 1) {
                s.spawn(|_| next = Some(load(&reader, names, b)));
            }
            fitter.fit(&ready)
        });
        let chis = fitted.map_err(|e| e.at_file(&paths.cuts))?;
        // `Fitter` is a public trait: check what an implementation outside this crate gives.
        if chis.len() != ready.len() {
            return Err(Error::Invalid(format!(
                "{}: {} chi cubes for {} objects",
                fitter.describe(),
                chis.len(),
                ready.len()
            )));
        }
        if let Some(c) = chis.iter().find(|c| c.len() != grid.n_models()) {
            return Err(Error::Invalid(format!(
                "{}: a chi cube of {} values for a grid of {} models",
                fitter.describe(),
                c.len(),
                grid.n_models()
            )));
        }
        let all = batch_parameters(&*fitter, &chis, &ready).map_err(|e| e.at_file(&paths.cuts))?;
        // (file, cut, model, scale, title) of each picture to draw (`--png`).
        type Picture<'a> = (
            PathBuf,
            &'a Cut,
            std::borrow::Cow<'a, [f32]>,
            f32,
            Vec<String>,
        );
        let mut pictures: Vec<Picture> = Vec::new();
        for ((((cut, (ext, number)), obj), chi), params) in
            cuts.iter().zip(&ready).zip(&chis).zip(all)
        {
            let Some(params) = params else {
                report.failures.push(Error::object(
                    &paths.cuts,
                    &obj.name,
                    "every model gives NaN chi (no usable pixel)",
                ));
                continue;
            };
            chi_out.add(&obj.name, chi)?;
            if let (Some(dir), Some(writer)) = (&paths.mosaics, mosaics.as_mut()) {
                let k = flat_index(grid.shape(), params.model_idx);
                let model = fitter.model(k).map_err(|e| e.at_file(&paths.cuts))?;
                if model.len() != grid.stamp_len() {
                    return Err(Error::Invalid(format!(
                        "{}: model {k} has {} pixels, not {b}x{b}",
                        fitter.describe(),
                        model.len()
                    )));
                }
                let scale = obj.scale(&model);
                let img = mosaic(&cut.obj, &cut.seg, &model, scale, obj.flux, b);
                let file = layout::mosaic_file(dir, &paths.name, &obj.name);
                writer.add(file, img)?;
                if paths.png {
                    let png = layout::mosaic_png_file(dir, &paths.name, &obj.name);
                    let title = mosaic_title(&paths.name, &obj.name, &params);
                    pictures.push((png, cut, model, scale, title));
                }
            }
            rows.push(FitRow {
                ext: *ext,
                number: *number,
                params,
            });
            report.fitted += 1;
        }
        // The batch's pictures are drawn on the thread pool: each takes milliseconds, and
        // one after another they would take longer than the fit.
        let drawn: Vec<Result<PathBuf>> = {
            use rayon::prelude::*;
            pictures
                .into_par_iter()
                .map(|(png, cut, model, scale, title)| {
                    write_mosaic_png(&png, &cut.obj, &cut.seg, &model, scale, b, &title)
                        .map_err(|e| e.at_file(&png))
                        .map(|()| png)
                })
                .collect()
        };
        for png in drawn {
            report.outputs.push(png?);
        }
        progress(names.len());
    }
    report
        .warnings
        .extend(masked_pixels_warning(&paths.cuts, &masked));
    let table = summary_table(&rows, catalog.as_ref()).map_err(|e| {
        let cat = paths.catalog.clone().unwrap_or_default();
        e.at_file(cat)
    })?;
    if catalog.is_some() && table.nrows() < rows.len() {
        report.warnings.push(format!(
            "{}: {} fitted objects have no row in the catalogue and are left out of the Summary \
             (their chi cubes are in the chi file)",
            paths.catalog.as_deref().unwrap_or(Path::new("")).display(),
            rows.len() - table.nrows()
        ));
    }
    if let Some(w) = mosaics {
        report.outputs.extend(w.finish()?);
    }
    chi_out.finish()?;
    // The DRE_FLAGS bits, named in the header: DREFLGk is bit 2^k.
    let cards: Vec<crate::io::fits::Card> = if table.has("DRE_FLAGS") {
        crate::fit::refine::DRE_FLAG_BITS
            .iter()
            .map(|&(bit, name, meaning)| {
                let key = format!("DREFLG{}", bit.trailing_zeros());
                crate::io::fits::Card::text(&key, name, &format!("DRE_FLAGS {bit}: {meaning}"))
            })
            .collect()
    } else {
        Vec::new()
    };
    write_table_with_cards(&paths.summary, &table, &cards)?;
    report.outputs.push(paths.chi.clone());
    report.outputs.push(paths.summary.clone());
    report.warnings.extend(reader.warnings());
    report.fit_seconds = start.elapsed().as_secs_f64();
    Ok(report)
}

/// An object read, its key (EXT_NUMBER, NUMBER) and its segment packed for the fit.
type Loaded = (Cut, (u32, u64), Prepared);

/// Reads objects `names` of `reader` and packs each for stamps of `boxsize`, on the
/// thread pool; a bad object is its own error, in its place.
fn load(reader: &CutReader, names: &[String], boxsize: usize) -> Vec<Result<Loaded>> {
    use rayon::prelude::*;
    let path = reader.path();
    reader
        .read_many(names)
        .into_par_iter()
        .zip(names)
        .map(|(cut, name)| {
            let cut = cut?;
            let Some(key) = parse_object_name(name) else {
                return Err(Error::object(path, name, "group name is not EE_NNNN"));
            };
            let p = Prepared::new(&cut, boxsize, path)?;
            Ok((cut, key, p))
        })
        .collect()
}

fn flat_index(shape: [usize; 4], idx: [usize; 4]) -> usize {
    ((idx[0] * shape[1] + idx[1]) * shape[2] + idx[2]) * shape[3] + idx[3]
}
