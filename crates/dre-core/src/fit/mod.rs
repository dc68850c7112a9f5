//! The fit: convolution of the cube with the PSF, the chi-square kernel, the parameters
//! of the minimum, and the backends (CPU, CUDA) that run them.

pub mod backend;
pub mod convolve;
pub mod gpu;
pub mod kernel;
mod newton;
pub mod params;
pub mod refine;
pub mod statistics;
pub mod subpixel;
