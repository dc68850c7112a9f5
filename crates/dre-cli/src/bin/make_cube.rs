//! make_cube: renders a model cube of pixel-integrated Sérsic stamps (SPEC 3).

use clap::Parser;
use dre::{index_axis, make_cube, Axis, Grid};
use dre_cli::args::{Quiet, RadiusArg, Threads};
use dre_cli::{Failure, Outcome, Reporter, Tool};
use std::path::PathBuf;
use std::process::ExitCode;

/// Render a cube of noiseless, flux-normalised Sérsic models for dre.
///
/// The grid has four regular axes: Sérsic index n (--index), axis ratio q = b/a
/// (--axrat0/--daxrat/--naxrat), position angle theta (--posang0/--dposang/--nposang) and
/// log10 of the half-light radius in pixels (--logh0/--dlogh/--nlogh), each stamp
/// --boxsize pixels square. The defaults are the original DRE's grid: n = 4;
/// q = 0.1..1.0 step 0.1; theta = -90..90 step 15; log10 R_e = -0.4..1.6 step 0.1; 128x128
/// pixels: 2730 models, rendered in a few seconds.
///
/// Convention (written into the header): R_e along the semi-major axis (GALFIT's; with
/// --radius circular, the circularised sqrt(ab)); theta is SExtractor's THETA_IMAGE, the
/// major axis counter-clockwise from +x; the centre is pixel ((BOX-1)/2, (BOX-1)/2); the
/// exact b_n; each pixel holds the integral of the profile over the pixel; each stamp sums to
/// 1 in the box. The same image (theta = -90 and +90, any theta at q = 1) is bit-identical,
/// and the cube is the same bit for bit on any number of threads.
///
/// The file has the layout of the original's modelbulge.fits (readable by its ModelsCube
/// and by dre): numpy shape (NINDEX*NAXRAT, NPOSANG*BOXSIZE, NLOGH*BOXSIZE) with the grid in
/// INDEX0 DINDEX NINDEX, AXRAT0 DAXRAT NAXRAT, POSANG0 DPOSANG NPOSANG, LOGH0 DLOGH NLOGH and
/// BOXSIZE. It is written to a temporary file and renamed: never half-written.
///
/// Exit status: 0 on success; 1 for a grid that cannot be rendered (q > 1 or <= 0, a box
/// under 8, a non-finite value, an uneven --index list) or an unwritable output, 2 for bad
/// arguments, with one line on stderr.
#[derive(Parser, Debug)]
#[command(version, verbatim_doc_comment)]
struct Args {
    /// Sérsic indices (one, or an evenly spaced list)
    #[arg(long, num_args = 1.., default_values_t = [4.0])]
    index: Vec<f64>,
    /// First axis ratio b/a
    #[arg(long, default_value_t = 0.1, allow_negative_numbers = true)]
    axrat0: f64,
    /// Axis ratio step
    #[arg(long, default_value_t = 0.1, allow_negative_numbers = true)]
    daxrat: f64,
    /// Number of axis ratios
    #[arg(long, default_value_t = 10)]
    naxrat: usize,
    /// First position angle [deg, THETA_IMAGE]
    #[arg(long, default_value_t = -90.0, allow_negative_numbers = true)]
    posang0: f64,
    /// Position angle step [deg]
    #[arg(long, default_value_t = 15.0, allow_negative_numbers = true)]
    dposang: f64,
    /// Number of position angles
    #[arg(long, default_value_t = 13)]
    nposang: usize,
    /// First log10 half-light radius [pix]
    #[arg(long, default_value_t = -0.4, allow_negative_numbers = true)]
    logh0: f64,
    /// log10 radius step
    #[arg(long, default_value_t = 0.1, allow_negative_numbers = true)]
    dlogh: f64,
    /// Number of radii
    #[arg(long, default_value_t = 21)]
    nlogh: usize,
    /// Stamp size [pix]
    #[arg(long, default_value_t = 128)]
    boxsize: usize,
    /// What the radius measures: the semi-major or the circularised half-light radius
    #[arg(long, value_enum, default_value = "major")]
    radius: RadiusArg,
    #[command(flatten)]
    threads: Threads,
    #[command(flatten)]
    quiet: Quiet,
    /// Output FITS file
    #[arg(short, long, default_value = "cube.fits")]
    output: PathBuf,
}

fn main() -> ExitCode {
    dre_cli::main::<Args>()
}

impl Tool for Args {
    const NAME: &'static str = "make_cube";

    fn quiet(&self) -> bool {
        self.quiet.quiet
    }

    fn threads(&self) -> Option<usize> {
        self.threads.cpu
    }

    fn run(self, out: &Reporter) -> Result<Outcome, Failure> {
        let grid = Grid {
            index: index_axis(&self.index)?,
            axrat: Axis::new(self.axrat0, self.daxrat, self.naxrat),
            posang: Axis::new(self.posang0, self.dposang, self.nposang),
            logh: Axis::new(self.logh0, self.dlogh, self.nlogh),
            boxsize: self.boxsize,
        };
        out.start_bar(grid.n_models() as u64, "make_cube".into());
        let made = make_cube(&self.output, &grid, self.radius.into(), &|| out.advance(1));
        out.finish_bar();
        made?;
        Ok(Outcome::AllOk)
    }
}
