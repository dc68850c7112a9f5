//! One image HDU of a FITS file, read whole or a window at a time (survey tiles can be
//! large).

use crate::error::{Error, Result};
use crate::io::fits::{checked_hdu, count_hdus, fits_message as message, open_fits};
use crate::prep::window::Window;
use fitsio::hdu::{FitsHdu, HduInfo};
use fitsio::images::ReadImage;
use fitsio::FitsFile;
use std::path::{Path, PathBuf};

pub struct ImageHdu {
    path: PathBuf,
    file: FitsFile,
    hdu: FitsHdu,
    /// NAXIS1, NAXIS2.
    pub width: usize,
    pub height: usize,
}

impl ImageHdu {
    /// Opens the image of extension `ext` of `path`, counted as SExtractor's EXT_NUMBER
    /// counts: the ext-th HDU holding a 2-D image, from 1 (0, a catalogue without
    /// EXT_NUMBER, is the first). A plain image is extension 1 in HDU 0; a multi-extension
    /// file with an empty primary has extension k in HDU k, and so have its check images.
    pub fn open(path: impl AsRef<Path>, ext: usize) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let mut file = open_fits(&path)?;
        let n = count_hdus(&mut file, &path)?;
        let mut seen = 0;
        for i in 0..n {
            // Windows are small, but a header larger than its file is corrupt: one clear
            // line for the tile rather than a read error per object.
            let hdu = checked_hdu(&mut file, i, &path)?;
            let (width, height) = match &hdu.info {
                HduInfo::ImageInfo { shape, .. } if shape.len() == 2 => (shape[1], shape[0]),
                _ => continue,
            };
            seen += 1;
            if seen == ext.max(1) {
                return Ok(ImageHdu {
                    path,
                    file,
                    hdu,
                    width,
                    height,
                });
            }
        }
        Err(Error::file(
            &path,
            match seen {
                0 => "no 2-D image in the file".to_string(),
                _ => format!("no extension {ext}: the file has {seen} 2-D image(s)"),
            },
        ))
    }

    /// The pixels of `w` (which must lie on the image), row-major, x fastest.
    pub fn window<T>(&mut self, w: &Window) -> Result<Vec<T>>
    where
        Vec<T>: ReadImage,
    {
        debug_assert!(w.fits_in(self.width, self.height));
        let x = w.x0 as usize..w.x0 as usize + w.size;
        let y = w.y0 as usize..w.y0 as usize + w.size;
        // fitsio takes the ranges in FITS axis order: NAXIS1 (x) first.
        self.hdu
            .read_region(&mut self.file, &[&x, &y])
            .map_err(|e| Error::file(&self.path, message(e)))
    }

    /// The whole image, row-major, x fastest: one read, where a window is one per row.
    pub fn read_all<T>(&mut self) -> Result<Vec<T>>
    where
        Vec<T>: ReadImage,
    {
        self.hdu
            .read_image(&mut self.file)
            .map_err(|e| Error::file(&self.path, message(e)))
    }
}

/// An image of a tile as make_cuts reads it: loaded whole when it is small enough (the cuts
/// are then copied out of memory, and cfitsio is done with before the cutting), else read a
/// window at a time.
pub enum Plane<T> {
    Loaded {
        data: Vec<T>,
        width: usize,
        height: usize,
    },
    Windows(ImageHdu),
}

impl<T: Copy> Plane<T>
where
    Vec<T>: ReadImage,
{
    /// The image of `hdu`, loaded whole if it has at most `max_pixels` pixels.
    pub fn new(mut hdu: ImageHdu, max_pixels: usize) -> Result<Self> {
        if hdu.width.saturating_mul(hdu.height) > max_pixels {
            return Ok(Plane::Windows(hdu));
        }
        let data = hdu.read_all()?;
        Ok(Plane::Loaded {
            data,
            width: hdu.width,
            height: hdu.height,
        })
    }

    /// NAXIS1, NAXIS2.
    pub fn size(&self) -> (usize, usize) {
        match self {
            Plane::Loaded { width, height, .. } => (*width, *height),
            Plane::Windows(h) => (h.width, h.height),
        }
    }

    /// The pixels of `w` (which must lie on the image), row-major, x fastest.
    pub fn window(&mut self, w: &Window) -> Result<Vec<T>> {
        match self {
            Plane::Loaded { data, width, .. } => {
                let (x0, y0) = (w.x0 as usize, w.y0 as usize);
                let mut out = Vec::with_capacity(w.size * w.size);
                for y in y0..y0 + w.size {
                    out.extend_from_slice(&data[y * *width + x0..y * *width + x0 + w.size]);
                }
                Ok(out)
            }
            Plane::Windows(h) => h.window(w),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::fits::write_image;

    /// A window out of memory is the window cfitsio reads, for every corner and the middle.
    #[test]
    fn loaded_windows_are_the_windows_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("img.fits");
        let (w, h) = (37usize, 23usize);
        let data: Vec<f32> = (0..w * h).map(|p| p as f32 * 0.5 - 3.0).collect();
        write_image(&path, w, h, &data, &[]).unwrap();
        let mut loaded = Plane::<f32>::new(ImageHdu::open(&path, 1).unwrap(), w * h).unwrap();
        let mut read = Plane::<f32>::new(ImageHdu::open(&path, 1).unwrap(), w * h - 1).unwrap();
        assert!(matches!(loaded, Plane::Loaded { .. }) && matches!(read, Plane::Windows(_)));
        assert_eq!(loaded.size(), (w, h));
        assert_eq!(read.size(), (w, h));
        for (x0, y0, size) in [(0, 0, 5), (32, 0, 5), (0, 18, 5), (32, 18, 5), (10, 7, 9)] {
            let win = Window { x0, y0, size };
            let got = loaded.window(&win).unwrap();
            assert_eq!(got, read.window(&win).unwrap(), "{win:?}");
            // By definition: pixel (x, y) of the window is (x0 + x, y0 + y) of the image.
            let (x, y) = (size - 1, 1);
            let want = data[(y0 as usize + y) * w + x0 as usize + x];
            assert_eq!(got[y * size + x], want);
        }
    }
}
