//! The tile's PSF: from a PSFEx `.psf` file (the first HDU whose ACCEPTED is non-zero,
//! column PSF_MASK, component 0: order 0) or from a FITS image; negative values set to 0,
//! then normalised to sum 1 (SPEC 4).

use crate::error::{AtPath, Error, Result};
use crate::io::fits::read_f64_key;
use fitsio::hdu::HduInfo;
use fitsio::FitsFile;
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
    let (width, height, data) = if is_psfex {
        read_psfex(path)?
    } else {
        read_image(path)?
    };
    normalise(width, height, data).map_err(|e| e.at_file(path))
}

fn read_psfex(path: &Path) -> Result<(usize, usize, Vec<f32>)> {
    let mut f = FitsFile::open(path).at(path)?;
    let n = f.num_hdus().at(path)?;
    for i in 1..n {
        let hdu = f.hdu(i).at(path)?;
        if !matches!(hdu.info, HduInfo::TableInfo { .. }) {
            continue;
        }
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
    Err(Error::file(
        path,
        "no PSF HDU with ACCEPTED > 0 (PSFEx accepted no stars)",
    ))
}

fn read_image(path: &Path) -> Result<(usize, usize, Vec<f32>)> {
    let mut f = FitsFile::open(path).at(path)?;
    let n = f.num_hdus().at(path)?;
    for i in 0..n {
        let hdu = f.hdu(i).at(path)?;
        if let HduInfo::ImageInfo { shape, .. } = &hdu.info {
            // A 2-D image, or a cube of one plane.
            let (h, w) = match shape.as_slice() {
                [h, w] | [1, h, w] => (*h, *w),
                _ => continue,
            };
            let data: Vec<f32> = hdu.read_image(&mut f).at(path)?;
            return Ok((w, h, data));
        }
    }
    Err(Error::file(path, "no 2-D image HDU holding a PSF"))
}

fn normalise(width: usize, height: usize, mut data: Vec<f32>) -> Result<Psf> {
    if data.iter().any(|v| v.is_nan()) {
        return Err(Error::Invalid("PSF has NaN pixels".into()));
    }
    for v in &mut data {
        if *v < 0.0 {
            *v = 0.0;
        }
    }
    let sum: f64 = data.iter().map(|&v| v as f64).sum();
    if !(sum > 0.0 && sum.is_finite()) {
        return Err(Error::Invalid("PSF has no positive flux".into()));
    }
    let sum = sum as f32;
    for v in &mut data {
        *v /= sum;
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
        assert!(normalise(1, 1, vec![-1.0]).is_err());
        assert!(normalise(1, 1, vec![f32::NAN]).is_err());
    }
}
