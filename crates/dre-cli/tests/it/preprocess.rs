//! Shared by the sex_dre / psfex_dre tests: the real tools must be installed, and small
//! images cut from the golden tile.

#![allow(dead_code)]

use std::path::Path;

/// Fails (never skips) when SExtractor or PSFEx is missing: CI installs them.
pub fn require_tools() {
    for (names, package) in [
        (&["source-extractor", "sex"][..], "source-extractor"),
        (&["psfex"][..], "psfex"),
    ] {
        assert!(
            dre::find_on_path(names).is_some(),
            "{} is not on PATH: install it (apt-get install {package})",
            names.join(" / ")
        );
    }
}

/// The golden tile, row-major 1024 x 1024.
pub fn golden_tile() -> Vec<f32> {
    let path = dre_testdata::golden().join("Tiles/gold.fits");
    dre::init_cfitsio();
    let mut f = fitsio::FitsFile::open(path).unwrap();
    f.primary_hdu().unwrap().read_image(&mut f).unwrap()
}

pub const TILE: usize = 1024;

/// Writes the `size` x `size` crop of `tile` whose lower-left pixel is (x0, y0), times `scale`.
pub fn write_crop(path: &Path, tile: &[f32], x0: usize, y0: usize, size: usize, scale: f32) {
    let data: Vec<f32> = (y0..y0 + size)
        .flat_map(|y| (x0..x0 + size).map(move |x| tile[y * TILE + x] * scale))
        .collect();
    write_image(path, size, size, &data);
}

pub fn write_image(path: &Path, w: usize, h: usize, data: &[f32]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let desc = fitsio::images::ImageDescription {
        data_type: fitsio::images::ImageType::Float,
        dimensions: &[h, w],
    };
    dre::init_cfitsio();
    let mut f = fitsio::FitsFile::create(path)
        .with_custom_primary(&desc)
        .open()
        .unwrap();
    let hdu = f.primary_hdu().unwrap();
    hdu.write_image(&mut f, data).unwrap();
}

/// (NAXIS1, NAXIS2) of a FITS image.
pub fn image_size(path: &Path) -> (usize, usize) {
    dre::init_cfitsio();
    let mut f = fitsio::FitsFile::open(path).unwrap();
    match f.primary_hdu().unwrap().info {
        fitsio::hdu::HduInfo::ImageInfo { shape, .. } => (shape[1], shape[0]),
        _ => panic!("{} is not an image", path.display()),
    }
}
