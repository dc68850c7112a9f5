//! `psfex_dre`: runs PSFEx on every SExtractor catalogue of a folder.

use clap::Parser;
use dre::{list_catalogs, Psfex};
use dre_cli::args::PipelineOptions;
use dre_cli::{run_items, Failure, ItemRun, Outcome, Reporter, Tool};
use std::path::PathBuf;
use std::process::ExitCode;

/// Extract one PSF per tile with PSFEx, at the image pixel scale, for dre.
///
/// For each SExtractor catalogue NAME_cat.fits found in the input folder (in sub-folders
/// INPUT/NAME/ or flat, as sex_dre writes them), PSFEx writes OUTPUT/NAME.psf. dre uses the
/// order-0 PSF (PSF_MASK component 0), so the configuration should set PSF_SAMPLING 1 (PSF
/// pixel = image pixel) and PSFVAR_DEGREES 0. The catalogues need VIGNET and the columns the
/// configuration names (sex_dre's default parameter list has them).
///
/// Configuration: -c FILE, else default.psfex of the working directory if there is one, else
/// the configuration shipped with DRE (25x25 pixels, sampling 1, constant PSF, no check
/// plots). psfex_dre sets PSF_DIR and PSF_SUFFIX itself and runs PSFEx in the output folder,
/// as the original did (check plots and XML files land there).
///
/// A tile fails when PSFEx fails or accepts no star (the PSF would be empty); no .psf is
/// written for it. PSFs are written to a hidden folder and moved into place: never half-written.
/// A hidden record of what each PSF was made from follows it; with --resume a catalogue
/// whose PSF is complete and made from the same catalogue and configuration is skipped. A
/// second run into the same output folder is refused while the first runs.
///
/// Catalogues are processed in parallel, one PSFEx per thread (--cpu N, default every
/// core); the shipped configuration runs each PSFEx on one thread (NTHREADS 1) and writes
/// no XML. A configuration of your own that writes files of a fixed name into the output
/// folder (XML_NAME) needs --cpu 1. Each PSF is the same whatever the number of threads.
///
/// Needs PSFEx on PATH as `psfex`.
///
/// Exit status: 0 when every tile has its PSF; 1 when a tile failed (each reported on one
/// line of stderr; the other tiles go on) or the run could not start; 2 for bad arguments.
#[derive(Parser, Debug)]
#[command(version, verbatim_doc_comment)]
struct Args {
    /// Folder of the SExtractor catalogues NAME_cat.fits (searched in sub-folders too)
    #[arg(
        short = 'i',
        long = "input",
        value_name = "DIR",
        default_value = "Sextracted"
    )]
    input: PathBuf,

    /// Output folder for the PSFs NAME.psf
    #[arg(
        short = 'o',
        long = "output",
        value_name = "DIR",
        default_value = "PSF"
    )]
    output: PathBuf,

    /// PSFEx configuration file (default: ./default.psfex if present, else DRE's own)
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(flatten)]
    common: PipelineOptions,
}

fn main() -> ExitCode {
    dre_cli::main::<Args>()
}

impl Tool for Args {
    const NAME: &'static str = "psfex_dre";
    const RESUMABLE: bool = true;

    fn pipeline(&self) -> Option<&PipelineOptions> {
        Some(&self.common)
    }

    fn run(self, out: &Reporter) -> Result<Outcome, Failure> {
        Ok(run(&self, out)?)
    }
}

/// Outcome::SomeFailed: some tile failed (already reported).
fn run(args: &Args, out: &Reporter) -> dre::Result<Outcome> {
    let selected = args.common.tiles.selection()?;
    let catalogs = list_catalogs(&args.input)?;
    let missing = selected.missing(catalogs.iter().map(|c| c.name.as_str()));
    let catalogs = selected.filter(catalogs, |c| &c.name);
    for name in &missing {
        out.error(format!(
            "{}: no catalogue {name}_cat.fits",
            args.input.display()
        ));
    }
    let psfex = Psfex::new(args.config.as_deref(), &args.output)?;
    match psfex.config() {
        Some(f) => out.info(format!("configuration: {}", f.display())),
        None => out.info("configuration: shipped with DRE"),
    }
    if catalogs.is_empty() {
        out.warn(format!(
            "{}: no SExtractor catalogues *_cat.fits",
            args.input.display()
        ));
    }
    let run = ItemRun::tiles("psfex_dre", missing.len(), args.common.resume.resume);
    let ok = run_items(
        out,
        &run,
        &catalogs,
        |c| &c.name,
        |c| psfex.up_to_date(c),
        |cat, at| {
            let r = psfex.run(cat)?;
            for w in &r.warnings {
                out.warn(format!("{}: {w}", cat.path.display()));
            }
            out.info(format!(
                "({at}) {}: {}/{} stars accepted, FWHM {:.2} px -> {}",
                cat.name,
                r.accepted,
                r.loaded,
                r.fwhm,
                r.psf.display()
            ));
            Ok(())
        },
    );
    Ok(Outcome::all_ok_if(ok))
}
