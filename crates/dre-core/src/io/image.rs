//! One image HDU of a FITS file, read a window at a time (survey tiles can be large).

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
}
