//! Files: FITS images and tables, model cubes, PSFs, cut and chi files, HDF5 compression,
//! and writing every output whole or not at all.

pub mod atomic;
pub mod chi;
pub mod compression;
pub mod cube_file;
pub mod cuts;
pub mod fits;
pub mod image;
pub mod psf;
pub mod table;
