//! `dre_simulate`: a tile with known truth, to measure how well DRE recovers galaxies.

use clap::Parser;
use dre::{simulate, write_simulation, SimConfig};
use dre_cli::args::{Quiet, Threads};
use dre_cli::{Failure, Outcome, Reporter, Tool};
use std::path::PathBuf;
use std::process::ExitCode;

/// Simulate a tile of Sérsic galaxies and stars with known truth.
///
/// Writes, in the working directory DIR (-o):
///   Tiles/NAME.fits          float32 counts, sky left in, Poisson + Gaussian read noise,
///                            GAIN and EXPTIME (and the settings) in the header
///   Truth/NAME_truth.csv     X, Y (FITS 1-based), N_SERSIC, Q, THETA (THETA_IMAGE, deg),
///                            RE_MAJOR (semi-major half-light radius, px), LOG_RE, FLUX, SNR
///   Truth/NAME_stars.csv     X, Y, FLUX, SNR
///   Truth/NAME_psf.fits      the true PSF (Moffat integrated over pixels, sum 1)
///
/// Galaxies take R_e log-uniform in --re, q uniform in --q, theta uniform, S/N log-uniform in
/// --snr (optimal, sky-limited S/N), a Sérsic index from --index, and positions uniform at
/// least --margin pixels inside the edges, without overlaps. The same options and --seed give
/// the same tile, bit for bit. Then run sex_dre, psfex_dre, make_cuts and dre in DIR, and
/// dre_score Summary/NAME_dre.fits Truth/NAME_truth.csv.
///
/// Exit status: 0 on success, 1 when the tile cannot be made (one line on stderr), 2 for bad
/// arguments.
#[derive(Parser, Debug)]
#[command(version, verbatim_doc_comment)]
struct Args {
    /// Working directory to write Tiles/ and Truth/ into
    #[arg(short = 'o', long = "output", value_name = "DIR", default_value = ".")]
    output: PathBuf,
    /// Name of the tile
    #[arg(long, default_value = "sim")]
    name: String,
    /// Size of the (square) tile, pixels
    #[arg(long, default_value_t = 2048)]
    size: usize,
    /// Number of galaxies
    #[arg(long, default_value_t = 250)]
    galaxies: usize,
    /// Number of stars (PSFEx needs some to measure the PSF)
    #[arg(long, default_value_t = 40)]
    stars: usize,
    /// Moffat PSF FWHM, pixels
    #[arg(long, default_value_t = 3.0)]
    fwhm: f64,
    /// Moffat PSF beta
    #[arg(long, default_value_t = 3.5)]
    beta: f64,
    /// Size of the true PSF image written (odd)
    #[arg(long, default_value_t = 25)]
    psf_size: usize,
    /// Sky level left in the image, counts per pixel
    #[arg(long, default_value_t = 100.0)]
    sky: f64,
    /// Gain, e-/count
    #[arg(long, default_value_t = 1.0)]
    gain: f64,
    /// Read noise, e-
    #[arg(long, default_value_t = 5.0)]
    read_noise: f64,
    /// Exposure time written to the header, s
    #[arg(long, default_value_t = 1.0)]
    exptime: f64,
    /// Galaxy S/N range (log-uniform)
    #[arg(long, num_args = 2, value_names = ["MIN", "MAX"], default_values_t = [20.0, 500.0])]
    snr: Vec<f64>,
    /// Semi-major half-light radius range, pixels (log-uniform)
    #[arg(long, num_args = 2, value_names = ["MIN", "MAX"], default_values_t = [1.5, 25.0])]
    re: Vec<f64>,
    /// Axis ratio range (uniform)
    #[arg(long, num_args = 2, value_names = ["MIN", "MAX"], default_values_t = [0.2, 1.0])]
    q: Vec<f64>,
    /// Sérsic indices; each galaxy takes one at random
    #[arg(long, num_args = 1.., default_values_t = [4.0])]
    index: Vec<f64>,
    /// Star S/N range (log-uniform)
    #[arg(long, num_args = 2, value_names = ["MIN", "MAX"], default_values_t = [200.0, 2000.0])]
    star_snr: Vec<f64>,
    /// No object centre closer than this to an edge, pixels
    #[arg(long, default_value_t = 100.0)]
    margin: f64,
    /// Random seed
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[command(flatten)]
    threads: Threads,
    #[command(flatten)]
    quiet: Quiet,
}

fn main() -> ExitCode {
    dre_cli::main::<Args>()
}

impl Tool for Args {
    const NAME: &'static str = "dre_simulate";

    fn quiet(&self) -> bool {
        self.quiet.quiet
    }

    fn threads(&self) -> Option<usize> {
        self.threads.cpu
    }

    fn run(self, out: &Reporter) -> Result<Outcome, Failure> {
        let a = self;
        let cfg = SimConfig {
            size: a.size,
            galaxies: a.galaxies,
            stars: a.stars,
            fwhm: a.fwhm,
            beta: a.beta,
            psf_size: a.psf_size,
            sky: a.sky,
            gain: a.gain,
            read_noise: a.read_noise,
            exptime: a.exptime,
            snr: (a.snr[0], a.snr[1]),
            re: (a.re[0], a.re[1]),
            q: (a.q[0], a.q[1]),
            index: a.index,
            star_snr: (a.star_snr[0], a.star_snr[1]),
            margin: a.margin,
            seed: a.seed,
        };
        let sim = simulate(&cfg)?;
        write_simulation(&a.output, &a.name, &sim, &cfg)?;
        out.info(format!(
            "{}: {}x{} tile, {} galaxies, {} stars -> {}",
            a.name,
            sim.size,
            sim.size,
            sim.galaxies.len(),
            sim.stars.len(),
            a.output
                .join("Tiles")
                .join(format!("{}.fits", a.name))
                .display()
        ));
        Ok(Outcome::AllOk)
    }
}
