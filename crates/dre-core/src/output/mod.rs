//! What a fit leaves behind besides the chi files: the Summary table and the mosaics.

pub mod mosaic;
pub mod summary;
