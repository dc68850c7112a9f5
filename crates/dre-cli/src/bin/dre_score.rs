//! `dre_score`: how well a Summary recovers the truth of a simulated tile.

use clap::Parser;
use dre::{
    fitted_from_summary, read_catalog, read_grid, read_truth, score, write_score_plot, Steps,
    SNR_EDGES,
};
use dre_cli::{Failure, Outcome, Reporter, Tool};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Score a dre Summary against the truth of a simulated tile.
///
/// Each fitted object (X_IMAGE, Y_IMAGE of the Summary) is matched to the nearest true
/// galaxy within --radius pixels. For log R_e (LOGR, and LOGR_PARAB), q, theta and n the
/// offsets fit - truth are summarised: median, NMAD (1.4826 x median absolute deviation),
/// and the fractions within half a grid step and within one step of the cube's grid (--cube;
/// default: the default cube's steps 0.1 in log R_e, 0.1 in q, 15 deg, 1 in n), for all
/// matched galaxies and by S/N bin. Theta is scored for galaxies with true q <= 0.8 only.
///
/// Where the Summary has the off-grid columns, LOGR_FIT, AX_RATIO_FIT, ANGLE_FIT (and
/// INDEX_FIT) are scored the same way after the grid's rows (log_re_fit, q_fit, theta_fit,
/// n_fit), and their pulls (fit - truth) / error (the _ERR columns) are summarised by their
/// median and NMAD: near 0 and 1 when the errors match the scatter. A Summary without
/// them (the original's) is scored without these rows.
///
/// --plot FILE.png draws the fitted values against the true ones for log R_e, q and theta
/// (off-grid values in blue, grid values in orange) and fit - truth against the true S/N,
/// a 1200 x 800 PNG, written whole or not at all.
///
/// The truth CSV is dre_simulate's (X, Y, N_SERSIC, Q, THETA, LOG_RE, SNR); rows whose TYPE
/// is `star` are skipped. --radius-column names another radius column to take log10 of
/// (A_HLR, the semi-major radius of the golden truth, for a semi-major cube). A malformed
/// row (another number of fields than the header's, a TYPE other than gal or star, a value
/// that is not a finite number) is refused with its line number, never skipped.
///
/// Exit status: 0, or 1 when a file cannot be read, a truth row is malformed or the plot
/// cannot be written (one line on stderr), 2 for bad arguments.
#[derive(Parser, Debug)]
#[command(version, verbatim_doc_comment)]
struct Args {
    /// Summary table (Summary/NAME_dre.fits)
    summary: PathBuf,
    /// Truth CSV (Truth/NAME_truth.csv)
    truth: PathBuf,
    /// The model cube that was fitted, for its grid steps
    #[arg(long, value_name = "FILE")]
    cube: Option<PathBuf>,
    /// Matching radius, pixels
    #[arg(long, default_value_t = 3.0)]
    radius: f64,
    /// Truth column holding the radius in pixels (log10 is taken), instead of LOG_RE
    #[arg(long, value_name = "COLUMN")]
    radius_column: Option<String>,
    /// Print JSON for machines instead of tables
    #[arg(long)]
    json: bool,
    /// Also draw the fitted against the true values and the residuals against S/N into
    /// this PNG file (1200 x 800)
    #[arg(long, value_name = "FILE.png")]
    plot: Option<PathBuf>,
}

fn run(a: &Args) -> dre::Result<String> {
    let steps = match &a.cube {
        Some(c) => Steps::of(&read_grid(c)?),
        None => Steps::of(&dre::default_grid()),
    };
    let truth = read_truth(&a.truth, a.radius_column.as_deref())?;
    let table = read_catalog(&a.summary)?;
    let fitted = fitted_from_summary(&table).map_err(|m| dre::Error::file(&a.summary, m))?;
    let s = score(&truth, &fitted, a.radius, steps, &SNR_EDGES);
    if let Some(plot) = &a.plot {
        write_score_plot(plot, &truth, &fitted, a.radius)?;
    }
    Ok(if a.json { s.to_json() } else { s.to_text() })
}

fn main() -> ExitCode {
    dre_cli::main::<Args>()
}

impl Tool for Args {
    const NAME: &'static str = "dre_score";

    fn run(self, _out: &Reporter) -> Result<Outcome, Failure> {
        let text = run(&self)?;
        // A closed pipe (`dre_score ... | head`) ends the output, not the program.
        let _ = writeln!(std::io::stdout(), "{}", text.trim_end());
        Ok(Outcome::AllOk)
    }
}
