//! The GPU backend (cargo feature `cuda`): the cube convolved and fitted on an NVIDIA GPU
//! through the CUDA driver API, with results identical to the CPU backend's within float32
//! rounding.
//!
//! * [`kernels`]: the CUDA C source, compiled at run time by NVRTC (no CUDA toolkit is
//!   needed to build; libcuda and libnvrtc are loaded when a [`GpuFitter`] is made).
//! * [`pack`]: a batch of [`crate::fit::Prepared`] objects flattened for the fit kernel.
//! * [`emulate`]: the kernels' arithmetic in Rust, operation for operation, to test the
//!   algorithm without a GPU and to check a GPU bit for bit.
//! * `GpuFitter` (feature `cuda`): the device, the cube resident on it, the kernels.
//!
//! Everything but `GpuFitter` builds without the feature, so it is tested in every build.

pub mod emulate;
pub mod kernels;
pub mod pack;

#[cfg(feature = "cuda")]
mod device;
#[cfg(feature = "cuda")]
pub use device::{GpuFitter, DEFAULT_BATCH, NO_DRIVER, NO_NVRTC};

/// Whether this build has the GPU backend.
pub const ENABLED: bool = cfg!(feature = "cuda");

/// What to tell a user who asks for the GPU in a build without it.
pub const NOT_BUILT: &str =
    "this dre was built without the `cuda` feature: cargo build --release --features cuda";
