//! The GPU backend (cargo feature `cuda`): the cube convolved and fitted on an NVIDIA GPU
//! through the CUDA driver API, with results identical to the CPU backend's within float32
//! rounding.
//!
//! * `kernels`: the CUDA C source, compiled at run time by NVRTC (no CUDA toolkit is needed
//!   to build; libcuda and libnvrtc are loaded when a [`GpuFitter`] is opened).
//! * `pack`: a batch of prepared objects flattened for the fit kernel.
//! * `emulate` (tests): the kernels' arithmetic in Rust, operation for operation, to test
//!   the algorithm without a GPU and to check a GPU bit for bit.
//! * `GpuFitter` (feature `cuda`): the device, the cube resident on it, the kernels.
//!
//! Everything but `GpuFitter` builds in the tests without the feature, so it is tested in
//! every build.

#[cfg(test)]
mod emulate;
#[cfg(any(feature = "cuda", test))]
mod kernels;
#[cfg(any(feature = "cuda", test))]
mod pack;
#[cfg(test)]
mod tests;

#[cfg(feature = "cuda")]
mod device;
#[cfg(feature = "cuda")]
pub use device::GpuFitter;
