//! Where the convolution and the fit run: one trait, [`Fitter`], implemented by the CPU
//! backend ([`CpuFitter`]) and the CUDA backend (`GpuFitter`, feature `cuda`). The pipeline
//! and the Python package see only the trait.

use crate::error::{Error, Result};
use crate::fit::convolve::convolve_cube;
use crate::fit::kernel::{fit_batch, Prepared};
use crate::io::cube_file::read_cube;
use crate::io::psf::Psf;
use crate::model::cube::{Grid, ModelCube, Twins};
use std::borrow::Cow;
use std::path::Path;

/// A model cube made ready for fitting: convolved with a PSF, then fitted against batches of
/// objects. The raw cube stays loaded, so a new PSF convolves again without a re-read.
pub trait Fitter {
    /// Where it runs, in words ("CPU, 2 threads", the GPU's name).
    fn describe(&self) -> String;

    /// The grid of the cube.
    fn grid(&self) -> &Grid;

    /// Convolves the raw cube with `psf`, unless the current models already are: true when
    /// it convolved. A PSF the models cannot take (larger than a stamp) is
    /// [`Error::Invalid`].
    fn convolve(&mut self, psf: &Psf) -> Result<bool>;

    /// The PSF the models are convolved with, if any.
    fn psf(&self) -> Option<&Psf>;

    /// Chi cubes of a batch of objects against every convolved model: `result[j]` is object
    /// j's cube, flat in the grid's C order (n, q, theta, logr). Fails before any
    /// [`Fitter::convolve`].
    fn fit(&mut self, objects: &[Prepared]) -> Result<Vec<Vec<f32>>>;

    /// Convolved model `k` (flat index in the grid's C order), for mosaics.
    fn model(&self, k: usize) -> Result<Cow<'_, [f32]>>;

    /// Objects read and fitted together when the caller has no preference: enough to keep
    /// the backend busy (a GPU wants thousands, the CPU kernel's cache blocking far fewer).
    fn default_chunk(&self) -> usize;
}

/// Which backend to fit on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Device {
    /// FFT convolution and the SIMD kernel on the rayon pool (the default).
    #[default]
    Cpu,
    /// CUDA device `0`, `1`, ... (feature `cuda`; without it, opening fails with a message
    /// saying how to build it).
    Cuda(usize),
}

/// What to tell a user who asks for the GPU in a build without it.
pub const CUDA_NOT_BUILT: &str =
    "this dre was built without the `cuda` feature: cargo build --release --features cuda";

/// Reads the cube file and loads it on `device`.
pub fn open_fitter(device: Device, cube: &Path) -> Result<Box<dyn Fitter + Send>> {
    load_fitter(device, read_cube(cube)?).map_err(|failed| failed.0)
}

/// Loads a cube already in memory on `device`. When the device cannot take it, the error
/// comes back with the cube, so that a caller can fall back to the CPU without reading the
/// cube again.
pub fn load_fitter(
    device: Device,
    cube: ModelCube,
) -> std::result::Result<Box<dyn Fitter + Send>, Box<(Error, ModelCube)>> {
    match device {
        Device::Cpu => Ok(Box::new(CpuFitter::new(cube))),
        #[cfg(feature = "cuda")]
        Device::Cuda(ordinal) => match crate::fit::gpu::GpuFitter::open(ordinal, &cube) {
            Ok(g) => Ok(Box::new(g)),
            Err(e) => Err(Box::new((e, cube))),
        },
        #[cfg(not(feature = "cuda"))]
        Device::Cuda(_) => Err(Box::new((Error::Invalid(CUDA_NOT_BUILT.into()), cube))),
    }
}

/// The CPU backend: the raw cube and its convolved copy in host memory (twice the cube).
#[derive(Debug)]
pub struct CpuFitter {
    raw: ModelCube,
    convolved: Option<(Psf, ModelCube)>,
    twins: Twins,
}

impl CpuFitter {
    /// Takes a cube already in memory.
    ///
    /// # Panics
    ///
    /// If `cube.data` does not hold the `grid.n_models()` stamps of `grid.stamp_len()`
    /// pixels its grid describes (a cube from [`read_cube`] or [`crate::render_cube`]
    /// always does).
    pub fn new(cube: ModelCube) -> CpuFitter {
        let twins = Twins::of(&cube);
        CpuFitter {
            raw: cube,
            convolved: None,
            twins,
        }
    }

    /// Reads a cube file.
    pub fn open(path: impl AsRef<Path>) -> Result<CpuFitter> {
        Ok(CpuFitter::new(read_cube(path)?))
    }

    /// The unconvolved cube.
    pub fn raw(&self) -> &ModelCube {
        &self.raw
    }

    /// The convolved cube, once [`Fitter::convolve`] has run.
    pub fn convolved(&self) -> Option<&ModelCube> {
        self.convolved.as_ref().map(|(_, c)| c)
    }

    fn ready(&self) -> Result<&ModelCube> {
        self.convolved()
            .ok_or_else(|| Error::Invalid("the models are not convolved with a PSF yet".into()))
    }
}

impl Fitter for CpuFitter {
    fn describe(&self) -> String {
        format!("CPU, {} threads", rayon::current_num_threads())
    }

    fn grid(&self) -> &Grid {
        &self.raw.grid
    }

    fn convolve(&mut self, psf: &Psf) -> Result<bool> {
        if self.psf() == Some(psf) {
            return Ok(false);
        }
        // Reuse the old convolved buffer, so that at most two cubes are ever held.
        let mut cube = match self.convolved.take() {
            Some((_, c)) => c,
            // Zeroed pages are mapped as the threads of the convolution first write them.
            None => ModelCube {
                grid: self.raw.grid.clone(),
                data: vec![0.0; self.raw.data.len()],
            },
        };
        convolve_cube(&self.raw, &mut cube, psf, &self.twins)?;
        self.convolved = Some((psf.clone(), cube));
        Ok(true)
    }

    fn psf(&self) -> Option<&Psf> {
        self.convolved.as_ref().map(|(p, _)| p)
    }

    fn fit(&mut self, objects: &[Prepared]) -> Result<Vec<Vec<f32>>> {
        let cube = self.ready()?;
        let stamp = cube.grid.stamp_len();
        if let Some(o) = objects.iter().find(|o| o.stamp_len() != stamp) {
            return Err(Error::Invalid(format!(
                "object {} was prepared for stamps of {} pixels, the cube has {stamp}",
                o.name,
                o.stamp_len()
            )));
        }
        Ok(fit_batch(
            &cube.data,
            cube.grid.boxsize,
            objects,
            &self.twins,
        ))
    }

    fn model(&self, k: usize) -> Result<Cow<'_, [f32]>> {
        let cube = self.ready()?;
        if k >= cube.n_models() {
            return Err(Error::Invalid(format!(
                "model {k} of a cube of {} models",
                cube.n_models()
            )));
        }
        Ok(Cow::Borrowed(cube.model(k)))
    }

    fn default_chunk(&self) -> usize {
        64
    }
}
