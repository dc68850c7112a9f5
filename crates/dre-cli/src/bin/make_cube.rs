//! make_cube: renders a model cube of pixel-integrated Sérsic stamps (SPEC 3).

use clap::{Parser, ValueEnum};
use dre::cube::{Axis, Grid};
use dre::render::{index_axis, make_cube, RadiusConvention};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

/// Render a cube of noiseless, flux-normalised Sérsic models on a regular grid of
/// (index, axis ratio, position angle, log10 half-light radius). Defaults: the original
/// DRE grid (n = 4; q = 0.1..1; theta = -90..90 step 15; log10 R_e = -0.4..1.6; 128 px).
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
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
    #[arg(long, value_enum, default_value_t = Radius::Major)]
    radius: Radius,
    /// Threads (default: all cores)
    #[arg(long)]
    cpu: Option<usize>,
    /// No progress bar
    #[arg(long)]
    quiet: bool,
    /// Output FITS file
    #[arg(short, long, default_value = "cube.fits")]
    output: PathBuf,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Radius {
    Major,
    Circular,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help, --version
            print!("{e}");
            return ExitCode::SUCCESS;
        }
        Err(e) => return fail(e.to_string().trim_start_matches("error: ")),
    };
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&format!("{e:#}")),
    }
}

/// One line on stderr, exit status 1.
fn fail(msg: &str) -> ExitCode {
    eprintln!("make_cube: {}", msg.lines().next().unwrap_or("error"));
    ExitCode::FAILURE
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    let grid = Grid {
        index: index_axis(&cli.index)?,
        axrat: Axis::new(cli.axrat0, cli.daxrat, cli.naxrat),
        posang: Axis::new(cli.posang0, cli.dposang, cli.nposang),
        logh: Axis::new(cli.logh0, cli.dlogh, cli.nlogh),
        boxsize: cli.boxsize,
    };
    let radius = match cli.radius {
        Radius::Major => RadiusConvention::Major,
        Radius::Circular => RadiusConvention::Circular,
    };
    let mut pool = rayon::ThreadPoolBuilder::new();
    match cli.cpu {
        Some(0) => anyhow::bail!("--cpu must be at least 1"),
        Some(n) => pool = pool.num_threads(n),
        None => {}
    }
    let pool = pool.build()?;

    let bar = ProgressBar::new(grid.n_models() as u64);
    if cli.quiet || !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(ProgressStyle::with_template(
        "{elapsed_precise} [{bar:40}] {pos}/{len} models ({eta})",
    )?);
    pool.install(|| make_cube(&cli.output, &grid, radius, &|| bar.inc(1)))?;
    bar.finish_and_clear();
    Ok(())
}
