//! The picture of a fit (`dre --png`): beside each FITS mosaic a PNG of four panels, data |
//! model | residual | segment, the first three on one asinh stretch with its colour bar,
//! under a title that names the object and gives its fitted values.
//!
//! Panels show the cut as ds9 does: its first row at the bottom. Each stamp pixel is a
//! square of `zoom` x `zoom` screen pixels, `zoom` the smallest integer that makes a panel
//! at least 256 pixels wide ([`mosaic_png_size`]).

use crate::error::Result;
use crate::fit::params::Params;
use crate::fit::refine::DRE_FLAG_BITS;
use crate::io::atomic::write_file;
use crate::output::draw::{label, quantile, viridis, Canvas, Stretch};
use plotters::style::RGBColor;
use std::path::Path;

const MARGIN: usize = 10;
const GAP: usize = 10;
const TITLE_H: usize = 50;
const LABEL_H: usize = 22;
const BAR_W: usize = 16;
const BAR_TEXT_W: usize = 70;
/// Panels are at least this wide.
const MIN_PANEL: usize = 256;

const BACKGROUND: RGBColor = RGBColor(255, 255, 255);
const BLACK: RGBColor = RGBColor(0, 0, 0);
const SEGMENT_IN: RGBColor = RGBColor(250, 190, 60);
const SEGMENT_OUT: RGBColor = RGBColor(40, 40, 48);

/// The zoom of a stamp of `boxsize` pixels: screen pixels per stamp pixel.
fn zoom(boxsize: usize) -> usize {
    MIN_PANEL.div_ceil(boxsize.max(1)).max(1)
}

/// Width and height in pixels of the picture of a mosaic of `boxsize` x `boxsize` stamps:
/// four panels of `P = boxsize x zoom` pixels (zoom the smallest integer making P >= 256),
/// `width = 10 + 4 (P + 10) + 16 + 70` (margin, panels and gaps, colour bar, its labels),
/// `height = 50 + 22 + P + 10` (title, panel labels, panels, margin): 1160 x 338 for the
/// default 128-pixel stamps.
pub fn mosaic_png_size(boxsize: usize) -> (u32, u32) {
    let p = boxsize.max(1) * zoom(boxsize);
    let w = MARGIN + 4 * (p + GAP) + BAR_W + BAR_TEXT_W;
    let h = TITLE_H + LABEL_H + p + MARGIN;
    (w as u32, h as u32)
}

/// The title of an object's picture, two lines: the tile and object, `CHI`, `NPIX`,
/// `DRE_FLAGS` (with the names of its bits) and the grid values; then the off-grid values
/// with their errors (`LOGR_PARAB` when there are none).
pub fn mosaic_title(tile: &str, object: &str, p: &Params) -> Vec<String> {
    let mut first = format!("{tile} {object}   CHI {}", label(p.chi as f64));
    if let Some(r) = &p.refined {
        first.push_str(&format!("   NPIX {}   DRE_FLAGS {}", r.npix, r.flags));
        let names: Vec<&str> = DRE_FLAG_BITS
            .iter()
            .filter(|(bit, _, _)| r.flags & bit != 0)
            .map(|(_, name, _)| *name)
            .collect();
        if !names.is_empty() {
            first.push_str(&format!(" ({})", names.join(", ")));
        }
    }
    first.push_str(&format!(
        "   grid: LOGR {:.2}  AX_RATIO {:.2}  ANGLE {:.0}  INDEX {}",
        p.logr, p.ax_ratio, p.angle, p.index
    ));
    let second = match &p.refined {
        Some(r) => {
            let mut s = format!(
                "LOGR_FIT {}   AX_RATIO_FIT {}   ANGLE_FIT {}",
                plus_minus(r.values[3], r.errors[3], 3),
                plus_minus(r.values[1], r.errors[1], 3),
                plus_minus(r.values[2], r.errors[2], 1)
            );
            if r.multi_index {
                s.push_str(&format!(
                    "   INDEX_FIT {}",
                    plus_minus(r.values[0], r.errors[0], 2)
                ));
            }
            s
        }
        None => format!("LOGR_PARAB {}", plus_minus(p.logr_parab, p.logr_std, 3)),
    };
    vec![first, second]
}

/// `v ± e` with `decimals` decimals; `-` for a NaN value, the value alone for a NaN error.
fn plus_minus(v: f64, e: f64, decimals: usize) -> String {
    match (v.is_finite(), e.is_finite()) {
        (false, _) => "-".into(),
        (true, false) => format!("{v:.decimals$}"),
        (true, true) => format!("{v:.decimals$} ± {e:.decimals$}"),
    }
}

/// The robust standard deviation (1.4826 x median absolute deviation) of finite values.
fn nmad(v: &mut [f64]) -> Option<f64> {
    let med = quantile(v, 0.5)?;
    let mut dev: Vec<f64> = v.iter().map(|x| (x - med).abs()).collect();
    quantile(&mut dev, 0.5).map(|m| 1.4826 * m)
}

/// The stretch shared by data, model and residual: from the 0.5th to the 99.9th
/// percentile of their pixels together, softened at the noise of the data outside the
/// segment (of all the data when that is zero).
fn shared_stretch(data: &[f32], seg: &[bool], model: &[f64]) -> Stretch {
    let mut all: Vec<f64> = Vec::with_capacity(3 * data.len());
    for (&d, &m) in data.iter().zip(model) {
        let d = d as f64;
        all.extend([d, m, d - m].into_iter().filter(|v| v.is_finite()));
    }
    let lo = quantile(&mut all, 0.005).unwrap_or(0.0);
    let hi = quantile(&mut all, 0.999).unwrap_or(1.0);
    let finite = |inside: Option<bool>| -> Vec<f64> {
        data.iter()
            .zip(seg)
            .filter(|(d, &s)| d.is_finite() && inside.is_none_or(|i| i == s))
            .map(|(&d, _)| d as f64)
            .collect()
    };
    let positive = |x: Option<f64>| x.filter(|&s| s > 0.0 && s.is_finite());
    let soft = positive(nmad(&mut finite(Some(false))))
        .or_else(|| positive(nmad(&mut finite(None))))
        .or_else(|| positive(Some((hi - lo) / 100.0)))
        .unwrap_or(1.0);
    let hi = if hi > lo { hi } else { lo + soft };
    Stretch { lo, hi, soft }
}

/// The PNG picture of one object's fit: data | model x `scale` | residual | segment, each
/// `boxsize` x `boxsize` (as [`crate::mosaic`] takes them), under the `title` lines
/// ([`mosaic_title`]); size [`mosaic_png_size`].
///
/// # Panics
///
/// If `data`, `seg` or `model` holds fewer than `boxsize * boxsize` pixels.
pub fn mosaic_png(
    data: &[f32],
    seg: &[bool],
    model: &[f32],
    scale: f32,
    boxsize: usize,
    title: &[String],
) -> Result<Vec<u8>> {
    let b = boxsize.max(1);
    let n = b * b;
    let (data, seg) = (&data[..n], &seg[..n]);
    let model: Vec<f64> = model[..n]
        .iter()
        .map(|&m| scale as f64 * m as f64)
        .collect();
    let stretch = shared_stretch(data, seg, &model);
    let z = zoom(b);
    let p = b * z;
    let (w, h) = mosaic_png_size(b);
    let mut canvas = Canvas::new(w, h, BACKGROUND);
    let top = TITLE_H + LABEL_H;
    let left = |k: usize| MARGIN + k * (p + GAP);
    let colour = stretch.colours();
    let pixels: Vec<[RGBColor; 4]> = (0..n)
        .map(|i| {
            let d = data[i] as f64;
            [
                colour(d),
                colour(model[i]),
                colour(d - model[i]),
                if seg[i] { SEGMENT_IN } else { SEGMENT_OUT },
            ]
        })
        .collect();
    // Screen row r of a panel shows cut row b - 1 - r / z: the first row at the bottom.
    for r in 0..p {
        let row = b - 1 - r / z;
        for c in 0..p {
            for (k, &colour) in pixels[row * b + c / z].iter().enumerate() {
                canvas.put(left(k) + c, top + r, colour);
            }
        }
    }
    // The colour bar: lo at the bottom, hi at the top.
    let bar = left(4);
    for r in 0..p {
        let t = 1.0 - r as f64 / (p - 1).max(1) as f64;
        let colour = viridis(t);
        for c in 0..BAR_W {
            canvas.put(bar + c, top + r, colour);
        }
    }
    for (k, line) in title.iter().take(2).enumerate() {
        let size = if k == 0 { 16.0 } else { 15.0 };
        canvas.text(MARGIN as f32, 6.0 + 21.0 * k as f32, size, line, BLACK)?;
    }
    let names = ["data", "model (scaled to the data)", "residual", "segment"];
    for (k, name) in names.iter().enumerate() {
        canvas.text(left(k) as f32, (TITLE_H + 2) as f32, 15.0, name, BLACK)?;
    }
    // Five ticks on the colour bar, labelled with the values in the data's units.
    for k in 0..5 {
        let t = k as f64 / 4.0;
        let y = top + ((1.0 - t) * (p - 1) as f64).round() as usize;
        for x in bar + BAR_W..bar + BAR_W + 4 {
            canvas.put(x, y, BLACK);
        }
        let label_size = 13.0;
        let label_top = y as f32 - 0.5 * label_size;
        canvas.text(
            (bar + BAR_W + 7) as f32,
            label_top,
            label_size,
            &label(stretch.value(t)),
            BLACK,
        )?;
    }
    canvas.encode_png()
}

/// Writes [`mosaic_png`] to `path`, whole or not at all.
pub fn write_mosaic_png(
    path: impl AsRef<Path>,
    data: &[f32],
    seg: &[bool],
    model: &[f32],
    scale: f32,
    boxsize: usize,
    title: &[String],
) -> Result<()> {
    let png = mosaic_png(data, seg, model, scale, boxsize, title)?;
    write_file(path.as_ref(), &png)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::draw::decode_png;

    /// A round blob on noise, its segment, and a model.
    fn object(b: usize, noise: f32) -> (Vec<f32>, Vec<bool>, Vec<f32>) {
        let c = (b as f32 - 1.0) / 2.0;
        let mut data = Vec::new();
        let mut seg = Vec::new();
        let mut model = Vec::new();
        for y in 0..b {
            for x in 0..b {
                let r2 = (x as f32 - c).powi(2) + (y as f32 - c).powi(2);
                let m = (-r2 / 20.0).exp();
                // A fixed pattern standing for noise.
                let e = noise * (((x * 7 + y * 13) % 11) as f32 - 5.0) / 5.0;
                model.push(m / 10.0);
                data.push(100.0 * m + e);
                seg.push(r2 < 36.0);
            }
        }
        (data, seg, model)
    }

    /// The pixels of panel k (0 data, 1 model, 2 residual, 3 segment) of a decoded picture.
    fn panel(rgb: &[u8], w: u32, b: usize, k: usize) -> Vec<[u8; 3]> {
        let p = b * zoom(b);
        let mut out = Vec::new();
        for r in 0..p {
            for c in 0..p {
                let q = 3 * ((TITLE_H + LABEL_H + r) * w as usize + MARGIN + k * (p + GAP) + c);
                out.push([rgb[q], rgb[q + 1], rgb[q + 2]]);
            }
        }
        out
    }

    #[test]
    fn size_follows_the_stamp_and_the_layout() {
        assert_eq!(mosaic_png_size(128), (1160, 338));
        // 20-pixel stamps: zoom 13, panels of 260.
        assert_eq!(mosaic_png_size(20), (10 + 4 * 270 + 86, 50 + 22 + 260 + 10));
        // Stamps wider than 256 pixels are shown one to one.
        assert_eq!(mosaic_png_size(300), (10 + 4 * 310 + 86, 382));
    }

    #[test]
    fn picture_is_a_png_of_its_size_with_four_panels() {
        let b = 32;
        let (data, seg, model) = object(b, 2.0);
        let title = vec!["t 00_0001   CHI 1.00".to_string(), "LOGR_FIT 0.5".into()];
        let png = mosaic_png(&data, &seg, &model, 9.0, b, &title).unwrap();
        let (w, h, rgb) = decode_png(&png);
        assert_eq!((w, h), mosaic_png_size(b));
        let distinct = |v: &[[u8; 3]]| {
            let mut v = v.to_vec();
            v.sort();
            v.dedup();
            v.len()
        };
        // The data show many levels; the segment two colours; the title is drawn (dark
        // pixels in the white band above the panels).
        assert!(distinct(&panel(&rgb, w, b, 0)) > 20);
        assert_eq!(distinct(&panel(&rgb, w, b, 3)), 2);
        let dark_in_title = (0..TITLE_H * w as usize)
            .filter(|&i| rgb[3 * i] < 100)
            .count();
        assert!(
            dark_in_title > 200,
            "{dark_in_title} dark pixels in the title"
        );
        // The segment's centre is shown bright at the panel's centre.
        let seg_panel = panel(&rgb, w, b, 3);
        let p = b * zoom(b);
        let centre = seg_panel[(p / 2) * p + p / 2];
        assert_eq!(centre, [SEGMENT_IN.0, SEGMENT_IN.1, SEGMENT_IN.2]);
        assert_eq!(seg_panel[0], [SEGMENT_OUT.0, SEGMENT_OUT.1, SEGMENT_OUT.2]);
    }

    #[test]
    fn residual_of_a_perfect_model_is_flat() {
        let b = 24;
        let (data, seg, _) = object(b, 0.0);
        let png = mosaic_png(&data, &seg, &data, 1.0, b, &[]).unwrap();
        let (w, _, rgb) = decode_png(&png);
        let res = panel(&rgb, w, b, 2);
        assert!(res.iter().all(|&c| c == res[0]));
        // Zero sits inside the stretch, neither end of it.
        let data_panel = panel(&rgb, w, b, 0);
        assert!(data_panel.iter().any(|&c| c != res[0]));
        // The model panel is the data panel.
        assert_eq!(panel(&rgb, w, b, 1), data_panel);
    }

    #[test]
    fn first_row_of_the_cut_is_at_the_bottom() {
        let b = 16;
        let mut data = vec![0f32; b * b];
        data[..b].fill(1000.0); // row 0
        let seg = vec![true; b * b];
        let png = mosaic_png(&data, &seg, &vec![0.0; b * b], 1.0, b, &[]).unwrap();
        let (w, _, rgb) = decode_png(&png);
        let d = panel(&rgb, w, b, 0);
        let p = b * zoom(b);
        assert_ne!(d[(p - 1) * p], d[0], "bottom row differs from the top row");
        assert_eq!(d[0], d[(p / 2) * p]);
    }

    #[test]
    fn title_names_the_values_and_the_flags() {
        let grid = crate::model::default_cube::default_grid();
        let mut chi = vec![5f32; grid.n_models()];
        chi[grid.n_models() / 2] = 1.0;
        let mut p = crate::fit::params::parameters(&chi, &grid).unwrap();
        p.refined = Some(crate::fit::refine::Refined {
            values: [4.0, 0.5, 30.0, 0.8],
            errors: [f64::NAN, 0.02, 1.5, 0.01],
            flags: 3,
            npix: 812,
            multi_index: false,
        });
        let t = mosaic_title("gold", "00_0004", &p);
        assert_eq!(t.len(), 2);
        assert!(
            t[0].starts_with(
                "gold 00_0004   CHI 1.00   NPIX 812   DRE_FLAGS 3 (LOGR_EDGE, Q_EDGE)"
            ),
            "{}",
            t[0]
        );
        assert_eq!(
            t[1],
            "LOGR_FIT 0.800 ± 0.010   AX_RATIO_FIT 0.500 ± 0.020   ANGLE_FIT 30.0 ± 1.5"
        );
        p.refined = None;
        assert!(mosaic_title("gold", "00_0004", &p)[1].starts_with("LOGR_PARAB "));
    }
}
