//! The working-directory layout of SPEC section 1: every folder name and file suffix the
//! tools use, written once. Each tool defaults to these folders, so that in a working
//! directory laid out as below each runs with no arguments:
//!
//! ```text
//! Tiles/NAME.fits                         the images (input of sex_dre and make_cuts)
//! Sextracted/NAME/NAME_cat.fits           SExtractor catalogue (FITS_LDAC)
//! Sextracted/NAME/NAME_{nb,rms,seg}.fits  check images: -BACKGROUND, BACKGROUND_RMS, SEGMENTATION
//! PSF/NAME.psf                            PSFEx PSF
//! Cuts/NAME_cuts.h5                       cut file (make_cuts)
//! Chi/NAME_chi.h5                         chi cubes (dre)
//! Summary/NAME_dre.fits                   one row per fitted object (dre)
//! Mosaics/NAME/NAME_EE_NNNN_mosaic.fits   data | segment | model | residual (dre --mosaics)
//! Mosaics/NAME/NAME_EE_NNNN_mosaic.png    its picture (dre --png)
//! ```
//!
//! The `Sextracted` outputs may also lie flat (`Sextracted/NAME_cat.fits`, with
//! `sex_dre` without `--subdir`); readers look in `NAME/` first.

use std::path::{Path, PathBuf};

/// The images.
pub const TILES_DIR: &str = "Tiles";
/// SExtractor's catalogues and check images.
pub const SEXTRACTED_DIR: &str = "Sextracted";
/// PSFEx's PSFs.
pub const PSF_DIR: &str = "PSF";
/// The cut files.
pub const CUTS_DIR: &str = "Cuts";
/// The chi files.
pub const CHI_DIR: &str = "Chi";
/// The Summary tables.
pub const SUMMARY_DIR: &str = "Summary";
/// The mosaics.
pub const MOSAICS_DIR: &str = "Mosaics";

/// Suffix of a catalogue: `NAME_cat.fits`.
pub const CATALOG_SUFFIX: &str = "_cat.fits";
/// Suffix of the background check image: `NAME_nb.fits`.
pub const BACKGROUND_SUFFIX: &str = "_nb.fits";
/// Suffix of the background RMS check image: `NAME_rms.fits`.
pub const RMS_SUFFIX: &str = "_rms.fits";
/// Suffix of the segmentation check image: `NAME_seg.fits`.
pub const SEGMENTATION_SUFFIX: &str = "_seg.fits";
/// Suffix of a PSF: `NAME.psf`.
pub const PSF_SUFFIX: &str = ".psf";
/// Suffix of a cut file: `NAME_cuts.h5`.
pub const CUTS_SUFFIX: &str = "_cuts.h5";
/// Suffix of a chi file: `NAME_chi.h5`.
pub const CHI_SUFFIX: &str = "_chi.h5";
/// Suffix of a Summary: `NAME_dre.fits`.
pub const SUMMARY_SUFFIX: &str = "_dre.fits";
/// Suffix of a mosaic: `NAME_EE_NNNN_mosaic.fits`.
pub const MOSAIC_SUFFIX: &str = "_mosaic.fits";
/// Suffix of a mosaic's picture: `NAME_EE_NNNN_mosaic.png`.
pub const MOSAIC_PNG_SUFFIX: &str = "_mosaic.png";

/// The check images and the catalogue SExtractor leaves for one tile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SextractedFiles {
    /// `NAME_cat.fits`
    pub catalog: PathBuf,
    /// `NAME_nb.fits`
    pub background: PathBuf,
    /// `NAME_rms.fits`
    pub rms: PathBuf,
    /// `NAME_seg.fits`
    pub segmentation: PathBuf,
}

/// Where `sex_dre` writes tile `name`'s files: `dir/NAME/` with `subdir`, else `dir/`.
pub fn sextracted_files(dir: &Path, name: &str, subdir: bool) -> SextractedFiles {
    let base = if subdir {
        dir.join(name)
    } else {
        dir.to_path_buf()
    };
    let f = |suffix: &str| base.join(format!("{name}{suffix}"));
    SextractedFiles {
        catalog: f(CATALOG_SUFFIX),
        background: f(BACKGROUND_SUFFIX),
        rms: f(RMS_SUFFIX),
        segmentation: f(SEGMENTATION_SUFFIX),
    }
}

/// Where the later stages find tile `name`'s SExtractor files: `dir/NAME/` when that folder
/// exists, else flat in `dir/`.
pub fn find_sextracted(dir: &Path, name: &str) -> SextractedFiles {
    sextracted_files(dir, name, dir.join(name).is_dir())
}

/// `dir/NAME.psf`
pub fn psf_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}{PSF_SUFFIX}"))
}

/// `dir/NAME_cuts.h5`
pub fn cuts_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}{CUTS_SUFFIX}"))
}

/// `dir/NAME_chi.h5`
pub fn chi_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}{CHI_SUFFIX}"))
}

/// `dir/NAME_dre.fits`
pub fn summary_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}{SUMMARY_SUFFIX}"))
}

/// `dir/NAME/`, the folder of tile `name`'s mosaics.
pub fn mosaic_dir(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

/// `NAME_EE_NNNN_mosaic.fits`, in [`mosaic_dir`].
pub fn mosaic_file(tile_dir: &Path, name: &str, object: &str) -> PathBuf {
    tile_dir.join(format!("{name}_{object}{MOSAIC_SUFFIX}"))
}

/// `NAME_EE_NNNN_mosaic.png`, the picture beside [`mosaic_file`].
pub fn mosaic_png_file(tile_dir: &Path, name: &str, object: &str) -> PathBuf {
    tile_dir.join(format!("{name}_{object}{MOSAIC_PNG_SUFFIX}"))
}

/// The tile name of a file with this suffix (`a_cuts.h5` -> `a`); None for another file or
/// an empty name.
pub fn tile_name<'a>(file_name: &'a str, suffix: &str) -> Option<&'a str> {
    file_name.strip_suffix(suffix).filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_named_as_spec_section_1() {
        let d = Path::new("W");
        assert_eq!(psf_file(&d.join(PSF_DIR), "t"), Path::new("W/PSF/t.psf"));
        assert_eq!(
            cuts_file(&d.join(CUTS_DIR), "t"),
            Path::new("W/Cuts/t_cuts.h5")
        );
        assert_eq!(chi_file(&d.join(CHI_DIR), "t"), Path::new("W/Chi/t_chi.h5"));
        assert_eq!(
            summary_file(&d.join(SUMMARY_DIR), "t"),
            Path::new("W/Summary/t_dre.fits")
        );
        let m = mosaic_dir(&d.join(MOSAICS_DIR), "t");
        assert_eq!(
            mosaic_file(&m, "t", "00_0001"),
            Path::new("W/Mosaics/t/t_00_0001_mosaic.fits")
        );
        let s = sextracted_files(&d.join(SEXTRACTED_DIR), "t", true);
        assert_eq!(s.catalog, Path::new("W/Sextracted/t/t_cat.fits"));
        assert_eq!(s.background, Path::new("W/Sextracted/t/t_nb.fits"));
        assert_eq!(s.rms, Path::new("W/Sextracted/t/t_rms.fits"));
        assert_eq!(s.segmentation, Path::new("W/Sextracted/t/t_seg.fits"));
        let flat = sextracted_files(&d.join(SEXTRACTED_DIR), "t", false);
        assert_eq!(flat.catalog, Path::new("W/Sextracted/t_cat.fits"));
    }

    #[test]
    fn tile_names_come_back_from_file_names() {
        assert_eq!(tile_name("a_b_cuts.h5", CUTS_SUFFIX), Some("a_b"));
        assert_eq!(tile_name("_cuts.h5", CUTS_SUFFIX), None);
        assert_eq!(tile_name("a_chi.h5", CUTS_SUFFIX), None);
        let name = "x";
        let file = cuts_file(Path::new("."), name);
        let back = tile_name(file.file_name().unwrap().to_str().unwrap(), CUTS_SUFFIX);
        assert_eq!(back, Some(name));
    }

    #[test]
    fn sextracted_files_prefer_the_tile_folder() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(
            find_sextracted(d.path(), "t").catalog,
            d.path().join("t_cat.fits")
        );
        std::fs::create_dir(d.path().join("t")).unwrap();
        assert_eq!(
            find_sextracted(d.path(), "t").catalog,
            d.path().join("t/t_cat.fits")
        );
    }
}
