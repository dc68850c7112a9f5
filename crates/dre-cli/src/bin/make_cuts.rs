//! make_cuts: cuts the objects of SExtractor-processed tiles into HDF5 cut files.

use clap::Parser;
use dre::{
    cut_tile, cuts_up_to_date, list_tile_images, lock_output_dir, CutOptions, CutReport, Filter,
    TileInputs,
};
use dre_cli::args::{CentroidModeArg, CompressionArg, PipelineOptions};
use dre_cli::{run_items, Failure, ItemRun, Outcome, Reporter, Tool};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Cut BOXSIZE x BOXSIZE (128 x 128) images centred on the objects SExtractor found.
///
/// For every tile Tiles/NAME.fits, reads the catalogue NAME_cat.fits and the check images
/// NAME_nb.fits (background-subtracted), NAME_rms.fits (background RMS) and NAME_seg.fits
/// (segmentation) from Sextracted/NAME/ (or Sextracted/ itself), and writes Cuts/NAME_cuts.h5:
/// one group EE_NNNN per object (EXT_NUMBER, NUMBER) holding `obj`, `seg` and `rms`.
///
/// An object is cut when margin < X_IMAGE < NAXIS1 - margin (and the same for Y_IMAGE),
/// CLASS_STAR < max-stellarity, it passes every --filter, and the science image has no NaN
/// under the cut. Its segment mask is the SExtractor segment of the object, cleaned: a 4x4
/// block forced on at the centre, only the connected region holding the centre, holes filled,
/// grown by 4 pixels.
///
/// Each cut file is written whole or not at all, followed by a hidden record of what it was
/// cut from; with --resume a tile whose cut file is complete and cut from the same files
/// with the same options is skipped. A second run into the same output folder is refused
/// while the first runs.
///
/// --cpu N threads (default every core) cut N tiles at once, and make and compress the cuts
/// of a tile on whichever of them are free. A tile's images are read whole (up to 8192 x 8192
/// pixels, and 2 x 8192 x 8192 pixels for all the tiles in memory at once), else a window at
/// a time. Each tile's file is the same whatever the number of threads.
///
/// A tile that cannot be cut is reported on one line and the others go on; a last line
/// counts the tiles that failed. The exit status is 1 if any tile failed, 2 for bad
/// arguments.
#[derive(Parser, Debug)]
#[command(version, verbatim_doc_comment)]
struct Args {
    /// Folder of the tiles (science images); every *.fits in it is cut, in sorted order.
    #[arg(
        short = 'i',
        long = "input",
        value_name = "DIR",
        default_value = "Tiles"
    )]
    input: PathBuf,

    /// Folder of the SExtractor outputs: Sextracted/NAME/NAME_*.fits or Sextracted/NAME_*.fits.
    #[arg(short = 's', long, value_name = "DIR", default_value = "Sextracted")]
    sextracted: PathBuf,

    /// Folder of the catalogues NAME_cat.fits [default: beside the check images].
    #[arg(short = 'c', long, value_name = "DIR")]
    catalogs: Option<PathBuf>,

    /// Folder for the cut files NAME_cuts.h5 (made if missing).
    #[arg(short = 'o', long, value_name = "DIR", default_value = "Cuts")]
    output: PathBuf,

    /// Leave out objects closer than N pixels to an edge of the image.
    #[arg(long, value_name = "N", default_value_t = 80)]
    margin: u32,

    /// Leave out objects with SExtractor's CLASS_STAR at or above X (stars).
    #[arg(long, value_name = "X", default_value_t = 0.5)]
    max_stellarity: f64,

    /// Keep only objects with MIN < PARAM < MAX, PARAM a catalogue column; may be repeated
    /// (e.g. -f MAG_AUTO 17 21 -f MAGERR_AUTO 0 0.5).
    #[arg(
        short = 'f',
        long = "filter",
        num_args = 3,
        value_names = ["PARAM", "MIN", "MAX"],
        action = clap::ArgAction::Append,
        allow_negative_numbers = true
    )]
    filter: Vec<String>,

    /// Re-centre each cut on a recomputed centroid (see --centroids-mode): obj and rms are
    /// shifted by cubic-spline interpolation, seg by nearest neighbour, so that the centroid
    /// lands on pixel (BOXSIZE - 1) / 2.
    #[arg(long)]
    centroids: bool,

    /// How --centroids finds the centroid: com (centre of mass), 1dg (1-D Gaussians fitted to
    /// the x and y marginals), 2dg (2-D Gaussian fit); pixels outside the segment are left out.
    #[arg(long, value_name = "MODE", value_enum, default_value = "com")]
    centroids_mode: CentroidModeArg,

    /// Compression of the cut files: none, low (lzf), medium (gzip 4) or high (gzip 9);
    /// lower is faster.
    #[arg(long, value_name = "LEVEL", value_enum, default_value = "medium")]
    compression: CompressionArg,

    /// Also report, per tile, why objects were skipped.
    #[arg(long)]
    warn: bool,

    #[command(flatten)]
    common: PipelineOptions,
}

fn main() -> ExitCode {
    dre_cli::main::<Args>()
}

impl Tool for Args {
    const NAME: &'static str = "make_cuts";
    const RESUMABLE: bool = true;

    fn pipeline(&self) -> Option<&PipelineOptions> {
        Some(&self.common)
    }

    fn run(self, out: &Reporter) -> Result<Outcome, Failure> {
        let opts = options(&self).map_err(Failure::Usage)?;
        let selected = self.common.tiles.selection()?;
        let tiles = list_tile_images(&self.input)?;
        let missing = selected.missing(tiles.iter().map(|t| stem(t)));
        let tiles = selected.filter(tiles, |t| stem(t));
        for name in &missing {
            out.error(format!("{}: no tile {name}.fits", self.input.display()));
        }
        let _lock = lock_output_dir(&self.output, Self::NAME)?;
        let inputs: Vec<TileInputs> = tiles
            .iter()
            .map(|t| TileInputs::locate(t, &self.sextracted, self.catalogs.as_deref()))
            .collect();
        let run = ItemRun::tiles(Self::NAME, missing.len(), self.common.resume.resume);
        let ok = run_items(
            out,
            &run,
            &inputs,
            |t| &t.name,
            |t| cuts_up_to_date(t, &self.output, &opts),
            |t, _| {
                let report = cut_tile(t, &self.output, &opts)?;
                print_report(&report, &self, out);
                Ok(())
            },
        );
        Ok(Outcome::all_ok_if(ok))
    }
}

/// A tile's name: its file name without `.fits`.
fn stem(tile: &Path) -> &str {
    tile.file_stem().and_then(|s| s.to_str()).unwrap_or("")
}

fn options(args: &Args) -> Result<CutOptions, String> {
    let filters = args
        .filter
        .chunks(3)
        .map(|f| {
            let bound = |v: &str| {
                v.parse::<f64>()
                    .map_err(|_| format!("--filter {}: {v:?} is not a number", f[0]))
            };
            Ok(Filter {
                param: f[0].clone(),
                min: bound(&f[1])?,
                max: bound(&f[2])?,
            })
        })
        .collect::<Result<_, String>>()?;
    Ok(CutOptions {
        margin: args.margin as f64,
        max_stellarity: args.max_stellarity,
        filters,
        centroids: args.centroids.then_some(args.centroids_mode.into()),
        compression: args.compression.into(),
        ..CutOptions::default()
    })
}

fn print_report(r: &CutReport, args: &Args, out: &Reporter) {
    for w in &r.warnings {
        out.warn(w);
    }
    out.info(format!(
        "{}: {} cuts, {} skipped",
        r.name,
        r.cut,
        r.skipped.total()
    ));
    if args.warn {
        let s = &r.skipped;
        let reasons = [
            (s.near_edge, "near an edge"),
            (s.stars, "stars"),
            (s.filtered, "filtered out"),
            (s.nan, "NaN in the science image"),
            (s.off_image, "cut leaves the image"),
            (s.no_centroid, "no centroid"),
            (s.unusable, "no usable pixel under the segment"),
        ];
        for (n, why) in reasons.iter().filter(|(n, _)| *n > 0) {
            out.note(format!("{}: {n} skipped: {why}", r.name));
        }
    }
}
