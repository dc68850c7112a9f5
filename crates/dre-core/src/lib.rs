//! DRE (Discrete Radius Ellipticals): fits Sérsic models to galaxies by brute force over a
//! grid of PSF-convolved model images.
//!
//! Data flows one way: [`cube`] (models) -> [`convolve`] (with the tile's [`psf`]) ->
//! [`fit`] (chi-square cube per object, from [`cutfile`]) -> [`params`] (one Summary row)
//! -> outputs ([`chifile`], [`summary`], [`mosaic`]). [`tile`] runs that for one tile.
//!
//! Before that, [`sextractor`] and [`psfex`] run the external SExtractor and PSFEx (through
//! [`external`]) to make the catalogues, check images and PSFs.

pub mod atomic;
pub mod centroid;
pub mod chifile;
pub mod compression;
pub mod convolve;
pub mod cube;
pub mod cutfile;
pub mod cutout;
pub mod cutting;
pub mod error;
pub mod external;
pub mod fit;
pub mod fits_util;
pub mod gpu;
pub mod image;
mod lsq;
pub mod mosaic;
pub mod params;
pub mod psf;
pub mod psfex;
pub mod render;
pub mod run;
pub mod score;
pub mod segment;
pub mod sersic;
pub mod sextractor;
pub mod shift;
pub mod simulate;
pub mod summary;
pub mod table;
pub mod tile;

pub use error::{Error, Result};
