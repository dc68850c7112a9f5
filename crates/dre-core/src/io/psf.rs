//! The tile's PSF: from a PSFEx `.psf` file (the first HDU whose ACCEPTED is non-zero,
//! column PSF_MASK, component 0: order 0) or from a FITS image; negative values set to 0,
//! then normalised to sum 1 (SPEC 4).
//!
//! A PSF that cannot be one is refused: a non-finite pixel, or pixels that do not sum to a
//! positive flux (before or after the negatives are set to 0). A truncated file is said to
//! be truncated, whatever cfitsio's first complaint was.

use crate::error::{AtPath, Error, Result};
use crate::io::fits::{check_whole_read, checked_hdu, count_hdus, open_fits, read_f64_key};
use fitsio::hdu::HduInfo;
use std::path::Path;

/// A PSF image, row-major, `height` x `width`, non-negative, summing to 1.
#[derive(Clone, Debug, PartialEq)]
pub struct Psf {
    /// Pixels per row (NAXIS1; 25 with the shipped PSFEx configuration).
    pub width: usize,
    /// Rows (NAXIS2).
    pub height: usize,
    /// `height * width` values, row-major.
    pub data: Vec<f32>,
}

impl Psf {
    /// Fails unless `data` holds the `width` x `height` pixels, both non-zero: the fields
    /// are public, so a hand-made PSF may not.
    pub(crate) fn check_shape(&self) -> Result<()> {
        if self.width == 0
            || self.height == 0
            || self.width.checked_mul(self.height) != Some(self.data.len())
        {
            return Err(Error::Invalid(format!(
                "PSF of {}x{} pixels holds {} values",
                self.height,
                self.width,
                self.data.len()
            )));
        }
        Ok(())
    }

    /// A PSF from an image in memory (row-major, `height` x `width`; the Python package's
    /// arrays), made as one read from a file: refused if a pixel is not finite or the pixels
    /// sum to no positive flux, negatives set to 0, normalised to sum 1.
    pub fn from_image(width: usize, height: usize, data: Vec<f32>) -> Result<Psf> {
        let psf = Psf {
            width,
            height,
            data,
        };
        psf.check_shape()?;
        normalise(psf.width, psf.height, psf.data)
    }

    /// How an even-sized PSF is centred, for a warning (None for an odd-sized one, which is
    /// centred on its middle pixel). The convolution is scipy's `fftconvolve(mode='same')`:
    /// it takes pixel ((P-1)/2) (integer division) as the PSF's centre on each axis, so a PSF
    /// centred on its geometric middle moves the models by half a pixel on each even axis.
    pub fn centring_note(&self) -> Option<String> {
        let (w, h) = (self.width, self.height);
        if w % 2 == 1 && h % 2 == 1 {
            return None;
        }
        let shift = |p: usize| if p % 2 == 0 { "+0.5" } else { "0" };
        Some(format!(
            "even-sized PSF ({h}x{w} pixels): convolved as scipy's fftconvolve(mode='same') does, \
             centred on pixel (x, y) = ({}, {}) (0-based), not on its middle ({:.1}, {:.1}); \
             a PSF centred on its middle moves the models by ({}, {}) pixel",
            (w - 1) / 2,
            (h - 1) / 2,
            (w as f64 - 1.0) / 2.0,
            (h as f64 - 1.0) / 2.0,
            shift(w),
            shift(h)
        ))
    }
}

/// Reads a `.psf` (PSFEx) or any other FITS file holding a 2-D PSF image.
pub fn read_psf(path: impl AsRef<Path>) -> Result<Psf> {
    let path = path.as_ref();
    if !path.is_file() {
        return Err(Error::file(path, "no such PSF file"));
    }
    let is_psfex = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("psf"));
    let read = if is_psfex {
        read_psfex(path)
    } else {
        read_image(path)
    };
    // Whatever went wrong, a truncated file is the thing to say.
    let (width, height, data) = read.map_err(|e| match truncation(path) {
        Some(t) => Error::file(path, t),
        None => e,
    })?;
    normalise(width, height, data).map_err(|e| e.at_file(path))
}

/// FITS files are whole 2880-byte blocks, and every HDU's data lie within the file: a
/// description of how `path` breaks that, if it does.
fn truncation(path: &Path) -> Option<String> {
    const BLOCK: u64 = 2880;
    let len = std::fs::metadata(path).ok()?.len();
    if len == 0 {
        return Some("empty file (truncated?)".into());
    }
    if len % BLOCK != 0 {
        return Some(format!(
            "truncated or not a FITS file: {len} bytes is not a whole number of \
             {BLOCK}-byte FITS blocks"
        ));
    }
    let mut f = open_fits(path).ok()?;
    let n = f.num_hdus().ok()?;
    for i in 0..n {
        // Not `f.hdu(i)`: fitsio panics describing some HDUs (see check_describable).
        crate::io::fits::check_describable(&mut f, i, path).ok()?;
        let (mut head, mut start, mut end, mut status) = (0, 0, 0, 0);
        // SAFETY: a valid open file and pointers to live integers, as cfitsio asks.
        unsafe {
            fitsio::sys::ffghadll(f.as_raw(), &mut head, &mut start, &mut end, &mut status);
        }
        if status == 0 && end > 0 && end as u64 > len {
            return Some(format!(
                "truncated: HDU {} ends at byte {end} but the file has {len}",
                i + 1
            ));
        }
    }
    None
}

fn read_psfex(path: &Path) -> Result<(usize, usize, Vec<f32>)> {
    let mut f = open_fits(path)?;
    let n = count_hdus(&mut f, path)?;
    let mut tables = 0;
    for i in 1..n {
        let hdu = checked_hdu(&mut f, i, path)?;
        if !matches!(hdu.info, HduInfo::TableInfo { .. }) {
            continue;
        }
        tables += 1;
        let accepted = read_f64_key(&mut f, &hdu, "ACCEPTED").unwrap_or(0.0);
        if accepted == 0.0 {
            continue;
        }
        let w = read_f64_key(&mut f, &hdu, "PSFAXIS1").map_err(|e| e.at_file(path))?;
        let h = read_f64_key(&mut f, &hdu, "PSFAXIS2").map_err(|e| e.at_file(path))?;
        let (w, h) = (w as usize, h as usize);
        let cell: Vec<f32> = hdu
            .read_col_range(&mut f, "PSF_MASK", &(0..1))
            .map_err(|e| Error::file(path, format!("PSF_MASK: {e}")))?;
        if w == 0 || h == 0 || w.checked_mul(h).is_none_or(|n| cell.len() < n) {
            return Err(Error::file(
                path,
                format!(
                    "PSF_MASK holds {} values, fewer than PSFAXIS1 x PSFAXIS2 = {w} x {h}",
                    cell.len()
                ),
            ));
        }
        // Component 0 (the order-0 PSF) is the first w*h values of the cell.
        return Ok((w, h, cell[..w * h].to_vec()));
    }
    if tables == 0 {
        return Err(Error::file(
            path,
            "no table HDU: not a PSFEx .psf file (or truncated after its first header)",
        ));
    }
    Err(Error::file(
        path,
        "no PSF HDU with ACCEPTED > 0 (PSFEx accepted no stars)",
    ))
}

fn read_image(path: &Path) -> Result<(usize, usize, Vec<f32>)> {
    let mut f = open_fits(path)?;
    let n = count_hdus(&mut f, path)?;
    for i in 0..n {
        let hdu = checked_hdu(&mut f, i, path)?;
        if let HduInfo::ImageInfo { shape, .. } = &hdu.info {
            // A 2-D image, or a cube of one plane.
            let (h, w) = match shape.as_slice() {
                [h, w] | [1, h, w] => (*h, *w),
                _ => continue,
            };
            check_whole_read(path, shape, "PSF image")?;
            let data: Vec<f32> = hdu.read_image(&mut f).at(path)?;
            return Ok((w, h, data));
        }
    }
    Err(Error::file(path, "no 2-D image HDU holding a PSF"))
}

fn normalise(width: usize, height: usize, mut data: Vec<f32>) -> Result<Psf> {
    let bad = data.iter().filter(|v| !v.is_finite()).count();
    if let Some(first) = data.iter().position(|v| !v.is_finite()) {
        let w = width.max(1);
        return Err(Error::Invalid(format!(
            "PSF has {bad} non-finite pixels (NaN or Inf), the first at (x, y) = ({}, {}) \
             (0-based)",
            first % w,
            first / w
        )));
    }
    // A PSF whose pixels sum to zero or less is not a PSF (inverted, or a residual map), even
    // if clipping its negatives would leave something.
    let raw: f64 = data.iter().map(|&v| v as f64).sum();
    // Finite pixels (checked above): the sum is a number.
    if raw <= 0.0 {
        return Err(Error::Invalid(format!(
            "PSF pixels sum to {raw:e}, not a positive flux (an inverted or empty PSF?)"
        )));
    }
    for v in &mut data {
        if *v < 0.0 {
            *v = 0.0;
        }
    }
    let sum: f64 = data.iter().map(|&v| v as f64).sum();
    // The sum must survive float32 too: the pixels are divided by it.
    let sum32 = sum as f32;
    if !(sum32 > 0.0 && sum32.is_finite()) {
        return Err(Error::Invalid(format!(
            "PSF sums to {sum:e} once its negative pixels are set to 0, out of float32 range"
        )));
    }
    for v in &mut data {
        *v /= sum32;
    }
    Ok(Psf {
        width,
        height,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negatives_are_clipped_and_sum_is_one() {
        let p = normalise(2, 2, vec![-1.0, 1.0, 2.0, 1.0]).unwrap();
        assert_eq!(p.data, vec![0.0, 0.25, 0.5, 0.25]);
    }

    #[test]
    fn psfs_without_positive_flux_or_with_non_finite_pixels_are_refused() {
        let msg = |w, h, d: Vec<f32>| normalise(w, h, d).unwrap_err().to_string();
        assert_eq!(
            msg(1, 1, vec![-1.0]),
            "PSF pixels sum to -1e0, not a positive flux (an inverted or empty PSF?)"
        );
        assert!(msg(2, 1, vec![0.0, 0.0]).contains("sum to 0e0"));
        // Negative in sum, though clipping would leave a pixel.
        assert!(msg(3, 1, vec![-2.0, 1.0, -2.0]).contains("sum to -3e0"));
        assert_eq!(
            msg(2, 2, vec![1.0, 1.0, 1.0, f32::INFINITY]),
            "PSF has 1 non-finite pixels (NaN or Inf), the first at (x, y) = (1, 1) (0-based)"
        );
        assert!(msg(2, 1, vec![f32::NAN, f32::NAN]).starts_with("PSF has 2 non-finite"));
        assert!(msg(2, 1, vec![f32::MAX, f32::MAX]).contains("out of float32 range"));
    }

    #[test]
    fn even_sized_psfs_say_how_they_are_centred() {
        let psf = |width, height| Psf {
            width,
            height,
            data: vec![0.0; width * height],
        };
        assert_eq!(psf(25, 25).centring_note(), None);
        assert_eq!(
            psf(24, 24).centring_note().unwrap(),
            "even-sized PSF (24x24 pixels): convolved as scipy's fftconvolve(mode='same') \
             does, centred on pixel (x, y) = (11, 11) (0-based), not on its middle (11.5, 11.5); \
             a PSF centred on its middle moves the models by (+0.5, +0.5) pixel"
        );
        assert!(psf(25, 24)
            .centring_note()
            .unwrap()
            .ends_with("moves the models by (0, +0.5) pixel"));
    }

    fn truncated_to(n: usize) -> String {
        let bytes = std::fs::read(dre_testdata::golden().join("PSF/gold.psf")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.psf");
        std::fs::write(&p, &bytes[..n]).unwrap();
        let e = read_psf(&p).unwrap_err().to_string();
        e.strip_prefix(&format!("{}: ", p.display()))
            .unwrap()
            .to_string()
    }

    #[test]
    fn a_truncated_psf_is_said_to_be_truncated() {
        let len = std::fs::metadata(dre_testdata::golden().join("PSF/gold.psf"))
            .unwrap()
            .len() as usize;
        assert_eq!(len, 3 * 2880);
        assert_eq!(truncated_to(0), "empty file (truncated?)");
        for n in [100, 3000, 5761, 8000, len - 1] {
            assert_eq!(
                truncated_to(n),
                format!(
                    "truncated or not a FITS file: {n} bytes is not a whole number of \
                     2880-byte FITS blocks"
                )
            );
        }
        // Cut at a block boundary: after the table's header, or before it.
        assert_eq!(
            truncated_to(5760),
            "truncated: HDU 2 ends at byte 8640 but the file has 5760"
        );
        assert_eq!(
            truncated_to(2880),
            "no table HDU: not a PSFEx .psf file (or truncated after its first header)"
        );
    }
}
