//! DRE (Discrete Radius Ellipticals): fits Sérsic models to galaxies by brute force over a
//! grid of PSF-convolved model images.
//!
//! Data flows one way: [`cube`] (models) -> [`convolve`] (with the tile's [`psf`]) ->
//! [`fit`] (chi-square cube per object, from [`cutfile`]) -> [`params`] (one Summary row)
//! -> outputs ([`chifile`], [`summary`], [`mosaic`]). [`tile`] runs that for one tile.

pub mod atomic;
pub mod compression;
pub mod cube;
pub mod cutfile;
pub mod error;
pub mod fits_util;
pub mod render;
pub mod sersic;
pub mod table;

pub use error::{Error, Result};
