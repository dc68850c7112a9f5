//! `sex_dre`: runs SExtractor on every image of a folder with DRE's outputs.

use clap::{ArgMatches, FromArgMatches, Parser};
use dre::{pair_images, GainKey, GainMode, SexConfig, SexOptions, Sextractor};
use dre_cli::args::PipelineOptions;
use dre_cli::{run_items, Failure, ItemRun, Outcome, Reporter, Tool};
use std::path::PathBuf;
use std::process::ExitCode;

/// Run SExtractor on every image of a folder, writing what make_cuts, psfex_dre and dre need.
///
/// For each FITS image NAME.fits of the input folder (sorted), SExtractor writes to the
/// output folder (in OUTPUT/NAME/ with --subdir):
///   NAME_cat.fits   the catalogue (FITS_LDAC)
///   NAME_nb.fits    -BACKGROUND check image (background-subtracted image)
///   NAME_rms.fits   BACKGROUND_RMS check image
///   NAME_seg.fits   SEGMENTATION check image
/// sex_dre sets CATALOG_NAME, CATALOG_TYPE, CHECKIMAGE_TYPE and CHECKIMAGE_NAME itself.
/// SExtractor writes into a hidden folder beside the outputs, which are moved into place
/// only when it succeeded: an output is never half-written. A hidden record of what the
/// outputs were made from follows them; with --resume an image whose outputs are complete
/// and made from the same images, files and parameters is skipped. A second run into the
/// same output folder is refused while the first runs.
///
/// Dual mode: with two input folders, SExtractor detects on the images of the first and
/// measures on those of the second. Images are paired by their name key: the part of the
/// name before the separator -sep (default: the whole name), which must be EQUAL
/// (`sim_a` never pairs with `sim_ab`). Outputs are named after the measurement image.
///
/// Configuration: -c FILE, else default.sex of the working directory if there is one, else
/// the configuration shipped with DRE (with SExtractor's gauss_3.0_5x5.conv filter and
/// default.nnw). Relative file names in the configuration (PARAMETERS_NAME, FILTER_NAME,
/// STARNNW_NAME) are looked up in the working directory, then beside the configuration file,
/// then (filters, networks) in SExtractor's data folder; a PARAMETERS_NAME found nowhere is
/// replaced by DRE's parameter list.
///
/// The shipped configuration takes the pixel scale from the image's WCS (PIXEL_SCALE 0):
/// for images without one, add --arg PIXEL_SCALE 1 and give -fwhm in pixels.
///
/// The original's single-dash options -sep, -zp and -fwhm work as they did.
///
/// Images are extracted in parallel, one SExtractor per thread (--cpu N, default every
/// core); the shipped configuration runs each SExtractor on one thread (NTHREADS 1). Each
/// image's outputs are the same whatever the number of threads.
///
/// Needs SExtractor on PATH as `source-extractor` (Debian) or `sex`.
///
/// Exit status: 0 when every image was extracted; 1 when SExtractor failed on an image (each
/// reported on one line of stderr; the other images go on) or the run could not start;
/// 2 for bad arguments.
#[derive(Parser, Debug)]
#[command(version, verbatim_doc_comment)]
struct Args {
    /// Folder of the images; two folders for dual mode (detection, measurement)
    #[arg(short = 'i', long = "input", value_name = "DIR", num_args = 1..=2, default_value = "Tiles")]
    input: Vec<PathBuf>,

    /// Separator ending the name key that pairs images in dual mode (default: the whole name)
    #[arg(long = "sep", value_name = "C")]
    sep: Option<String>,

    /// Output folder
    #[arg(
        short = 'o',
        long = "output",
        value_name = "DIR",
        default_value = "Sextracted"
    )]
    output: PathBuf,

    /// SExtractor configuration file (default: ./default.sex if present, else DRE's own)
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,

    /// Write the outputs of each image to a sub-folder OUTPUT/NAME/
    #[arg(long)]
    subdir: bool,

    /// Folder of flag images NAME_flag.fits (FLAG_IMAGE), NAME of the detection image
    #[arg(long, value_name = "DIR")]
    flags: Option<PathBuf>,

    /// Folder of weight maps NAME_wht.fits (WEIGHT_IMAGE, WEIGHT_TYPE MAP_WEIGHT unless the
    /// configuration or --arg sets a type); two folders in dual mode (detection, measurement)
    #[arg(long, value_name = "DIR", num_args = 1..=2)]
    weights: Vec<PathBuf>,

    /// GAIN: `counts` (the header's gain), `cps` (header gain x EXPTIME, for images in counts
    /// per second) or a number in e-/ADU (default: the configuration's GAIN)
    #[arg(long, value_name = "counts|cps|FLOAT")]
    gain: Option<GainMode>,

    /// Header key of the gain for counts/cps; `auto`: GAIN, else the single key containing GAIN
    #[arg(long, value_name = "KEY|auto", default_value = "auto")]
    gain_key: GainKey,

    /// MAG_ZEROPOINT (also -zp, --zero-point)
    #[arg(long = "zp", visible_alias = "zero-point", value_name = "ZP")]
    zp: Option<f64>,

    /// SEEING_FWHM, in arcsec (also -fwhm)
    #[arg(long = "fwhm", value_name = "F")]
    fwhm: Option<f64>,

    /// Any SExtractor parameter, e.g. --arg PHOT_APERTURES 5,10,20 (repeatable; applied last)
    #[arg(long = "arg", value_names = ["NAME", "VALUE"], num_args = 2,
          action = clap::ArgAction::Append, allow_hyphen_values = true)]
    arg: Vec<String>,

    /// A per-image file parameter: for each DIR, the file DIR/NAME_*.fits of the image
    /// (e.g. --file WEIGHT_IMAGE detect_wht photo_wht); repeatable
    #[arg(long = "file", value_names = ["NAME", "DIR"], num_args = 2.., action = clap::ArgAction::Append)]
    file: Vec<String>,

    /// The folders of each --file, kept apart (clap's derive flattens repeated multi-value
    /// options into `file`).
    #[arg(skip)]
    file_groups: Vec<Vec<String>>,

    #[command(flatten)]
    common: PipelineOptions,
}

fn main() -> ExitCode {
    dre_cli::main::<Args>()
}

impl Tool for Args {
    const NAME: &'static str = "sex_dre";
    const RESUMABLE: bool = true;
    const SINGLE_DASH_LONGS: &'static [&'static str] = &["sep", "zp", "fwhm"];

    fn pipeline(&self) -> Option<&PipelineOptions> {
        Some(&self.common)
    }

    fn from_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut args = Self::from_arg_matches(matches)?;
        args.file_groups = matches
            .get_occurrences::<String>("file")
            .map(|o| o.map(|v| v.cloned().collect()).collect())
            .unwrap_or_default();
        Ok(args)
    }

    fn run(self, out: &Reporter) -> Result<Outcome, Failure> {
        Ok(run(self, out)?)
    }
}

/// Outcome::SomeFailed: some image failed (already reported).
fn run(args: Args, out: &Reporter) -> dre::Result<Outcome> {
    let selected = args.common.tiles.selection()?;
    let config = SexConfig::choose(args.config.as_deref())?;
    let mut pairing = pair_images(
        &args.input[0],
        args.input.get(1).map(PathBuf::as_path),
        args.sep.as_deref(),
    )?;
    let opts = SexOptions {
        config,
        output: args.output.clone(),
        subdir: args.subdir,
        flags: args.flags,
        weights: args.weights,
        gain: args.gain,
        gain_key: args.gain_key,
        zero_point: args.zp,
        fwhm: args.fwhm,
        args: args
            .arg
            .chunks(2)
            .map(|kv| (kv[0].clone(), kv[1].clone()))
            .collect(),
        files: args
            .file_groups
            .iter()
            .map(|f| (f[0].clone(), f[1..].iter().map(PathBuf::from).collect()))
            .collect(),
    };
    let sex = Sextractor::new(opts)?;
    match sex.config_file() {
        Some(f) => out.info(format!("configuration: {}", f.display())),
        None => out.info("configuration: shipped with DRE"),
    }
    for n in sex.notes() {
        out.warn(n);
    }
    for p in &pairing.unmatched {
        out.warn(format!(
            "{}: no measurement image with the same name key",
            p.display()
        ));
    }
    let missing = selected.missing(pairing.pairs.iter().map(|p| p.name.as_str()));
    pairing.pairs = selected.filter(pairing.pairs, |p| &p.name);
    for name in &missing {
        out.error(format!("{}: no image {name}", args.input[0].display()));
    }
    if pairing.pairs.is_empty() {
        out.warn(format!("{}: no FITS images", args.input[0].display()));
    }
    let run = ItemRun {
        tool: "sex_dre",
        item: "image",
        items: "images",
        missing: missing.len(),
        resume: args.common.resume.resume,
    };
    let ok = run_items(
        out,
        &run,
        &pairing.pairs,
        |p| &p.name,
        |p| sex.up_to_date(p),
        |pair, at| {
            let r = sex.run(pair)?;
            for w in &r.warnings {
                out.warn(format!("{}: {w}", pair.measurement.display()));
            }
            let gain = r.gain.map(|g| format!(", GAIN {g}")).unwrap_or_default();
            let det = if pair.is_dual() {
                format!(" (detection {})", pair.detection.display())
            } else {
                String::new()
            };
            out.info(format!(
                "({at}) {}{det}: {} objects{gain} -> {}",
                pair.name,
                r.objects,
                r.catalog.display()
            ));
            Ok(())
        },
    );
    Ok(Outcome::all_ok_if(ok))
}
