//! The picture of a score (`dre_score --plot`): for log R_e, q and theta, the fitted values
//! against the true ones (top row) and fit - truth against the S/N (bottom row), the
//! off-grid values (`LOGR_FIT`, `AX_RATIO_FIT`, `ANGLE_FIT`) in blue over the grid values
//! (`LOGR`, `AX_RATIO`, `ANGLE`) in orange. Theta is shown for galaxies of true q <= 0.8,
//! each fitted angle within 90 degrees of its truth (modulo 180). Points beyond an axis are
//! drawn on its edge.

use crate::conventions::angle_difference;
use crate::error::{Error, Result};
use crate::io::atomic::write_file;
use crate::output::draw::{draw_error, ensure_font, tick, Canvas, FONT};
use crate::sim::score::{match_nearest, Fitted, Truth, MAX_Q_FOR_THETA};
use plotters::coord::combinators::{BindKeyPoints, LogCoord};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::ops::Range;
use std::path::Path;

/// Width and height of the score plot in pixels.
pub const SCORE_PLOT_SIZE: (u32, u32) = (1200, 800);

const GRID_COLOUR: RGBColor = RGBColor(240, 140, 40);
const FIT_COLOUR: RGBColor = RGBColor(31, 100, 200);

/// One quantity of one matched galaxy: the truth, the grid value's offset, the off-grid
/// value's offset (None without the column) and the true S/N.
#[derive(Clone, Copy, Debug)]
struct Point {
    truth: f64,
    grid: f64,
    fit: Option<f64>,
    snr: f64,
}

/// A quantity as plotted: axis labels, column names, and its points.
struct Quantity {
    name: &'static str,
    grid_column: &'static str,
    fit_column: &'static str,
    /// Smallest half-height of the residual panel.
    min_residual: f64,
    points: Vec<Point>,
}

/// The true value and the grid value's offset of one galaxy (None: not plotted).
type GridOffset<'a> = &'a dyn Fn(&Truth, &Fitted) -> Option<(f64, f64)>;

fn quantities(truth: &[Truth], fitted: &[Fitted], radius: f64) -> Vec<Quantity> {
    let pairs = match_nearest(truth, fitted, radius);
    let collect = |axis: usize, grid: GridOffset| {
        pairs
            .iter()
            .filter_map(|&(i, j)| {
                let (t, f) = (&truth[i], &fitted[j]);
                let (true_value, offset) = grid(t, f)?;
                let fit = f.fit[axis].map(|(v, _)| match axis {
                    2 => angle_difference(v, t.theta),
                    _ => v - true_value,
                });
                Some(Point {
                    truth: true_value,
                    grid: offset,
                    fit,
                    snr: t.snr,
                })
            })
            .collect()
    };
    vec![
        Quantity {
            name: "log10 R_e (px)",
            grid_column: "LOGR",
            fit_column: "LOGR_FIT",
            min_residual: 0.1,
            points: collect(3, &|t, f| Some((t.log_re, f.logr - t.log_re))),
        },
        Quantity {
            name: "q = b/a",
            grid_column: "AX_RATIO",
            fit_column: "AX_RATIO_FIT",
            min_residual: 0.1,
            points: collect(1, &|t, f| Some((t.q, f.q - t.q))),
        },
        Quantity {
            name: "theta (deg), q <= 0.8",
            grid_column: "ANGLE",
            fit_column: "ANGLE_FIT",
            min_residual: 10.0,
            points: collect(2, &|t, f| {
                (t.q <= MAX_Q_FOR_THETA).then(|| (t.theta, angle_difference(f.theta, t.theta)))
            }),
        },
    ]
}

fn text(size: f64) -> TextStyle<'static> {
    TextStyle::from(FontDesc::new(
        FontFamily::Name(FONT),
        size,
        FontStyle::Normal,
    ))
    .color(&BLACK)
}

fn fail(e: impl std::fmt::Display) -> Error {
    draw_error("the score plot", e)
}

/// `lo..hi` widened by `pad` of its length on each side (a unit range when empty).
fn padded(values: impl Iterator<Item = f64>, pad: f64) -> Range<f64> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if lo > hi {
        return 0.0..1.0;
    }
    let w = (hi - lo).max(1e-6);
    lo - pad * w..hi + pad * w
}

/// The series of a panel: (label, colour, points), the grid's first so that the off-grid
/// values are drawn over them.
type Series = Vec<(&'static str, RGBColor, Vec<(f64, f64)>)>;

fn draw_points<'a, X>(
    chart: &mut ChartContext<'a, BitMapBackend<'a>, Cartesian2d<X, RangedCoordf64>>,
    series: Series,
    legend: bool,
) -> Result<()>
where
    X: Ranged<ValueType = f64>,
{
    for (label, colour, points) in series {
        chart
            .draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 2, colour.mix(0.75).filled())),
            )
            .map_err(fail)?
            .label(label)
            .legend(move |(x, y)| Circle::new((x, y), 4, colour.filled()));
    }
    if legend {
        chart
            .configure_series_labels()
            .label_font(text(13.0))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(fail)?;
    }
    Ok(())
}

/// Fitted against true values, with the line y = x.
fn truth_panel(area: &DrawingArea<BitMapBackend<'_>, Shift>, q: &Quantity) -> Result<()> {
    let range = padded(
        q.points.iter().flat_map(|p| {
            [
                p.truth,
                p.truth + p.grid,
                p.truth + p.fit.unwrap_or(f64::NAN),
            ]
        }),
        0.05,
    );
    let mut chart = ChartBuilder::on(area)
        .caption(format!("fitted vs true {}", q.name), text(16.0))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d(range.clone(), range.clone())
        .map_err(fail)?;
    chart
        .configure_mesh()
        .label_style(text(12.0))
        .axis_desc_style(text(13.0))
        .x_desc(format!("true {}", q.name))
        .y_desc("fitted")
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .max_light_lines(1)
        .light_line_style(RGBColor(240, 240, 240))
        .draw()
        .map_err(fail)?;
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(range.start, range.start), (range.end, range.end)],
            BLACK.mix(0.6),
        )))
        .map_err(fail)?;
    let clamp = |v: f64| v.clamp(range.start, range.end);
    let mut series: Series = vec![(
        q.grid_column,
        GRID_COLOUR,
        q.points
            .iter()
            .map(|p| (p.truth, clamp(p.truth + p.grid)))
            .collect(),
    )];
    if q.points.iter().any(|p| p.fit.is_some()) {
        series.push((
            q.fit_column,
            FIT_COLOUR,
            q.points
                .iter()
                .filter_map(|p| Some((p.truth, clamp(p.truth + p.fit?))))
                .filter(|p| p.1.is_finite())
                .collect(),
        ));
    }
    draw_points(&mut chart, series, true)
}

/// The ticks of a log axis over `r`: 1, 2 and 5 times the powers of 10 inside it (plotters'
/// own leave out those below the first whole power of 10).
fn log_ticks(r: &Range<f64>) -> Vec<f64> {
    let (lo, hi) = (r.start.log10().floor() as i32, r.end.log10().ceil() as i32);
    (lo..=hi)
        .flat_map(|e| [1.0, 2.0, 5.0].map(|k| k * 10f64.powi(e)))
        .filter(|v| r.contains(v))
        .collect()
}

/// A tick of the log S/N axis, as a whole number.
fn log_tick(v: &f64) -> String {
    format!("{v:.0}")
}

/// Fit - truth against the true S/N (log axis).
fn residual_panel(area: &DrawingArea<BitMapBackend<'_>, Shift>, q: &Quantity) -> Result<()> {
    let with_snr: Vec<&Point> = q.points.iter().filter(|p| p.snr > 0.0).collect();
    let snr = padded(with_snr.iter().map(|p| p.snr.log10()), 0.05);
    let snr = 10f64.powf(snr.start)..10f64.powf(snr.end);
    // Half-height: the 98th percentile of |offset|, at least `min_residual`.
    let mut abs: Vec<f64> = with_snr
        .iter()
        .flat_map(|p| [p.grid, p.fit.unwrap_or(f64::NAN)])
        .filter(|v| v.is_finite())
        .map(f64::abs)
        .collect();
    let half = crate::output::draw::quantile(&mut abs, 0.98)
        .unwrap_or(0.0)
        .max(q.min_residual)
        * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption(format!("{}: fit - truth", q.name), text(16.0))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d(
            LogCoord::from(snr.clone().log_scale()).with_key_points(log_ticks(&snr)),
            -half..half,
        )
        .map_err(fail)?;
    chart
        .configure_mesh()
        .label_style(text(12.0))
        .axis_desc_style(text(13.0))
        .x_desc("true S/N")
        .y_desc("fit - truth")
        .x_label_formatter(&log_tick)
        .y_label_formatter(&tick)
        .max_light_lines(1)
        .light_line_style(RGBColor(240, 240, 240))
        .draw()
        .map_err(fail)?;
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(snr.start, 0.0), (snr.end, 0.0)],
            BLACK.mix(0.6),
        )))
        .map_err(fail)?;
    let clamp = |v: f64| v.clamp(-half, half);
    let mut series: Series = vec![(
        q.grid_column,
        GRID_COLOUR,
        with_snr.iter().map(|p| (p.snr, clamp(p.grid))).collect(),
    )];
    if with_snr.iter().any(|p| p.fit.is_some()) {
        series.push((
            q.fit_column,
            FIT_COLOUR,
            with_snr
                .iter()
                .filter_map(|p| Some((p.snr, clamp(p.fit?))))
                .filter(|p| p.1.is_finite())
                .collect(),
        ));
    }
    draw_points(&mut chart, series, false)
}

/// The score plot as a PNG file of [`SCORE_PLOT_SIZE`]: each fitted object matched to its
/// nearest true galaxy within `radius` pixels, as [`crate::score`] matches them.
pub fn score_plot(truth: &[Truth], fitted: &[Fitted], radius: f64) -> Result<Vec<u8>> {
    ensure_font()?;
    let qs = quantities(truth, fitted, radius);
    let matched = qs[0].points.len();
    let (w, h) = SCORE_PLOT_SIZE;
    let mut canvas = Canvas::new(w, h, RGBColor(255, 255, 255));
    {
        let root = BitMapBackend::with_buffer(&mut canvas.rgb, (w, h)).into_drawing_area();
        let title = format!(
            "{matched} of {} true galaxies matched ({} fitted objects); off-grid values in \
             blue, grid values in orange",
            truth.len(),
            fitted.len()
        );
        let body = root.titled(&title, text(17.0)).map_err(fail)?;
        let areas = body.split_evenly((2, 3));
        for (k, q) in qs.iter().enumerate() {
            truth_panel(&areas[k], q)?;
            residual_panel(&areas[3 + k], q)?;
        }
        root.present().map_err(fail)?;
    }
    canvas.encode_png()
}

/// Writes [`score_plot`] to `path` (a name ending in `.png`), whole or not at all.
pub fn write_score_plot(
    path: impl AsRef<Path>,
    truth: &[Truth],
    fitted: &[Fitted],
    radius: f64,
) -> Result<()> {
    let path = path.as_ref();
    let is_png = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("png"));
    if !is_png {
        return Err(Error::file(
            path,
            "the score plot is a PNG image: name the file *.png",
        ));
    }
    let png = score_plot(truth, fitted, radius)?;
    write_file(path, &png)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::draw::decode_png;

    #[test]
    fn log_ticks_are_1_2_5_times_powers_of_ten_inside_the_range() {
        assert_eq!(log_ticks(&(18.0..550.0)), [20.0, 50.0, 100.0, 200.0, 500.0]);
        assert_eq!(log_ticks(&(1.0..2.0)), [1.0]);
        assert_eq!(log_ticks(&(0.3..0.4)), Vec::<f64>::new());
    }

    fn truth(i: usize) -> Truth {
        Truth {
            x: 10.0 * i as f64,
            y: 5.0,
            n: 4.0,
            q: 0.2 + 0.03 * (i % 25) as f64,
            theta: -80.0 + 7.0 * (i % 23) as f64,
            log_re: 0.2 + 0.013 * i as f64,
            snr: 20.0 * 1.04f64.powi(i as i32),
        }
    }

    fn fitted(t: &Truth, with_fit: bool) -> Fitted {
        let round = |v: f64, s: f64| (v / s).round() * s;
        Fitted {
            x: t.x + 0.5,
            y: t.y,
            n: 4.0,
            q: round(t.q, 0.1),
            theta: round(t.theta, 15.0),
            logr: round(t.log_re, 0.1),
            logr_parab: t.log_re,
            fit: if with_fit {
                [
                    None,
                    Some((t.q + 0.01, 0.02)),
                    Some((t.theta - 1.0, 2.0)),
                    Some((t.log_re + 0.005, 0.01)),
                ]
            } else {
                [None; 4]
            },
        }
    }

    fn count(rgb: &[u8], c: RGBColor) -> usize {
        rgb.chunks(3).filter(|p| p == &[c.0, c.1, c.2]).count()
    }

    #[test]
    fn plot_has_its_size_and_both_colours() {
        let t: Vec<Truth> = (0..80).map(truth).collect();
        let f: Vec<Fitted> = t.iter().map(|t| fitted(t, true)).collect();
        let (w, h, rgb) = decode_png(&score_plot(&t, &f, 3.0).unwrap());
        assert_eq!((w, h), SCORE_PLOT_SIZE);
        // Legend markers are drawn opaque: both colours are there.
        assert!(count(&rgb, GRID_COLOUR) > 20, "grid points");
        assert!(count(&rgb, FIT_COLOUR) > 20, "off-grid points");
        // Text and axes: many dark pixels.
        let dark = rgb.chunks(3).filter(|p| p.iter().all(|&v| v < 60)).count();
        assert!(dark > 2000, "{dark} dark pixels");
    }

    #[test]
    fn summary_without_the_off_grid_columns_plots_the_grid_alone() {
        let t: Vec<Truth> = (0..40).map(truth).collect();
        let f: Vec<Fitted> = t.iter().map(|t| fitted(t, false)).collect();
        let (_, _, rgb) = decode_png(&score_plot(&t, &f, 3.0).unwrap());
        assert!(count(&rgb, GRID_COLOUR) > 20);
        assert_eq!(count(&rgb, FIT_COLOUR), 0);
        // Nothing matched: empty panels, still a picture.
        let (w, h, _) = decode_png(&score_plot(&t, &[], 3.0).unwrap());
        assert_eq!((w, h), SCORE_PLOT_SIZE);
    }

    #[test]
    fn plot_file_must_be_a_png_and_is_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let t: Vec<Truth> = (0..10).map(truth).collect();
        let f: Vec<Fitted> = t.iter().map(|t| fitted(t, true)).collect();
        let bad = dir.path().join("score.jpg");
        let e = write_score_plot(&bad, &t, &f, 3.0).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "{}: the score plot is a PNG image: name the file *.png",
                bad.display()
            )
        );
        assert!(!bad.exists());
        let good = dir.path().join("plots/score.PNG");
        write_score_plot(&good, &t, &f, 3.0).unwrap();
        let bytes = std::fs::read(&good).unwrap();
        assert_eq!(decode_png(&bytes).0, SCORE_PLOT_SIZE.0);
        let left: Vec<_> = std::fs::read_dir(dir.path().join("plots"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("score.PNG")]);
    }
}
