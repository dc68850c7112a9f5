//! What a fit leaves behind besides the chi files: the Summary table, the mosaics and
//! their pictures.

pub mod draw;
pub mod mosaic;
pub mod mosaic_png;
pub mod summary;
