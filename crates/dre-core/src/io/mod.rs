//! Files: FITS images and tables, model cubes, PSFs, cut and chi files, HDF5 compression,
//! writing every output whole or not at all, and the lock on an output folder.

pub mod atomic;
pub mod chi;
pub(crate) mod chunks;
pub mod compression;
pub mod cube_file;
pub mod cuts;
pub mod fits;
pub mod image;
pub mod lock;
pub mod psf;
pub mod table;
