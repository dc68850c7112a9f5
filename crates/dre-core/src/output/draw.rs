//! What the pictures share: the embedded font, the asinh stretch and its colours, number
//! labels, and PNG files written whole or not at all.
//!
//! Text is drawn with DejaVu Sans compiled into the library (plotters' `ab_glyph` text), so
//! that no system font is looked up at run time: a bare machine draws the same picture.

use crate::error::{Error, Result};
use ab_glyph::{point, Font, FontRef, GlyphId, ScaleFont};
use plotters::style::{register_font, FontStyle, RGBColor};
use std::sync::OnceLock;

/// The family name the embedded font is registered under (plotters' registry is global:
/// a private name keeps a caller's own fonts apart).
pub(crate) const FONT: &str = "dre-dejavu-sans";

/// DejaVu Sans 2.37 (Debian's fonts-dejavu-core; licence in data/fonts/LICENSE-DejaVu).
static FONT_DATA: &[u8] = include_bytes!("../../data/fonts/DejaVuSans.ttf");

/// The embedded font, parsed once.
fn font() -> Result<&'static FontRef<'static>> {
    static PARSED: OnceLock<Option<FontRef<'static>>> = OnceLock::new();
    PARSED
        .get_or_init(|| FontRef::try_from_slice(FONT_DATA).ok())
        .as_ref()
        .ok_or_else(|| Error::Invalid("the embedded font cannot be read".into()))
}

/// Registers the embedded font with plotters once per process.
pub(crate) fn ensure_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| register_font(FONT, FontStyle::Normal, FONT_DATA).is_ok());
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid("the embedded font cannot be read".into()))
    }
}

/// A drawing error of plotters as the library's error about `what`.
pub(crate) fn draw_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("cannot draw {what}: {e}"))
}

/// An 8-bit RGB image, row-major, 3 bytes a pixel.
pub(crate) struct Canvas {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

impl Canvas {
    /// A canvas filled with `colour`.
    pub fn new(width: u32, height: u32, colour: RGBColor) -> Canvas {
        let n = width as usize * height as usize;
        let mut rgb = Vec::with_capacity(3 * n);
        for _ in 0..n {
            rgb.extend_from_slice(&[colour.0, colour.1, colour.2]);
        }
        Canvas { width, height, rgb }
    }

    /// Sets pixel (x, y); outside the canvas, nothing.
    pub fn put(&mut self, x: usize, y: usize, c: RGBColor) {
        if x < self.width as usize && y < self.height as usize {
            let p = 3 * (y * self.width as usize + x);
            self.rgb[p..p + 3].copy_from_slice(&[c.0, c.1, c.2]);
        }
    }

    /// Mixes `colour` into pixel (x, y) with weight `alpha` (0..1); outside, nothing.
    fn blend(&mut self, x: i32, y: i32, colour: RGBColor, alpha: f32) {
        if x < 0 || y < 0 || x >= self.width as i32 || y >= self.height as i32 {
            return;
        }
        let a = alpha.clamp(0.0, 1.0);
        let p = 3 * (y as usize * self.width as usize + x as usize);
        for (k, c) in [colour.0, colour.1, colour.2].into_iter().enumerate() {
            let old = self.rgb[p + k] as f32;
            self.rgb[p + k] = (old + a * (c as f32 - old)).round() as u8;
        }
    }

    /// Draws `text` in the embedded font, `size` pixels from ascent to descent, its top
    /// left at (x, y), each glyph at its kerned position with its side bearing (plotters'
    /// own text drops the bearing, which shifts narrow glyphs such as `1`); returns the
    /// width drawn.
    pub fn text(&mut self, x: f32, y: f32, size: f32, text: &str, colour: RGBColor) -> Result<f32> {
        let font = font()?;
        let scaled = font.as_scaled(size);
        let baseline = y + scaled.ascent();
        let mut pen = x;
        let mut prev: Option<GlyphId> = None;
        for ch in text.chars() {
            let id = scaled.glyph_id(ch);
            if let Some(p) = prev {
                pen += scaled.kern(p, id);
            }
            let glyph = id.with_scale_and_position(size, point(pen, baseline));
            if let Some(outline) = font.outline_glyph(glyph) {
                let b = outline.px_bounds();
                outline.draw(|gx, gy, coverage| {
                    let (px, py) = (b.min.x as i32 + gx as i32, b.min.y as i32 + gy as i32);
                    self.blend(px, py, colour, coverage);
                });
            }
            pen += scaled.h_advance(id);
            prev = Some(id);
        }
        Ok(pen - x)
    }

    /// The PNG file of the canvas (8-bit RGB).
    pub fn encode_png(&self) -> Result<Vec<u8>> {
        let fail = |e: png::EncodingError| Error::Invalid(format!("cannot encode a PNG: {e}"));
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, self.width, self.height);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            // fdeflate: a few times faster than the default level, files about 10% larger.
            enc.set_compression(png::Compression::Fast);
            let mut w = enc.write_header().map_err(fail)?;
            w.write_image_data(&self.rgb).map_err(fail)?;
            w.finish().map_err(fail)?;
        }
        Ok(out)
    }
}

/// The value at quantile `q` (0..1) of finite values, sorted in place; None when empty.
pub(crate) fn quantile(v: &mut [f64], q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let k = ((v.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
    Some(v[k])
}

/// An asinh stretch: `t(v) = (asinh(v / soft) - asinh(lo / soft)) / (asinh(hi / soft) -
/// asinh(lo / soft))`, clamped to 0..1. Linear within a few `soft` of zero (the noise),
/// logarithmic above: the faint wings and the bright core both show.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stretch {
    /// The value shown darkest.
    pub lo: f64,
    /// The value shown brightest.
    pub hi: f64,
    /// The softening, about the noise per pixel.
    pub soft: f64,
}

impl Stretch {
    /// The value at `t` (0..1): the inverse of [`Stretch::position`].
    pub fn value(&self, t: f64) -> f64 {
        let (a, b) = self.ends();
        self.soft * (a + t * (b - a)).sinh()
    }

    fn ends(&self) -> (f64, f64) {
        ((self.lo / self.soft).asinh(), (self.hi / self.soft).asinh())
    }

    /// Where `v` falls, 0 (lo) to 1 (hi), unclamped; NaN stays NaN.
    pub fn position(&self) -> impl Fn(f64) -> f64 {
        let (a, b) = self.ends();
        let soft = self.soft;
        move |v: f64| ((v / soft).asinh() - a) / (b - a)
    }

    /// The colour of a value: viridis from lo to hi, NaN (a masked pixel) grey.
    pub fn colours(&self) -> impl Fn(f64) -> RGBColor {
        let t = self.position();
        move |v: f64| {
            if v.is_nan() {
                NAN_GREY
            } else {
                viridis(t(v).clamp(0.0, 1.0))
            }
        }
    }
}

/// Masked (NaN) pixels.
pub(crate) const NAN_GREY: RGBColor = RGBColor(128, 128, 128);

/// Viridis (matplotlib's, sampled at 9 points and interpolated linearly), `t` in 0..1.
pub(crate) fn viridis(t: f64) -> RGBColor {
    const V: [[f64; 3]; 9] = [
        [68.0, 1.0, 84.0],
        [71.0, 44.0, 122.0],
        [59.0, 81.0, 139.0],
        [44.0, 113.0, 142.0],
        [33.0, 144.0, 141.0],
        [39.0, 173.0, 129.0],
        [92.0, 200.0, 99.0],
        [170.0, 220.0, 50.0],
        [253.0, 231.0, 37.0],
    ];
    let x = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    } * 8.0;
    let i = (x.floor() as usize).min(7);
    let f = x - i as f64;
    let c = |k: usize| (V[i][k] + f * (V[i + 1][k] - V[i][k])).round() as u8;
    RGBColor(c(0), c(1), c(2))
}

/// A number for a label: 3 significant digits, no exponent between 1e-3 and 1e5.
pub(crate) fn label(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if !v.is_finite() {
        return "nan".into();
    }
    let mag = v.abs().log10().floor() as i32;
    if !(-3..5).contains(&mag) {
        return format!("{v:.2e}");
    }
    let decimals = (2 - mag).max(0) as usize;
    format!("{v:.decimals$}")
}

/// A tick label: the value to 3 decimals, trailing zeros dropped (`20`, `0.3`, `-1.25`).
pub(crate) fn tick(v: &f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.into()
    }
}

/// Decodes an RGB PNG written here: (width, height, RGB bytes). For the tests of the
/// pictures.
#[cfg(test)]
pub(crate) fn decode_png(png: &[u8]) -> (u32, u32, Vec<u8>) {
    let mut r = png::Decoder::new(std::io::Cursor::new(png))
        .read_info()
        .unwrap();
    let mut buf = vec![0; r.output_buffer_size()];
    let info = r.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stretch_inverts_and_is_linear_near_zero() {
        let s = Stretch {
            lo: -5.0,
            hi: 1000.0,
            soft: 2.0,
        };
        let t = s.position();
        assert!(t(-5.0).abs() < 1e-12 && (t(1000.0) - 1.0).abs() < 1e-12);
        for x in [0.0, 0.1, 0.5, 0.9, 1.0] {
            assert!((t(s.value(x)) - x).abs() < 1e-12);
        }
        // asinh: a step of 1 near 0 moves t much more than a step of 1 near 1000.
        assert!(t(1.0) - t(0.0) > 20.0 * (t(1000.0) - t(999.0)));
        let colour = s.colours();
        assert_eq!(colour(-10.0), viridis(0.0));
        assert_eq!(colour(1e6), viridis(1.0));
        assert_eq!(colour(f64::NAN), NAN_GREY);
    }

    #[test]
    fn viridis_ends_and_labels() {
        assert_eq!(viridis(0.0), RGBColor(68, 1, 84));
        assert_eq!(viridis(1.0), RGBColor(253, 231, 37));
        assert_eq!(viridis(0.5), RGBColor(33, 144, 141));
        assert_eq!(label(0.0), "0");
        assert_eq!(label(1234.4), "1234");
        assert_eq!(label(-0.01234), "-0.0123");
        assert_eq!(label(3.0), "3.00");
        assert_eq!(label(2.5e6), "2.50e6");
        assert_eq!(tick(&20.0), "20");
        assert_eq!(tick(&0.30000000004), "0.3");
        assert_eq!(tick(&-1.25), "-1.25");
        assert_eq!(tick(&-0.0001), "0");
    }

    #[test]
    fn text_is_drawn_where_asked_and_as_wide_as_its_advances() {
        let mut c = Canvas::new(200, 40, RGBColor(255, 255, 255));
        let w1 = c.text(10.0, 5.0, 20.0, "11", RGBColor(0, 0, 0)).unwrap();
        let w2 = c.text(10.0, 5.0, 20.0, "1", RGBColor(0, 0, 0)).unwrap();
        // Two ones are twice as wide as one (no kerning between digits).
        assert!(
            (w1 - 2.0 * w2).abs() < 1e-3 && w2 > 8.0 && w2 < 16.0,
            "{w1} {w2}"
        );
        let dark: Vec<(usize, usize)> = (0..40)
            .flat_map(|y| (0..200).map(move |x| (x, y)))
            .filter(|&(x, y)| c.rgb[3 * (y * 200 + x)] < 128)
            .collect();
        assert!(dark.len() > 30);
        // Inside the box drawn: from x = 10 to 10 + w1, y = 5 to 25.
        assert!(dark
            .iter()
            .all(|&(x, y)| x >= 10 && (x as f32) < 10.0 + w1 && (5..26).contains(&y)));
        // The bearing is kept: the first one's stem starts right of the pen.
        assert!(dark.iter().all(|&(x, _)| x > 11));
    }

    #[test]
    fn png_of_a_canvas_decodes_to_it() {
        let mut c = Canvas::new(5, 3, RGBColor(1, 2, 3));
        c.put(4, 2, RGBColor(200, 100, 50));
        c.put(9, 9, RGBColor(0, 0, 0));
        let png = c.encode_png().unwrap();
        let dec = png::Decoder::new(std::io::Cursor::new(png));
        let mut r = dec.read_info().unwrap();
        let mut buf = vec![0; r.output_buffer_size()];
        let info = r.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (5, 3));
        assert_eq!(info.color_type, png::ColorType::Rgb);
        assert_eq!(&buf[..3], &[1, 2, 3]);
        assert_eq!(&buf[3 * 14..3 * 15], &[200, 100, 50]);
    }
}
