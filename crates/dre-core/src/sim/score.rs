//! Scoring a Summary against the truth of a simulated tile: each fitted object is matched to
//! the nearest true galaxy within a radius, and for each quantity (log R_e, q, theta, n) the
//! offsets fit - truth are summarised by their median, NMAD (1.4826 x median absolute
//! deviation) and the fractions within half a grid step and within one step, overall and by
//! S/N bin. Where the Summary has the off-grid columns (`LOGR_FIT`, `AX_RATIO_FIT`,
//! `ANGLE_FIT`, `INDEX_FIT`) they are scored the same way, and their pulls (fit - truth) /
//! error summarised by their median and NMAD.

use crate::conventions::angle_difference;
use crate::error::{AtPath, Error, Result};
use crate::io::table::Table;
use crate::model::cube::Grid;
use std::path::Path;

/// One true galaxy.
#[derive(Clone, Debug, PartialEq)]
pub struct Truth {
    /// FITS 1-based pixel position.
    pub x: f64,
    pub y: f64,
    pub n: f64,
    pub q: f64,
    pub theta: f64,
    pub log_re: f64,
    pub snr: f64,
}

/// One fitted object of a Summary.
#[derive(Clone, Debug, PartialEq)]
pub struct Fitted {
    pub x: f64,
    pub y: f64,
    pub n: f64,
    pub q: f64,
    pub theta: f64,
    pub logr: f64,
    pub logr_parab: f64,
    /// The off-grid values and their errors, (value, error) in the cube's axis order (n, q,
    /// theta, log r): `INDEX_FIT`, `AX_RATIO_FIT`, `ANGLE_FIT`, `LOGR_FIT` and their
    /// `_ERR`; None where the Summary has no such column (an error column missing is NaN).
    pub fit: [Option<(f64, f64)>; 4],
}

/// The off-grid columns of a Summary, in the cube's axis order (n, q, theta, log r).
pub const FIT_COLUMNS: [&str; 4] = ["INDEX_FIT", "AX_RATIO_FIT", "ANGLE_FIT", "LOGR_FIT"];

/// Reads a truth CSV (header line; columns X, Y, N_SERSIC, Q, THETA, LOG_RE, and SNR or
/// SNR_EST; rows whose TYPE is `star` are skipped). With `radius_column`, the true log radius
/// is log10 of that column instead of LOG_RE (e.g. A_HLR, the semi-major radius of the golden
/// truth, whose LOG_RE is circularised).
///
/// A malformed row is an error naming the file and its line (1-based, blank lines counted):
/// a number of fields other than the header's, a TYPE other than `gal` or `star`, a value
/// that is not a number, or a non-finite one (SNR may be NaN: such a galaxy is in no S/N
/// bin). None is skipped, so the score never rests on part of the truth without a word.
pub fn read_truth(path: impl AsRef<Path>, radius_column: Option<&str>) -> Result<Vec<Truth>> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).at(path)?;
    // (line number, text) of the non-blank lines.
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| !l.trim().is_empty());
    let header: Vec<&str> = lines
        .next()
        .ok_or_else(|| Error::file(path, "empty truth file"))?
        .1
        .split(',')
        .map(str::trim)
        .collect();
    let col = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| header.iter().position(|h| h == n))
            .ok_or_else(|| Error::file(path, format!("no {} column", names[0])))
    };
    let (cx, cy, cn, cq, ct, cr) = (
        col(&["X"])?,
        col(&["Y"])?,
        col(&["N_SERSIC"])?,
        col(&["Q"])?,
        col(&["THETA"])?,
        col(&[radius_column.unwrap_or("LOG_RE")])?,
    );
    let cs = col(&["SNR", "SNR_EST"]).ok();
    let ctype = header.iter().position(|h| *h == "TYPE");
    let mut out = Vec::new();
    for (line, text) in lines {
        let bad = |msg: String| Error::file(path, format!("line {line}: {msg}"));
        let f: Vec<&str> = text.split(',').map(str::trim).collect();
        if f.len() != header.len() {
            return Err(bad(format!(
                "{} fields, the header has {}",
                f.len(),
                header.len()
            )));
        }
        if let Some(c) = ctype {
            match f[c] {
                "gal" => {}
                "star" => continue,
                t => return Err(bad(format!("TYPE is `{t}`, not gal or star"))),
            }
        }
        let num = |c: usize| -> Result<f64> {
            f[c].parse::<f64>()
                .map_err(|_| bad(format!("{} is `{}`, not a number", header[c], f[c])))
        };
        let finite = |c: usize| -> Result<f64> {
            let v = num(c)?;
            if v.is_finite() {
                Ok(v)
            } else {
                Err(bad(format!("{} is {v}, not a finite number", header[c])))
            }
        };
        let log_re = match radius_column {
            Some(_) => {
                let r = finite(cr)?;
                if r <= 0.0 {
                    return Err(bad(format!("{} is {r}, not a positive radius", header[cr])));
                }
                r.log10()
            }
            None => finite(cr)?,
        };
        out.push(Truth {
            x: finite(cx)?,
            y: finite(cy)?,
            n: finite(cn)?,
            q: finite(cq)?,
            theta: finite(ct)?,
            log_re,
            snr: match cs {
                Some(c) => num(c)?,
                None => f64::NAN,
            },
        });
    }
    Ok(out)
}

/// The fitted objects of a Summary table (it must carry the catalogue's X_IMAGE, Y_IMAGE).
pub fn fitted_from_summary(t: &Table) -> Result<Vec<Fitted>> {
    let col = |name: &str| {
        let v = t
            .column(name)
            .and_then(|c| c.as_f64())
            .ok_or_else(|| Error::Invalid(format!("Summary has no numeric {name} column")))?;
        // `Table`'s fields are public: a hand-made table can have ragged columns.
        if v.len() != t.nrows() {
            return Err(Error::Invalid(format!(
                "Summary column {name} has {} rows, not {}",
                v.len(),
                t.nrows()
            )));
        }
        Ok(v)
    };
    // The off-grid columns are newer than the original's Summary: scored when present.
    let fit: Vec<Option<(Vec<f64>, Vec<f64>)>> = FIT_COLUMNS
        .iter()
        .map(|name| {
            if t.column(name).is_none() {
                return Ok(None);
            }
            let err = format!("{name}_ERR");
            let e = match t.column(&err) {
                Some(_) => col(&err)?,
                None => vec![f64::NAN; t.nrows()],
            };
            Ok(Some((col(name)?, e)))
        })
        .collect::<Result<_>>()?;
    let (x, y, n, q, th, r, rp) = (
        col("X_IMAGE")?,
        col("Y_IMAGE")?,
        col("INDEX")?,
        col("AX_RATIO")?,
        col("ANGLE")?,
        col("LOGR")?,
        col("LOGR_PARAB")?,
    );
    Ok((0..t.nrows())
        .map(|i| Fitted {
            x: x[i],
            y: y[i],
            n: n[i],
            q: q[i],
            theta: th[i],
            logr: r[i],
            logr_parab: rp[i],
            fit: std::array::from_fn(|a| fit[a].as_ref().map(|(v, e)| (v[i], e[i]))),
        })
        .collect())
}

/// Pairs (truth, fitted): each fitted object with its nearest true galaxy within `radius`
/// pixels; a galaxy claimed twice keeps the closer object.
pub fn match_nearest(truth: &[Truth], fitted: &[Fitted], radius: f64) -> Vec<(usize, usize)> {
    let mut best: Vec<Option<(usize, f64)>> = vec![None; truth.len()];
    for (j, f) in fitted.iter().enumerate() {
        let nearest = truth
            .iter()
            .enumerate()
            .map(|(i, t)| (i, (t.x - f.x).hypot(t.y - f.y)))
            .filter(|&(_, d)| d <= radius)
            .min_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((i, d)) = nearest {
            if best[i].is_none_or(|(_, bd)| d < bd) {
                best[i] = Some((j, d));
            }
        }
    }
    best.iter()
        .enumerate()
        .filter_map(|(i, b)| b.map(|(j, _)| (i, j)))
        .collect()
}

/// Summary of the offsets of one quantity.
#[derive(Clone, Debug, PartialEq)]
pub struct Stats {
    pub quantity: &'static str,
    pub n: usize,
    pub median: f64,
    pub nmad: f64,
    pub within_half_step: f64,
    pub within_one_step: f64,
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// Median, NMAD and fractions within half a step and one step of a set of offsets.
pub fn stats(quantity: &'static str, offsets: &[f64], step: f64) -> Stats {
    let mut v: Vec<f64> = offsets.iter().copied().filter(|x| x.is_finite()).collect();
    let n = v.len();
    let med = median(&mut v);
    let mut dev: Vec<f64> = v.iter().map(|x| (x - med).abs()).collect();
    let frac = |lim: f64| {
        if n == 0 {
            f64::NAN
        } else {
            v.iter().filter(|x| x.abs() <= lim).count() as f64 / n as f64
        }
    };
    Stats {
        quantity,
        n,
        median: med,
        nmad: 1.4826 * median(&mut dev),
        within_half_step: frac(step / 2.0 + 1e-9),
        within_one_step: frac(step + 1e-9),
    }
}

/// Grid steps that the fractions refer to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Steps {
    /// Step in log10 R_e (dex; 0.1 in the default grid).
    pub logr: f64,
    /// Step in axis ratio q (0.1 in the default grid).
    pub q: f64,
    /// Step in theta, degrees (15 in the default grid).
    pub theta: f64,
    /// Step in Sérsic index (1 when the grid has a single index).
    pub n: f64,
}

impl Steps {
    /// The sizes of `grid`'s steps (a descending axis steps as far as an ascending one); a
    /// zero index step (one index) counts as 1.
    pub fn of(grid: &Grid) -> Steps {
        let or_one = |s: f64| if s > 0.0 { s } else { 1.0 };
        Steps {
            logr: grid.logh.step.abs(),
            q: grid.axrat.step.abs(),
            theta: grid.posang.step.abs(),
            n: or_one(grid.index.step.abs()),
        }
    }
}

/// Position angles of nearly round galaxies mean nothing: theta is scored for q <= this.
pub const MAX_Q_FOR_THETA: f64 = 0.8;

/// The true value on axis `a` (n, q, theta, log r) of the cube's order.
fn true_value(t: &Truth, a: usize) -> f64 {
    [t.n, t.q, t.theta, t.log_re][a]
}

/// The off-grid quantities the fitted objects carry: (axis, name, step), in the order they
/// are reported (log r, q, theta, n).
fn fit_quantities(fitted: &[Fitted], steps: Steps) -> Vec<(usize, &'static str, f64)> {
    [
        (3, "log_re_fit", steps.logr),
        (1, "q_fit", steps.q),
        (2, "theta_fit", steps.theta),
        (0, "n_fit", steps.n),
    ]
    .into_iter()
    .filter(|&(a, _, _)| fitted.iter().any(|f| f.fit[a].is_some()))
    .collect()
}

/// Off-grid value - truth on axis `a` (theta modulo 180, for true q <= [`MAX_Q_FOR_THETA`]
/// only), and the off-grid error.
fn fit_offset(t: &Truth, f: &Fitted, a: usize) -> Option<(f64, f64)> {
    let (v, e) = f.fit[a]?;
    if a == 2 {
        (t.q <= MAX_Q_FOR_THETA).then(|| (angle_difference(v, t.theta), e))
    } else {
        Some((v - true_value(t, a), e))
    }
}

/// The statistics of a set of matched pairs: log_re, log_re_parab, q, theta, n, then the
/// off-grid quantities the Summary has (log_re_fit, q_fit, theta_fit, n_fit).
pub fn score_pairs(
    truth: &[Truth],
    fitted: &[Fitted],
    pairs: &[(usize, usize)],
    steps: Steps,
) -> Vec<Stats> {
    let offsets = |f: &dyn Fn(&Truth, &Fitted) -> Option<f64>| -> Vec<f64> {
        pairs
            .iter()
            .filter_map(|&(i, j)| f(&truth[i], &fitted[j]))
            .collect()
    };
    let mut out = vec![
        stats(
            "log_re",
            &offsets(&|t, f| Some(f.logr - t.log_re)),
            steps.logr,
        ),
        stats(
            "log_re_parab",
            &offsets(&|t, f| Some(f.logr_parab - t.log_re)),
            steps.logr,
        ),
        stats("q", &offsets(&|t, f| Some(f.q - t.q)), steps.q),
        stats(
            "theta",
            &offsets(&|t, f| (t.q <= MAX_Q_FOR_THETA).then(|| angle_difference(f.theta, t.theta))),
            steps.theta,
        ),
        stats("n", &offsets(&|t, f| Some(f.n - t.n)), steps.n),
    ];
    for (a, name, step) in fit_quantities(fitted, steps) {
        out.push(stats(
            name,
            &offsets(&|t, f| fit_offset(t, f, a).map(|(d, _)| d)),
            step,
        ));
    }
    out
}

/// Median and NMAD of the pulls (fit - truth) / error of one off-grid quantity: a median
/// near 0 and an NMAD near 1 when the errors match the scatter.
#[derive(Clone, Debug, PartialEq)]
pub struct PullStats {
    /// `log_re_fit`, `q_fit`, `theta_fit` or `n_fit`.
    pub quantity: &'static str,
    /// Pulls counted: the pairs with a finite offset and a finite positive error.
    pub n: usize,
    /// Median pull.
    pub median: f64,
    /// NMAD of the pulls.
    pub nmad: f64,
}

/// The pulls of the off-grid quantities the fitted objects carry, over a set of pairs.
pub fn pull_pairs(
    truth: &[Truth],
    fitted: &[Fitted],
    pairs: &[(usize, usize)],
    steps: Steps,
) -> Vec<PullStats> {
    fit_quantities(fitted, steps)
        .into_iter()
        .map(|(a, name, _)| {
            let pulls: Vec<f64> = pairs
                .iter()
                .filter_map(|&(i, j)| fit_offset(&truth[i], &fitted[j], a))
                .filter(|&(_, e)| e > 0.0 && e.is_finite())
                .map(|(d, e)| d / e)
                .collect();
            let s = stats(name, &pulls, 1.0);
            PullStats {
                quantity: name,
                n: s.n,
                median: s.median,
                nmad: s.nmad,
            }
        })
        .collect()
}

/// The whole score: overall and per S/N bin.
#[derive(Clone, Debug)]
pub struct Score {
    /// True galaxies.
    pub truth: usize,
    /// Fitted objects in the Summary.
    pub fitted: usize,
    /// Fitted objects matched to a true galaxy.
    pub matched: usize,
    /// Statistics of every matched pair, one entry per quantity (log_re, log_re_parab, q,
    /// theta, n, then log_re_fit, q_fit, theta_fit, n_fit where the Summary has them).
    pub overall: Vec<Stats>,
    /// (low, high) S/N edges and the statistics of the galaxies in [low, high).
    pub by_snr: Vec<((f64, f64), Vec<Stats>)>,
    /// Pulls of the off-grid quantities over every matched pair (empty for a Summary
    /// without them).
    pub pulls: Vec<PullStats>,
    /// The pulls per S/N bin, the bins of `by_snr`.
    pub pulls_by_snr: Vec<((f64, f64), Vec<PullStats>)>,
}

/// Default S/N bin edges.
pub const SNR_EDGES: [f64; 6] = [0.0, 25.0, 50.0, 100.0, 200.0, f64::INFINITY];

/// Matches each fitted object to its nearest true galaxy within `radius` pixels (`dre_score`
/// default 3) and summarises the offsets, with fractions in units of `steps`, overall and
/// per S/N bin between consecutive `snr_edges` (e.g. [`SNR_EDGES`]).
pub fn score(
    truth: &[Truth],
    fitted: &[Fitted],
    radius: f64,
    steps: Steps,
    snr_edges: &[f64],
) -> Score {
    let pairs = match_nearest(truth, fitted, radius);
    // (S/N edges, the matched pairs in the bin).
    type Bin = ((f64, f64), Vec<(usize, usize)>);
    let bins: Vec<Bin> = snr_edges
        .windows(2)
        .map(|w| {
            let sel: Vec<(usize, usize)> = pairs
                .iter()
                .copied()
                .filter(|&(i, _)| truth[i].snr >= w[0] && truth[i].snr < w[1])
                .collect();
            ((w[0], w[1]), sel)
        })
        .collect();
    Score {
        truth: truth.len(),
        fitted: fitted.len(),
        matched: pairs.len(),
        overall: score_pairs(truth, fitted, &pairs, steps),
        by_snr: bins
            .iter()
            .map(|(edges, sel)| (*edges, score_pairs(truth, fitted, sel, steps)))
            .collect(),
        pulls: pull_pairs(truth, fitted, &pairs, steps),
        pulls_by_snr: bins
            .iter()
            .map(|(edges, sel)| (*edges, pull_pairs(truth, fitted, sel, steps)))
            .collect(),
    }
}

fn json_num(x: f64) -> String {
    if x.is_finite() {
        format!("{x}")
    } else {
        "null".into()
    }
}

fn stats_json(s: &[Stats]) -> String {
    let items: Vec<String> = s
        .iter()
        .map(|s| {
            format!(
                "\"{}\": {{\"n\": {}, \"median\": {}, \"nmad\": {}, \"within_half_step\": {}, \"within_one_step\": {}}}",
                s.quantity,
                s.n,
                json_num(s.median),
                json_num(s.nmad),
                json_num(s.within_half_step),
                json_num(s.within_one_step)
            )
        })
        .collect();
    format!("{{{}}}", items.join(", "))
}

fn pulls_json(p: &[PullStats]) -> String {
    let items: Vec<String> = p
        .iter()
        .map(|p| {
            format!(
                "\"{}\": {{\"n\": {}, \"median\": {}, \"nmad\": {}}}",
                p.quantity,
                p.n,
                json_num(p.median),
                json_num(p.nmad)
            )
        })
        .collect();
    format!("{{{}}}", items.join(", "))
}

impl Score {
    /// One-line JSON (`dre_score --json`); non-finite numbers are `null`.
    pub fn to_json(&self) -> String {
        let bins: Vec<String> = self
            .by_snr
            .iter()
            .zip(&self.pulls_by_snr)
            .map(|(((lo, hi), s), (_, p))| {
                format!(
                    "{{\"snr_min\": {}, \"snr_max\": {}, \"stats\": {}, \"pulls\": {}}}",
                    json_num(*lo),
                    json_num(*hi),
                    stats_json(s),
                    pulls_json(p)
                )
            })
            .collect();
        format!(
            "{{\"truth\": {}, \"fitted\": {}, \"matched\": {}, \"overall\": {}, \"pulls\": {}, \"by_snr\": [{}]}}",
            self.truth,
            self.fitted,
            self.matched,
            stats_json(&self.overall),
            pulls_json(&self.pulls),
            bins.join(", ")
        )
    }

    /// Human-readable tables, overall and for each non-empty S/N bin.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "{} true galaxies, {} fitted objects, {} matched\n",
            self.truth, self.fitted, self.matched
        );
        let table = |out: &mut String, title: &str, s: &[Stats], p: &[PullStats]| {
            out.push_str(&format!(
                "\n{title}\n{:<14}{:>6}{:>10}{:>10}{:>12}{:>12}\n",
                "quantity", "n", "median", "nmad", "<=step/2", "<=step"
            ));
            for s in s {
                out.push_str(&format!(
                    "{:<14}{:>6}{:>10.4}{:>10.4}{:>12.3}{:>12.3}\n",
                    s.quantity, s.n, s.median, s.nmad, s.within_half_step, s.within_one_step
                ));
            }
            if !p.is_empty() {
                out.push_str(&format!(
                    "{:<14}{:>6}{:>10}{:>10}   (fit - truth) / error\n",
                    "pull", "n", "median", "nmad"
                ));
                for p in p {
                    out.push_str(&format!(
                        "{:<14}{:>6}{:>10.3}{:>10.3}\n",
                        p.quantity, p.n, p.median, p.nmad
                    ));
                }
            }
        };
        table(&mut out, "all matched galaxies", &self.overall, &self.pulls);
        for (((lo, hi), s), (_, p)) in self.by_snr.iter().zip(&self.pulls_by_snr) {
            if s[0].n > 0 {
                table(&mut out, &format!("S/N in [{lo}, {hi})"), s, p);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default cube's steps.
    const GRID_STEPS: Steps = Steps {
        logr: 0.1,
        q: 0.1,
        theta: 15.0,
        n: 1.0,
    };

    #[test]
    fn statistics_of_known_offsets() {
        let s = stats("x", &[0.0, 0.1, -0.1, 0.2, 1.0, f64::NAN], 0.2);
        assert_eq!(s.n, 5);
        assert_eq!(s.median, 0.1);
        // |x - 0.1| = 0.1, 0, 0.2, 0.1, 0.9 -> median 0.1
        assert!((s.nmad - 0.14826).abs() < 1e-12);
        assert_eq!(s.within_half_step, 3.0 / 5.0);
        assert_eq!(s.within_one_step, 4.0 / 5.0);
    }

    #[test]
    fn angles_wrap() {
        assert_eq!(angle_difference(89.0, -89.0), -2.0);
        assert_eq!(angle_difference(-80.0, 80.0), 20.0);
        assert_eq!(angle_difference(10.0, 5.0), 5.0);
    }

    #[test]
    fn nearest_match_within_radius_and_one_per_galaxy() {
        let t = |x, y| Truth {
            x,
            y,
            n: 4.0,
            q: 0.5,
            theta: 0.0,
            log_re: 1.0,
            snr: 50.0,
        };
        let f = |x, y| Fitted {
            x,
            y,
            n: 4.0,
            q: 0.5,
            theta: 0.0,
            logr: 1.1,
            logr_parab: 1.0,
            fit: [None; 4],
        };
        let truth = [t(10.0, 10.0), t(50.0, 50.0)];
        let fitted = [f(11.0, 10.0), f(10.5, 10.0), f(80.0, 80.0), f(52.0, 52.0)];
        assert_eq!(match_nearest(&truth, &fitted, 3.0), vec![(0, 1), (1, 3)]);
        let steps = GRID_STEPS;
        let s = score(&truth, &fitted, 3.0, steps, &SNR_EDGES);
        assert_eq!(s.matched, 2);
        assert!((s.overall[0].median - 0.1).abs() < 1e-12);
        assert_eq!(s.by_snr[2].1[0].n, 2);
        assert!(s
            .to_json()
            .starts_with("{\"truth\": 2, \"fitted\": 4, \"matched\": 2,"));
    }

    #[test]
    fn off_grid_columns_are_scored_after_the_old_rows_with_their_pulls() {
        let t = |i: usize| Truth {
            x: 10.0 * i as f64,
            y: 0.0,
            n: 4.0,
            q: 0.5,
            theta: 89.0,
            log_re: 1.0,
            snr: if i < 4 { 30.0 } else { 300.0 },
        };
        // Off-grid offsets 0.01 i in log r with errors 0.01 (pulls i), q 0.02 with error
        // 0.04 (pulls 0.5), theta -2 degrees across the wrap (91 -> -89) with error 1.
        let f = |i: usize| Fitted {
            x: 10.0 * i as f64,
            y: 0.0,
            n: 4.0,
            q: 0.5,
            theta: 90.0,
            logr: 1.0,
            logr_parab: 1.0,
            fit: [
                None,
                Some((0.52, 0.04)),
                Some((-93.0 + 180.0 * (i % 2) as f64, 1.0)),
                Some((1.0 + 0.01 * i as f64, 0.01)),
            ],
        };
        let truth: Vec<Truth> = (0..8).map(t).collect();
        let fitted: Vec<Fitted> = (0..8).map(f).collect();
        let steps = GRID_STEPS;
        let s = score(&truth, &fitted, 3.0, steps, &SNR_EDGES);
        let names: Vec<&str> = s.overall.iter().map(|s| s.quantity).collect();
        assert_eq!(
            names,
            [
                "log_re",
                "log_re_parab",
                "q",
                "theta",
                "n",
                "log_re_fit",
                "q_fit",
                "theta_fit"
            ]
        );
        let fit = &s.overall[5];
        assert_eq!(fit.n, 8);
        assert!((fit.median - 0.035).abs() < 1e-12);
        assert_eq!((fit.within_half_step, fit.within_one_step), (0.75, 1.0));
        assert!((s.overall[6].median - 0.02).abs() < 1e-12);
        assert!(
            (s.overall[7].median + 2.0).abs() < 1e-9,
            "{}",
            s.overall[7].median
        );
        let pulls: Vec<(&str, usize)> = s.pulls.iter().map(|p| (p.quantity, p.n)).collect();
        assert_eq!(pulls, [("log_re_fit", 8), ("q_fit", 8), ("theta_fit", 8)]);
        assert!((s.pulls[0].median - 3.5).abs() < 1e-9);
        // |i - 3.5| = 0.5, 0.5, 1.5, 1.5, ... -> median 2.
        assert!((s.pulls[0].nmad - 1.4826 * 2.0).abs() < 1e-9);
        assert!((s.pulls[1].median - 0.5).abs() < 1e-9 && s.pulls[1].nmad < 1e-9);
        assert!((s.pulls[2].median + 2.0).abs() < 1e-9);
        // Per S/N bin: [25, 50) holds galaxies 0..4, [200, inf) the others.
        let bin = |lo: f64| s.pulls_by_snr.iter().find(|b| b.0 .0 == lo).unwrap();
        assert!((bin(25.0).1[0].median - 1.5).abs() < 1e-9);
        assert!((bin(200.0).1[0].median - 5.5).abs() < 1e-9);
        let json = s.to_json();
        assert!(
            json.contains("\"pulls\": {\"log_re_fit\": {\"n\": 8, \"median\": "),
            "{json}"
        );
        assert!(
            json.contains("\"q_fit\": {\"n\": 8, \"median\": 0.02"),
            "{json}"
        );
        let text = s.to_text();
        assert!(text.contains("\nlog_re_fit         8    0.0350"), "{text}");
        assert!(
            text.contains("\npull               n    median      nmad"),
            "{text}"
        );
        assert!(!text.contains("n_fit"));

        // The original's Summary: no off-grid rows, no pulls, the old rows as they were.
        let old: Vec<Fitted> = (0..8)
            .map(|i| Fitted {
                fit: [None; 4],
                ..f(i)
            })
            .collect();
        let o = score(&truth, &old, 3.0, steps, &SNR_EDGES);
        assert_eq!(o.overall.len(), 5);
        assert_eq!(o.overall[..], s.overall[..5]);
        assert!(o.pulls.is_empty() && o.pulls_by_snr.iter().all(|b| b.1.is_empty()));
        assert!(!o.to_text().contains("pull"));
        assert!(o.to_json().contains("\"pulls\": {}, \"by_snr\""));
    }

    #[test]
    fn reads_the_golden_truth_skipping_stars() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.csv");
        std::fs::write(
            &p,
            "ID,TYPE,X,Y,N_SERSIC,Q,THETA,RE,LOG_RE,SNR_EST\n1,gal,1,2,4,0.5,10,3,0.5,20\n2,star,5,5,0,1,0,0,0,99\n",
        )
        .unwrap();
        let t = read_truth(&p, None).unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!((t[0].x, t[0].log_re, t[0].snr), (1.0, 0.5, 20.0));
        let t = read_truth(&p, Some("RE")).unwrap();
        assert_eq!(t[0].log_re, 3f64.log10());
        std::fs::write(&p, "X,Y\n1,2\n").unwrap();
        assert!(read_truth(&p, None)
            .unwrap_err()
            .to_string()
            .contains("no N_SERSIC column"));
    }

    #[test]
    fn malformed_truth_rows_name_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.csv");
        let head =
            "ID,TYPE,X,Y,N_SERSIC,Q,THETA,RE,LOG_RE,SNR_EST\n1,gal,1,2,4,0.5,10,3,0.5,20\n\n";
        let err = |row: &str| {
            std::fs::write(&p, format!("{head}{row}\n")).unwrap();
            let e = read_truth(&p, None).unwrap_err().to_string();
            e.strip_prefix(&format!("{}: ", p.display()))
                .unwrap()
                .to_string()
        };
        // Line 4: the blank line 3 counts.
        assert_eq!(
            err("2,gal,1,2,4,0.5,10,3,0.5"),
            "line 4: 9 fields, the header has 10"
        );
        assert_eq!(
            err("2,gal,1,2,4,0.5,10,3,0.5,20,7"),
            "line 4: 11 fields, the header has 10"
        );
        assert_eq!(
            err("2,gal,1,2,four,0.5,10,3,0.5,20"),
            "line 4: N_SERSIC is `four`, not a number"
        );
        assert_eq!(
            err("2,gal,nan,2,4,0.5,10,3,0.5,20"),
            "line 4: X is NaN, not a finite number"
        );
        assert_eq!(
            err("2,galaxy,1,2,4,0.5,10,3,0.5,20"),
            "line 4: TYPE is `galaxy`, not gal or star"
        );
        // A star row must still have the header's shape.
        assert_eq!(err("2,star,1,2"), "line 4: 4 fields, the header has 10");
        std::fs::write(&p, format!("{head}2,gal,1,2,4,0.5,10,-3,0.5,nan\n")).unwrap();
        let e = read_truth(&p, Some("RE")).unwrap_err().to_string();
        assert!(
            e.ends_with("line 4: RE is -3, not a positive radius"),
            "{e}"
        );
        // A NaN S/N is allowed: that galaxy is in no S/N bin.
        let t = read_truth(&p, None).unwrap();
        assert_eq!(t.len(), 2);
        assert!(t[1].snr.is_nan());
    }

    #[test]
    fn steps_of_a_descending_grid_are_positive() {
        let mut g = crate::model::default_cube::default_grid();
        g.logh = crate::model::cube::Axis::new(1.6, -0.1, 21);
        assert_eq!(Steps::of(&g).logr, 0.1);
    }
}
