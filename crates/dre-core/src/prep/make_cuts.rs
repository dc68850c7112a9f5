//! make_cuts (SPEC 2): cuts every selected object of a SExtractor-processed tile out of the
//! background-subtracted image, the RMS map and the cleaned segmentation mask, into
//! `NAME_cuts.h5`.

use crate::conventions::{fits_to_index, object_name, stamp_centre};
use crate::error::{AtPath, Error, Result};
use crate::io::compression::Compression;
use crate::io::cuts::{Cut, CutWriter, CUT_BATCH};
use crate::io::image::{ImageHdu, Plane};
use crate::io::table::{read_catalog, Table};
use crate::layout;
use crate::output::summary::duplicate_keys;
use crate::pipeline::resume::{forget_record, record_file, Provenance};
use crate::prep::centroid::{centroid, CentroidMode};
use crate::prep::segment::clean_mask;
use crate::prep::shift::{shift_cubic, shift_nearest};
use crate::prep::window::Window;
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// Keep objects with `min < PARAM < max`.
#[derive(Clone, Debug, PartialEq)]
pub struct Filter {
    /// Catalogue column (e.g. `MAG_AUTO`).
    pub param: String,
    /// Exclusive lower bound.
    pub min: f64,
    /// Exclusive upper bound.
    pub max: f64,
}

/// Which objects [`cut_tile`] cuts, and how.
#[derive(Clone, Debug, PartialEq)]
pub struct CutOptions {
    /// Objects closer than this to an image edge (in X_IMAGE, Y_IMAGE) are left out
    /// (pixels; default 80, as the original).
    pub margin: f64,
    /// Objects with CLASS_STAR at or above this are stars (default 0.5, as the original
    /// documents; its binary used 1.0).
    pub max_stellarity: f64,
    /// Catalogue filters (`-f PARAM MIN MAX`), all of which must pass (default none).
    pub filters: Vec<Filter>,
    /// Re-centre each cut on this centroid (default None: cut on X_IMAGE, Y_IMAGE).
    pub centroids: Option<CentroidMode>,
    /// Compression of the cut file (default medium, as the original).
    pub compression: Compression,
    /// Side of the cuts in pixels (default 128, as the original).
    pub boxsize: usize,
}

impl Default for CutOptions {
    fn default() -> Self {
        CutOptions {
            margin: 80.0,
            max_stellarity: 0.5,
            filters: Vec::new(),
            centroids: None,
            compression: Compression::Medium,
            boxsize: 128,
        }
    }
}

/// The files of one tile.
#[derive(Clone, Debug, PartialEq)]
pub struct TileInputs {
    /// Tile name: the image's file stem; names the cut file `NAME_cuts.h5`.
    pub name: String,
    /// The science image (its header gives the image size; its pixels flag NaN areas).
    pub tile: PathBuf,
    /// SExtractor catalogue `NAME_cat.fits` (FITS_LDAC).
    pub catalog: PathBuf,
    /// Background-subtracted image `NAME_nb.fits` (-BACKGROUND check image): the `obj` cuts.
    pub nb: PathBuf,
    /// Background RMS `NAME_rms.fits` (BACKGROUND_RMS check image): the `rms` cuts.
    pub rms: PathBuf,
    /// Segmentation `NAME_seg.fits` (SEGMENTATION check image): the `seg` masks.
    pub seg: PathBuf,
}

impl TileInputs {
    /// The inputs of `tile` (`DIR/NAME.fits`): check images in `sextracted/NAME/NAME_*.fits` or,
    /// without that folder, `sextracted/NAME_*.fits`; the catalogue beside them, or in
    /// `catalogs/NAME_cat.fits`.
    pub fn locate(tile: &Path, sextracted: &Path, catalogs: Option<&Path>) -> Self {
        let name = tile
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let found = layout::find_sextracted(sextracted, &name);
        TileInputs {
            catalog: catalogs.map_or(found.catalog, |c| {
                layout::sextracted_files(c, &name, false).catalog
            }),
            nb: found.background,
            rms: found.rms,
            seg: found.segmentation,
            tile: tile.to_path_buf(),
            name,
        }
    }
}

/// The `*.fits` files of `dir`, sorted.
pub fn list_tile_images(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        return Err(Error::file(dir, "no such folder"));
    }
    let mut tiles: Vec<PathBuf> = std::fs::read_dir(dir)
        .at(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "fits"))
        .collect();
    tiles.sort();
    Ok(tiles)
}

/// Where the cut file of tile `name` goes in `output`.
pub fn cuts_path(output: &Path, name: &str) -> PathBuf {
    layout::cuts_file(output, name)
}

/// Why objects of a tile were not cut.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Skipped {
    /// Within `margin` of an edge.
    pub near_edge: usize,
    /// CLASS_STAR >= max_stellarity (or NaN).
    pub stars: usize,
    /// Outside a `--filter` range.
    pub filtered: usize,
    /// NaN in the science image under the cut.
    pub nan: usize,
    /// The window leaves the image (only with a margin under half the box).
    pub off_image: usize,
    /// Re-centring found no centroid.
    pub no_centroid: usize,
    /// No usable pixel under the segment: an infinite pixel in the background-subtracted
    /// image, no positive finite rms, or nothing but NaN (each also a warning).
    pub unusable: usize,
}

impl Skipped {
    /// Objects not cut, for any reason.
    pub fn total(&self) -> usize {
        self.near_edge
            + self.stars
            + self.filtered
            + self.nan
            + self.off_image
            + self.no_centroid
            + self.unusable
    }
}

/// What [`cut_tile`] did with one tile.
#[derive(Clone, Debug, PartialEq)]
pub struct CutReport {
    /// Tile name.
    pub name: String,
    /// The cut file written, `OUTPUT/NAME_cuts.h5`.
    pub output: PathBuf,
    /// Objects cut (groups in the file).
    pub cut: usize,
    /// Catalogue objects left out, by reason.
    pub skipped: Skipped,
    /// Lines `PATH: [object NAME: ]message` about the check images: objects left out for
    /// their pixels, and (once per image) objects cut with pixels dre will leave out.
    pub warnings: Vec<String>,
}

/// What a tile's cut file is made from: its five input files and the options.
fn provenance(inputs: &TileInputs, output: &Path, opts: &CutOptions) -> Provenance {
    let mut p = Provenance::new("make_cuts");
    p.option("output", cuts_path(output, &inputs.name).display())
        .option("options", format!("{opts:?}"));
    for f in [
        &inputs.tile,
        &inputs.catalog,
        &inputs.nb,
        &inputs.rms,
        &inputs.seg,
    ] {
        p.input(f);
    }
    p
}

/// Whether tile `inputs.name`'s cut file in `output` is complete and was cut from these
/// same files with these same options (its record, written by [`cut_tile`], says so):
/// `make_cuts --resume` skips such a tile.
pub fn cuts_up_to_date(inputs: &TileInputs, output: &Path, opts: &CutOptions) -> bool {
    provenance(inputs, output, opts).matches(&record_file(output, &inputs.name, "make_cuts"))
}

/// Cuts the objects of one tile into `output/NAME_cuts.h5` (written whole or not at all),
/// then records what it was cut from (see [`cuts_up_to_date`]).
pub fn cut_tile(inputs: &TileInputs, output: &Path, opts: &CutOptions) -> Result<CutReport> {
    if opts.boxsize == 0 {
        return Err(Error::Invalid(
            "the cut box size must be at least 1 pixel".into(),
        ));
    }
    let record = record_file(output, &inputs.name, "make_cuts");
    let made_of = provenance(inputs, output, opts);
    forget_record(&record)?;
    let catalog = Catalog::read(&inputs.catalog, opts)?;
    let out_path = cuts_path(output, &inputs.name);
    // Every image is opened before anything is written, so bad inputs fail the tile early.
    let mut exts = catalog.ext.clone();
    exts.sort_unstable();
    exts.dedup();
    let images = exts
        .into_iter()
        .map(|ext| Ok((ext, TileHdus::open(inputs, ext)?)))
        .collect::<Result<Vec<_>>>()?;
    // Dropped on error, the writer leaves nothing behind. A tile with nothing to cut gets an
    // empty file, as in the original.
    let mut writer = CutWriter::create(&out_path, opts.compression)?;
    let mut skipped = Skipped::default();
    let mut notes = Notes::default();
    let mut cut = 0;
    // SExtractor's catalogue of a multi-extension image is already in extension order.
    for (ext, hdus) in images {
        // One extension's pixels in memory at a time (a mosaic may have dozens).
        let mut imgs = hdus.load()?;
        let (width, height) = imgs.tile.size();
        let mut chosen = Vec::new();
        for row in (0..catalog.len()).filter(|&r| catalog.ext[r] == ext) {
            match select(&catalog, row, width, height, opts) {
                Ok(w) => chosen.push((row, w)),
                Err(reason) => reason.count(&mut skipped),
            }
        }
        // The windows are read in order (cfitsio stays on this thread), the cuts made from
        // them on the thread pool, a writer's batch at a time, and written in order.
        for batch in chosen.chunks(CUT_BATCH) {
            let raws = batch
                .iter()
                .map(|(row, w)| imgs.read(w).map(|r| (*row, *w, r)))
                .collect::<Result<Vec<_>>>()?;
            let made: Vec<_> = raws
                .into_par_iter()
                .map(|(row, w, raw)| {
                    let number = catalog.number[row];
                    let name = object_name(ext as u32, number);
                    raw.cut(&w, number, name, opts, inputs)
                })
                .collect();
            for (made, note) in made {
                notes.add(note);
                match made {
                    Ok(c) => {
                        writer.add(c)?;
                        cut += 1;
                    }
                    Err(reason) => reason.count(&mut skipped),
                }
            }
        }
    }
    writer.finish()?;
    made_of.write(&record, std::slice::from_ref(&out_path))?;
    Ok(CutReport {
        name: inputs.name.clone(),
        output: out_path,
        cut,
        skipped,
        warnings: notes.into_warnings(inputs),
    })
}

/// What the check images held under the objects' segments, for the tile's warnings.
#[derive(Default)]
struct Notes {
    /// One line per object left out.
    refused: Vec<String>,
    /// Objects cut with some segment pixels of rms <= 0 or not finite.
    bad_rms: Vec<String>,
    /// Objects cut with some NaN segment pixels in the background-subtracted image.
    nan_data: Vec<String>,
}

/// What one object's check images held, for [`Notes`].
#[derive(Default)]
struct ObjectNote {
    refused: Option<String>,
    bad_rms: Option<String>,
    nan_data: Option<String>,
}

impl Notes {
    fn add(&mut self, n: ObjectNote) {
        self.refused.extend(n.refused);
        self.bad_rms.extend(n.bad_rms);
        self.nan_data.extend(n.nan_data);
    }

    fn into_warnings(self, inputs: &TileInputs) -> Vec<String> {
        let mut out = self.refused;
        let few = |names: &[String]| {
            const SHOWN: usize = 5;
            let mut s = names[..names.len().min(SHOWN)].join(", ");
            if names.len() > SHOWN {
                s.push_str(&format!(" and {} more", names.len() - SHOWN));
            }
            s
        };
        if !self.bad_rms.is_empty() {
            out.push(format!(
                "{}: {} objects ({}) have an rms <= 0 or not finite under their segment: cut \
                 as they are, dre leaves those pixels out of their fit",
                inputs.rms.display(),
                self.bad_rms.len(),
                few(&self.bad_rms)
            ));
        }
        if !self.nan_data.is_empty() {
            out.push(format!(
                "{}: {} objects ({}) have NaN pixels under their segment (no background \
                 there?): cut as they are, dre leaves those pixels out of their fit",
                inputs.nb.display(),
                self.nan_data.len(),
                few(&self.nan_data)
            ));
        }
        out
    }
}

/// The catalogue columns the cutting needs, checked once.
struct Catalog {
    x: Vec<f64>,
    y: Vec<f64>,
    class_star: Vec<f64>,
    number: Vec<u64>,
    ext: Vec<usize>,
    filters: Vec<(Vec<f64>, f64, f64)>,
}

impl Catalog {
    fn read(path: &Path, opts: &CutOptions) -> Result<Self> {
        if !path.is_file() {
            return Err(Error::file(path, "no such file"));
        }
        let table = read_catalog(path)?;
        let float = |name: &str| -> Result<Vec<f64>> {
            numeric(&table, name).ok_or_else(|| Error::file(path, no_column(name)))
        };
        let int = |name: &str| -> Result<Vec<i64>> {
            table
                .column(name)
                .and_then(|c| c.as_i64())
                .ok_or_else(|| Error::file(path, no_column(name)))
        };
        let non_negative = |name: &str, v: Vec<i64>| -> Result<Vec<u64>> {
            v.into_iter()
                .map(|n| {
                    u64::try_from(n).map_err(|_| Error::file(path, format!("negative {name}")))
                })
                .collect()
        };
        let number = non_negative("NUMBER", int("NUMBER")?)?;
        let ext: Vec<usize> = if table.has("EXT_NUMBER") {
            non_negative("EXT_NUMBER", int("EXT_NUMBER")?)?
                .into_iter()
                .map(|e| e as usize)
                .collect()
        } else {
            vec![0; number.len()]
        };
        // Each object's cut is named by (EXT_NUMBER, NUMBER): a repeated one cannot be cut.
        let keys: Vec<(i64, i64)> = ext
            .iter()
            .zip(&number)
            .map(|(&e, &n)| (e as i64, n as i64))
            .collect();
        if let Some(d) = duplicate_keys(&keys, table.has("EXT_NUMBER")) {
            return Err(Error::file(
                path,
                format!("{d}: each object needs its own (its cut is named EE_NNNN)"),
            ));
        }
        let filters = opts
            .filters
            .iter()
            .map(|f| Ok((float(&f.param)?, f.min, f.max)))
            .collect::<Result<_>>()?;
        Ok(Catalog {
            x: float("X_IMAGE")?,
            y: float("Y_IMAGE")?,
            class_star: float("CLASS_STAR")?,
            number,
            ext,
            filters,
        })
    }

    fn len(&self) -> usize {
        self.number.len()
    }
}

fn numeric(table: &Table, name: &str) -> Option<Vec<f64>> {
    table.column(name)?.as_f64()
}

fn no_column(name: &str) -> String {
    format!("no numeric column {name} in the catalogue")
}

/// Why one object is not cut.
enum Reject {
    NearEdge,
    Star,
    Filtered,
    Nan,
    OffImage,
    NoCentroid,
    Unusable,
}

impl Reject {
    fn count(self, s: &mut Skipped) {
        *match self {
            Reject::NearEdge => &mut s.near_edge,
            Reject::Star => &mut s.stars,
            Reject::Filtered => &mut s.filtered,
            Reject::Nan => &mut s.nan,
            Reject::OffImage => &mut s.off_image,
            Reject::NoCentroid => &mut s.no_centroid,
            Reject::Unusable => &mut s.unusable,
        } += 1;
    }
}

/// The catalogue cuts (strict inequalities, so NaN values fail them), then the window.
fn select(
    cat: &Catalog,
    row: usize,
    width: usize,
    height: usize,
    opts: &CutOptions,
) -> std::result::Result<Window, Reject> {
    let inside = |v: f64, n: usize| opts.margin < v && v < n as f64 - opts.margin;
    if !(inside(cat.x[row], width) && inside(cat.y[row], height)) {
        return Err(Reject::NearEdge);
    }
    let galaxy = cat.class_star[row] < opts.max_stellarity;
    if !galaxy {
        return Err(Reject::Star);
    }
    if !cat
        .filters
        .iter()
        .all(|(v, min, max)| *min < v[row] && v[row] < *max)
    {
        return Err(Reject::Filtered);
    }
    // SExtractor positions are 1-based.
    let window = Window::centred(
        fits_to_index(cat.x[row]),
        fits_to_index(cat.y[row]),
        opts.boxsize,
    );
    if !window.fits_in(width, height) {
        // The original would write a trimmed, off-centre cut that no later stage can use.
        return Err(Reject::OffImage);
    }
    Ok(window)
}

/// The four images of one extension of a tile, opened and checked.
struct TileHdus {
    tile: ImageHdu,
    nb: ImageHdu,
    rms: ImageHdu,
    seg: ImageHdu,
}

/// The four images of one extension of a tile, read.
struct TileImages {
    tile: Plane<f32>,
    nb: Plane<f32>,
    rms: Plane<f32>,
    seg: Plane<i64>,
    _held: Option<HeldPixels<'static>>,
}

/// Images of at most this many pixels are read whole (20 bytes a pixel for the four: 1.3 GB
/// at this size, 8192 x 8192); larger ones a window at a time.
const WHOLE_IMAGE_PIXELS: usize = 1 << 26;

/// At most this many pixels of tiles held whole at once in the process (2.7 GB for the four
/// images), over all the tiles being cut in parallel: past it a tile reads its windows from
/// the files (the same values, more slowly) rather than hold more memory.
static HELD_PIXELS: PixelBudget = PixelBudget::new(2 * WHOLE_IMAGE_PIXELS);

/// Pixels that may be held in memory, shared by the threads.
struct PixelBudget {
    max: usize,
    held: std::sync::Mutex<usize>,
}

/// A share of a [`PixelBudget`], given back when dropped.
struct HeldPixels<'a> {
    budget: &'a PixelBudget,
    pixels: usize,
}

impl PixelBudget {
    const fn new(max: usize) -> Self {
        PixelBudget {
            max,
            held: std::sync::Mutex::new(0),
        }
    }

    /// `pixels` of the budget, if they fit in what is left of it.
    fn take(&self, pixels: usize) -> Option<HeldPixels<'_>> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        (*held + pixels <= self.max).then(|| {
            *held += pixels;
            HeldPixels {
                budget: self,
                pixels,
            }
        })
    }
}

impl Drop for HeldPixels<'_> {
    fn drop(&mut self) {
        *self.budget.held.lock().unwrap_or_else(|e| e.into_inner()) -= self.pixels;
    }
}

/// One object's windows of the four images.
struct RawCut {
    science: Vec<f32>,
    obj: Vec<f32>,
    rms: Vec<f32>,
    labels: Vec<i64>,
}

impl TileHdus {
    fn open(inputs: &TileInputs, ext: usize) -> Result<Self> {
        let tile = ImageHdu::open(&inputs.tile, ext)?;
        let (width, height) = (tile.width, tile.height);
        let check = |path: &Path| -> Result<ImageHdu> {
            let img = ImageHdu::open(path, ext)?;
            if (img.width, img.height) != (width, height) {
                return Err(Error::file(
                    path,
                    format!(
                        "image is {}x{}, the tile {width}x{height}",
                        img.width, img.height
                    ),
                ));
            }
            Ok(img)
        };
        Ok(TileHdus {
            nb: check(&inputs.nb)?,
            rms: check(&inputs.rms)?,
            seg: check(&inputs.seg)?,
            tile,
        })
    }

    fn load(self) -> Result<TileImages> {
        let pixels = self.tile.width.saturating_mul(self.tile.height);
        let held = (pixels <= WHOLE_IMAGE_PIXELS)
            .then(|| HELD_PIXELS.take(pixels))
            .flatten();
        // Whole when its pixels are held, else a window at a time.
        let max = held.as_ref().map_or(0, |h| h.pixels);
        Ok(TileImages {
            tile: Plane::new(self.tile, max)?,
            nb: Plane::new(self.nb, max)?,
            rms: Plane::new(self.rms, max)?,
            seg: Plane::new(self.seg, max)?,
            _held: held,
        })
    }
}

impl TileImages {
    fn read(&mut self, window: &Window) -> Result<RawCut> {
        Ok(RawCut {
            science: self.tile.window(window)?,
            obj: self.nb.window(window)?,
            rms: self.rms.window(window)?,
            labels: self.seg.window(window)?,
        })
    }
}

impl RawCut {
    /// The cut of object `number` (named `name`) from its windows, or why there is none,
    /// and what its check images held.
    fn cut(
        self,
        window: &Window,
        number: u64,
        name: String,
        opts: &CutOptions,
        inputs: &TileInputs,
    ) -> (std::result::Result<Cut, Reject>, ObjectNote) {
        let mut note = ObjectNote::default();
        if sum_is_nan(&self.science) {
            return (Err(Reject::Nan), note);
        }
        let size = window.size;
        let RawCut {
            mut obj,
            mut rms,
            labels,
            ..
        } = self;
        let mut seg: Vec<bool> = labels.iter().map(|&l| l == number as i64).collect();
        clean_mask(&mut seg, size);
        if let Some(mode) = opts.centroids {
            let outside: Vec<bool> = seg.iter().map(|&s| !s).collect();
            let Some((cx, cy)) = centroid(&obj, &outside, size, mode) else {
                return (Err(Reject::NoCentroid), note);
            };
            let centre = stamp_centre(size);
            let (dx, dy) = (centre - cx, centre - cy);
            obj = shift_cubic(&obj, size, dy, dx);
            rms = shift_cubic(&rms, size, dy, dx);
            seg = shift_nearest(&seg, size, dy, dx);
        }
        // What dre will find under the segment: refused here if it could not fit the object.
        let under = |v: &[f32]| -> Vec<f32> {
            v.iter()
                .zip(&seg)
                .filter_map(|(&x, &s)| s.then_some(x))
                .collect()
        };
        let (data, noise) = (under(&obj), under(&rms));
        let rms_ok = |r: f32| r.is_finite() && r > 0.0;
        let infinite = data.iter().filter(|d| d.is_infinite()).count();
        let refuse = if infinite > 0 {
            Some((
                &inputs.nb,
                format!("{infinite} infinite pixels under its segment"),
            ))
        } else if !noise.iter().any(|&r| rms_ok(r)) {
            Some((
                &inputs.rms,
                "no positive finite rms under its segment (zero, negative or NaN noise)".into(),
            ))
        } else if !data
            .iter()
            .zip(&noise)
            .any(|(d, &r)| !d.is_nan() && rms_ok(r))
        {
            Some((
                &inputs.nb,
                "no pixel under its segment has both data and a positive finite rms".into(),
            ))
        } else {
            None
        };
        if let Some((file, why)) = refuse {
            note.refused = Some(format!(
                "{}: object {name}: {why}: left out",
                file.display()
            ));
            return (Err(Reject::Unusable), note);
        }
        if noise.iter().any(|&r| !rms_ok(r)) {
            note.bad_rms = Some(name.clone());
        }
        if data.iter().any(|d| d.is_nan()) {
            note.nan_data = Some(name.clone());
        }
        let cut = Cut {
            name,
            size,
            obj,
            seg,
            rms,
        };
        (Ok(cut), note)
    }
}

/// Whether numpy's sum of the pixels is NaN: a NaN, or infinities of both signs.
fn sum_is_nan(v: &[f32]) -> bool {
    v.iter().any(|x| x.is_nan()) || (v.contains(&f32::INFINITY) && v.contains(&f32::NEG_INFINITY))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What is taken is held until dropped; what does not fit is refused, not waited for.
    #[test]
    fn a_pixel_budget_lends_what_it_has_left() {
        let budget = PixelBudget::new(100);
        let a = budget.take(60).unwrap();
        assert!(budget.take(41).is_none());
        let b = budget.take(40).unwrap();
        assert!(budget.take(1).is_none());
        drop(a);
        assert!(budget.take(61).is_none());
        let c = budget.take(60).unwrap();
        drop((b, c));
        assert_eq!(*budget.held.lock().unwrap(), 0);
        assert!(budget.take(100).is_some());
    }

    fn catalog(x: f64, y: f64, class_star: f64, mag: f64) -> Catalog {
        Catalog {
            x: vec![x],
            y: vec![y],
            class_star: vec![class_star],
            number: vec![1],
            ext: vec![0],
            filters: vec![(vec![mag], 17.0, 21.0)],
        }
    }

    fn verdict(c: &Catalog) -> &'static str {
        match select(c, 0, 1024, 512, &CutOptions::default()) {
            Ok(_) => "cut",
            Err(Reject::NearEdge) => "edge",
            Err(Reject::Star) => "star",
            Err(Reject::Filtered) => "filtered",
            Err(_) => "other",
        }
    }

    #[test]
    fn selection_uses_strict_inequalities() {
        assert_eq!(verdict(&catalog(500.0, 300.0, 0.1, 19.0)), "cut");
        assert_eq!(verdict(&catalog(80.0, 300.0, 0.1, 19.0)), "edge");
        assert_eq!(verdict(&catalog(80.01, 300.0, 0.1, 19.0)), "cut");
        assert_eq!(verdict(&catalog(944.0, 300.0, 0.1, 19.0)), "edge");
        assert_eq!(verdict(&catalog(943.9, 300.0, 0.1, 19.0)), "cut");
        // y against NAXIS2 = 512.
        assert_eq!(verdict(&catalog(500.0, 432.0, 0.1, 19.0)), "edge");
        assert_eq!(verdict(&catalog(500.0, 300.0, 0.5, 19.0)), "star");
        assert_eq!(verdict(&catalog(500.0, 300.0, f64::NAN, 19.0)), "star");
        assert_eq!(verdict(&catalog(500.0, 300.0, 0.49, 17.0)), "filtered");
        assert_eq!(verdict(&catalog(500.0, 300.0, 0.49, 21.0)), "filtered");
        assert_eq!(verdict(&catalog(500.0, 300.0, 0.49, f64::NAN)), "filtered");
        assert_eq!(verdict(&catalog(500.0, 300.0, 0.49, 20.99)), "cut");
    }

    #[test]
    fn small_margins_leave_out_windows_off_the_image() {
        let opts = CutOptions {
            margin: 10.0,
            ..CutOptions::default()
        };
        let c = catalog(30.0, 300.0, 0.1, 19.0);
        assert!(matches!(
            select(&c, 0, 1024, 512, &opts),
            Err(Reject::OffImage)
        ));
        let c = catalog(65.0, 300.0, 0.1, 19.0);
        let w = select(&c, 0, 1024, 512, &opts).ok().unwrap();
        assert_eq!((w.x0, w.y0), (0, 235));
    }

    #[test]
    fn nan_sums_as_numpy() {
        assert!(!sum_is_nan(&[1.0, f32::INFINITY]));
        assert!(sum_is_nan(&[1.0, f32::NAN]));
        assert!(sum_is_nan(&[f32::NEG_INFINITY, f32::INFINITY]));
    }

    #[test]
    fn inputs_are_found_in_a_subfolder_or_flat() {
        let dir = tempfile::tempdir().unwrap();
        let sex = dir.path().join("Sextracted");
        std::fs::create_dir_all(sex.join("a")).unwrap();
        let a = TileInputs::locate(Path::new("Tiles/a.fits"), &sex, None);
        assert_eq!(a.seg, sex.join("a/a_seg.fits"));
        assert_eq!(a.catalog, sex.join("a/a_cat.fits"));
        let b = TileInputs::locate(Path::new("Tiles/b.fits"), &sex, Some(Path::new("Cats")));
        assert_eq!(b.nb, sex.join("b_nb.fits"));
        assert_eq!(b.catalog, Path::new("Cats/b_cat.fits"));
        assert_eq!(b.name, "b");
    }
}
