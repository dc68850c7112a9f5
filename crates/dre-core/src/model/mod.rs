//! The models: the Sérsic profile, the grid and the cube, rendering, the default cube.

pub mod cube;
pub mod default_cube;
pub mod render;
pub mod sersic;
mod stamp;
