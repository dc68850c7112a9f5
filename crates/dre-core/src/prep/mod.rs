//! Before the fit: SExtractor and PSFEx runs, and make_cuts (windows, segment masks,
//! centroids, sub-pixel shifts).

mod aliases;
pub mod centroid;
pub mod external;
mod lsq;
pub mod make_cuts;
pub mod psfex;
pub mod segment;
pub mod sextractor;
pub mod shift;
pub mod window;
