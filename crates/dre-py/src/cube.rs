//! `ModelsCube`: a model cube loaded on a backend (the library's [`Fitter`]), with the
//! original's methods. The GIL is released whenever the library works, and the backend's
//! lock is only ever taken with the GIL released, so that a progress callback (which takes
//! the GIL) can never wait on a thread that holds the GIL and waits on the lock.

use crate::arrays::{checked, shape_str, to_py, values};
use crate::progress::{lock, Guarded, PyObserver};
use crate::DreWarning;
use dre::{
    batch_parameters, fit_tile, layout, parameters, read_catalog, read_chi, run, summary_table,
    write_cube, write_models, write_table, Compression, CpuFitter, CutReader, Device, Error,
    FitRow, Fitter, Grid, ModelCube, Prepared, Psf, PsfSource, RunConfig, TilePaths,
};
use numpy::ndarray::{Array, ArrayViewD, IxDyn};
use numpy::{IntoPyArray, PyArrayDyn, PyReadonlyArrayDyn, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyIndexError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

/// The fitter behind a cube: the CPU backend by its type (its raw cube is viewed without a
/// copy), any other through the trait.
enum Backend {
    Cpu(Box<CpuFitter>),
    Device(Box<dyn Fitter + Send>),
}

impl Backend {
    fn fitter(&mut self) -> &mut (dyn Fitter + Send) {
        match self {
            Backend::Cpu(c) => c.as_mut(),
            Backend::Device(d) => d.as_mut(),
        }
    }
}

/// One object's stamps as numpy holds them, checked (see `ModelsCube::stamps`).
struct Stamps<'py> {
    obj: PyReadonlyArrayDyn<'py, f32>,
    seg: PyReadonlyArrayDyn<'py, bool>,
    rms: Option<PyReadonlyArrayDyn<'py, f32>>,
    /// The rms where none was given.
    ones: Vec<f32>,
}

impl Stamps<'_> {
    fn obj(&self) -> &[f32] {
        self.obj.as_slice().unwrap_or_default()
    }

    fn seg(&self) -> &[bool] {
        self.seg.as_slice().unwrap_or_default()
    }

    fn rms(&self) -> &[f32] {
        match &self.rms {
            Some(r) => r.as_slice().unwrap_or_default(),
            None => &self.ones,
        }
    }
}

/// A model cube (the original's `ModelsCube`) loaded on a backend.
///
/// path: a cube file (the layout of the original's `modelbulge.fits`); None: the default cube
///     (the original's grid), rendered on first use into the cache folder as `dre` does.
/// device: 'cpu' (default) or 'cuda' / 'cuda:N' (a `dre_rs` built with the `cuda` feature
///     and an NVIDIA GPU; otherwise RuntimeError).
/// compression: of the chi files fit_file/fit_dir write: 'none', 'low', 'medium' (default,
///     as `dre`) or 'high'.
/// threads: worker threads of the convolution and the fit (default: every core, as `dre`).
#[pyclass(subclass, frozen, module = "dre_rs", name = "ModelsCube")]
pub struct ModelsCube {
    backend: Mutex<Backend>,
    grid: Grid,
    path: PathBuf,
    device: Device,
    compression: Compression,
    threads: Option<usize>,
    pool: Option<rayon::ThreadPool>,
    /// The unconvolved models `models` shows. CPU: the backend's own raw cube, which it never
    /// changes nor moves for as long as it lives (it only reads it to convolve); a device
    /// backend: this host copy.
    host: Option<Vec<f32>>,
    raw_addr: usize,
    raw_len: usize,
    /// `convolved_models`, copied out once per convolution.
    convolved: Mutex<Option<Py<PyAny>>>,
}

fn parse_device(s: &str) -> PyResult<Device> {
    let bad = || {
        PyValueError::new_err(format!(
            "device: expected 'cpu' or 'cuda' (or 'cuda:N'), got {s:?}"
        ))
    };
    match s {
        "cpu" => Ok(Device::Cpu),
        "cuda" | "gpu" => Ok(Device::Cuda(0)),
        _ => {
            let n = s.strip_prefix("cuda:").ok_or_else(bad)?;
            n.parse().map(Device::Cuda).map_err(|_| bad())
        }
    }
}

fn device_name(d: Device) -> String {
    match d {
        Device::Cpu => "cpu".into(),
        Device::Cuda(n) => format!("cuda:{n}"),
    }
}

/// Without the `cuda` feature the build itself is the reason: say how to get one.
#[cfg(not(feature = "cuda"))]
const NO_CUDA: &str = "dre_rs was built without the `cuda` feature, so it has no GPU backend: \
     build it on a machine with Rust as `maturin build --release --features cuda` \
     (or `MATURIN_PEP517_ARGS=\"--features cuda\" pip install ./crates/dre-py`)";

fn compression_name(c: Compression) -> &'static str {
    match c {
        Compression::None => "none",
        Compression::Low => "low",
        Compression::Medium => "medium",
        Compression::High => "high",
    }
}

fn parse_compression(s: &str, arg: &str) -> PyResult<Compression> {
    s.parse()
        .map_err(|e: Error| PyValueError::new_err(format!("{arg}: {e}")))
}

/// Emits each line as a `DreWarning` (what `dre` prints on stderr and goes on).
fn warn_lines(py: Python<'_>, lines: &[String]) -> PyResult<()> {
    let cat = py.get_type::<DreWarning>();
    for l in lines {
        let msg =
            CString::new(l.replace('\0', " ")).map_err(|e| PyValueError::new_err(e.to_string()))?;
        PyErr::warn(py, &cat, &msg, 1)?;
    }
    Ok(())
}

/// What a fit_file / fit_dir call did (its failures were also emitted as `DreWarning`s).
#[pyclass(frozen, get_all, module = "dre_rs")]
pub struct FitReport {
    /// Cut files found (1 for fit_file).
    tiles: usize,
    /// Tiles that failed as a whole (no PSF, unreadable cut file, unwritable output).
    tiles_failed: usize,
    /// Objects in the tiles that did not fail.
    objects: usize,
    /// Objects fitted and written.
    fitted: usize,
    /// One line per failed tile or object, as `dre` prints them after `dre: `.
    failures: Vec<String>,
    /// Warnings (no catalogue to join, an even-sized PSF), as `dre` prints them.
    warnings: Vec<String>,
    /// Wall time of the call.
    seconds: f64,
    /// The tiles' own times (read, fit, write; not the convolution), the time `dre`'s
    /// objects/s are of.
    fit_seconds: f64,
}

#[pymethods]
impl FitReport {
    /// True when every tile and object went through (`dre`'s exit status 0).
    #[getter]
    fn ok(&self) -> bool {
        self.failures.is_empty() && self.tiles_failed == 0
    }

    fn __repr__(&self) -> String {
        format!(
            "FitReport(tiles={}, tiles_failed={}, objects={}, fitted={}, failures={}, \
             warnings={}, seconds={:.3})",
            self.tiles,
            self.tiles_failed,
            self.objects,
            self.fitted,
            self.failures.len(),
            self.warnings.len(),
            self.seconds
        )
    }
}

impl ModelsCube {
    fn shape6(&self) -> Vec<usize> {
        let b = self.grid.boxsize;
        let mut s = self.grid.shape().to_vec();
        s.extend([b, b]);
        s
    }

    /// Runs `f` on the backend with the GIL released, on this cube's threads.
    fn with_fitter<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut Guarded<'_>) -> dre::Result<T> + Send,
    ) -> dre::Result<T> {
        py.detach(|| {
            let mut be = lock(&self.backend);
            let mut g = self.guarded(&mut be, None, true);
            f(&mut g)
        })
    }

    fn guarded<'a>(
        &'a self,
        be: &'a mut Backend,
        stop: Option<&'a std::sync::atomic::AtomicBool>,
        convolve: bool,
    ) -> Guarded<'a> {
        // A device backend keeps its own threads (a CUDA context is bound to its thread).
        let pool = match be {
            Backend::Cpu(_) => self.pool.as_ref(),
            Backend::Device(_) => None,
        };
        Guarded {
            inner: be.fitter(),
            pool,
            stop,
            convolve,
        }
    }

    fn forget_convolved(&self) {
        // Only ever held briefly, never across a call that takes the GIL.
        *lock(&self.convolved) = None;
    }

    /// A PSF argument: a path (`.psf` or FITS image) or a 2-D float32 array; and the path,
    /// to name in errors.
    fn psf_arg(
        &self,
        py: Python<'_>,
        psf: &Bound<'_, PyAny>,
        name: &str,
    ) -> PyResult<(Psf, Option<PathBuf>)> {
        if let Ok(a) = psf.cast::<PyUntypedArray>() {
            let shape = a.shape().to_vec();
            if shape.len() != 2 {
                return Err(PyValueError::new_err(format!(
                    "{name}: expected a 2-D array (height, width), got shape {}",
                    shape_str(&shape)
                )));
            }
            let arr = checked::<f32>(psf, name, "float32", &shape, "")?;
            let data = values(&arr, name)?.to_vec();
            let p = Psf::from_image(shape[1], shape[0], data)
                .map_err(|e| PyValueError::new_err(format!("{name}: {e}")))?;
            return Ok((p, None));
        }
        let Ok(path) = psf.extract::<PathBuf>() else {
            return Err(PyValueError::new_err(format!(
                "{name}: expected a PSF file (.psf or FITS image) or a 2-D float32 array, got {}",
                psf.get_type().name()?
            )));
        };
        let p = py.detach(|| dre::read_psf(&path)).map_err(to_py)?;
        Ok((p, Some(path)))
    }

    fn convolve_psf(&self, py: Python<'_>, psf: &Psf, path: Option<&Path>) -> PyResult<bool> {
        let changed = self
            .with_fitter(py, |f| f.convolve(psf))
            .map_err(|e| to_py(path.map_or(e.clone(), |p| e.at_file(p))))?;
        if changed {
            self.forget_convolved();
        }
        Ok(changed)
    }

    /// The (obj, seg, rms) arrays of one object, checked against the cube's stamps and
    /// borrowed where numpy holds them; without rms, every pixel's rms is 1.
    fn stamps<'py>(
        &self,
        obj: &Bound<'py, PyAny>,
        seg: &Bound<'py, PyAny>,
        rms: Option<&Bound<'py, PyAny>>,
        names: [&str; 3],
    ) -> PyResult<Stamps<'py>> {
        let b = self.grid.boxsize;
        let shape = [b, b];
        let like = "the cube's stamps";
        let st = Stamps {
            obj: checked::<f32>(obj, names[0], "float32", &shape, like)?,
            seg: checked::<bool>(seg, names[1], "bool", &shape, like)?,
            rms: match rms {
                Some(r) => Some(checked::<f32>(r, names[2], "float32", &shape, like)?),
                None => None,
            },
            ones: if rms.is_none() {
                vec![1.0; b * b]
            } else {
                vec![]
            },
        };
        // Contiguity is checked here, once, so that the slices of `Stamps` are whole.
        values(&st.obj, names[0])?;
        values(&st.seg, names[1])?;
        if let Some(r) = &st.rms {
            values(r, names[2])?;
        }
        Ok(st)
    }

    /// A flat model number from a (n, q, theta, logr) index; negative counts from the end.
    fn flat_index(&self, idx: &[i64]) -> PyResult<usize> {
        let shape = self.grid.shape();
        // Indices of a 3-axis cube (no Sérsic-index axis, the original's first cubes).
        let full: Vec<i64> = match idx.len() {
            4 => idx.to_vec(),
            3 if shape[0] == 1 => [&[0], idx].concat(),
            _ => {
                return Err(PyValueError::new_err(format!(
                    "model_index: expected 4 indices (n, q, theta, logr), got {}",
                    idx.len()
                )))
            }
        };
        let mut k = 0usize;
        for (axis, (&i, &n)) in full.iter().zip(&shape).enumerate() {
            let j = if i < 0 { i + n as i64 } else { i };
            if j < 0 || j >= n as i64 {
                return Err(PyIndexError::new_err(format!(
                    "model_index: index {i} is out of range for axis {axis} of size {n}"
                )));
            }
            k = k * n + j as usize;
        }
        Ok(k)
    }

    fn to_array<'py>(
        py: Python<'py>,
        shape: &[usize],
        data: Vec<f32>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let a = Array::from_shape_vec(IxDyn(shape), data)
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(a.into_pyarray(py).into_any())
    }

    fn report(
        &self,
        py: Python<'_>,
        obs: &PyObserver,
        counts: [usize; 4],
        start: Instant,
    ) -> PyResult<FitReport> {
        let failures = lock(&obs.failures).clone();
        let warnings = lock(&obs.warnings).clone();
        warn_lines(py, &failures)?;
        warn_lines(py, &warnings)?;
        Ok(FitReport {
            tiles: counts[0],
            tiles_failed: counts[1],
            objects: counts[2],
            fitted: counts[3],
            failures,
            warnings,
            seconds: start.elapsed().as_secs_f64(),
            fit_seconds: *lock(&obs.fit_seconds),
        })
    }
}

#[pymethods]
impl ModelsCube {
    #[new]
    #[pyo3(signature = (path=None, device="cpu", compression="medium", threads=None))]
    fn new(
        py: Python<'_>,
        path: Option<PathBuf>,
        device: &str,
        compression: &str,
        threads: Option<usize>,
    ) -> PyResult<Self> {
        let device = parse_device(device)?;
        let compression = parse_compression(compression, "compression")?;
        #[cfg(not(feature = "cuda"))]
        if device != Device::Cpu {
            return Err(PyRuntimeError::new_err(format!(
                "device '{}': {NO_CUDA}",
                device_name(device)
            )));
        }
        let pool = match threads {
            Some(0) => return Err(PyValueError::new_err("threads: must be at least 1")),
            Some(n) => Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .build()
                    .map_err(|e| PyRuntimeError::new_err(format!("threads: {e}")))?,
            ),
            None => None,
        };
        let (path, cube) = py
            .detach(|| -> dre::Result<(PathBuf, ModelCube)> {
                match path {
                    Some(p) => dre::read_cube(&p).map(|cube| (p, cube)),
                    None => dre::load_default_cube(&dre::default_cache_dir()),
                }
            })
            .map_err(to_py)?;
        let grid = cube.grid.clone();
        let (backend, host) = match device {
            Device::Cpu => (Backend::Cpu(Box::new(CpuFitter::new(cube))), None),
            Device::Cuda(_) => {
                let host = cube.data.clone();
                let f = py
                    .detach(|| dre::load_fitter(device, cube))
                    .map_err(|failed| {
                        PyRuntimeError::new_err(format!(
                            "device '{}': {}",
                            device_name(device),
                            failed.0
                        ))
                    })?;
                (Backend::Device(f), Some(host))
            }
        };
        let (raw_addr, raw_len) = match (&backend, &host) {
            (_, Some(h)) => (h.as_ptr() as usize, h.len()),
            (Backend::Cpu(c), None) => (c.raw().data.as_ptr() as usize, c.raw().data.len()),
            (Backend::Device(_), None) => (0, 0),
        };
        Ok(ModelsCube {
            backend: Mutex::new(backend),
            grid,
            path,
            device,
            compression,
            threads,
            pool,
            host,
            raw_addr,
            raw_len,
            convolved: Mutex::new(None),
        })
    }

    /// The cube file.
    #[getter]
    fn path(&self) -> String {
        self.path.display().to_string()
    }

    /// 'cpu' or 'cuda:N'.
    #[getter]
    fn device(&self) -> String {
        device_name(self.device)
    }

    /// Compression of the chi files written by fit_file / fit_dir.
    #[getter]
    fn compression(&self) -> &'static str {
        compression_name(self.compression)
    }

    /// Worker threads (None: every core).
    #[getter]
    fn threads(&self) -> Option<usize> {
        self.threads
    }

    /// Where the fit runs, in words.
    fn describe(&self, py: Python<'_>) -> String {
        let d = py.detach(|| lock(&self.backend).fitter().describe());
        match (&self.pool, self.device) {
            (Some(p), Device::Cpu) => format!("CPU, {} threads", p.current_num_threads()),
            _ => d,
        }
    }

    /// The models' array shape (NINDEX, NAXRAT, NPOSANG, NLOGH, BOX, BOX).
    #[getter]
    fn shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.shape6())
    }

    /// The chi cubes' shape (NINDEX, NAXRAT, NPOSANG, NLOGH).
    #[getter]
    fn grid_shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.grid.shape())
    }

    /// Number of models.
    #[getter]
    fn n_models(&self) -> usize {
        self.grid.n_models()
    }

    /// Stamp side in pixels (BOXSIZE).
    #[getter]
    fn boxsize(&self) -> usize {
        self.grid.boxsize
    }

    /// Sérsic index values (float64).
    #[getter]
    fn src_index<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        self.grid.index.values().into_pyarray(py).into_any()
    }

    /// Axis ratio q = b/a values (float64).
    #[getter]
    fn ax_ratio<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        self.grid.axrat.values().into_pyarray(py).into_any()
    }

    /// Position angle values in degrees, THETA_IMAGE (float64).
    #[getter]
    fn angle<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        self.grid.posang.values().into_pyarray(py).into_any()
    }

    /// log10 R_e values, pixels (float64).
    #[getter]
    fn log_r<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        self.grid.logh.values().into_pyarray(py).into_any()
    }

    /// Names of the models' axes.
    #[getter]
    fn axes_names(&self) -> (&str, &str, &str, &str, &str, &str) {
        (
            "src_index",
            "ax_ratio",
            "angle",
            "log_r",
            "y_image",
            "x_image",
        )
    }

    /// The values of the models' axes: (src_index, ax_ratio, angle, log_r, y_image, x_image).
    #[getter]
    fn axes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let pix: Vec<i64> = (0..self.grid.boxsize as i64).collect();
        PyTuple::new(
            py,
            [
                self.src_index(py),
                self.ax_ratio(py),
                self.angle(py),
                self.log_r(py),
                pix.clone().into_pyarray(py).into_any(),
                pix.into_pyarray(py).into_any(),
            ],
        )
    }

    /// The unconvolved models, float32 (NINDEX, NAXRAT, NPOSANG, NLOGH, BOX, BOX), read-only,
    /// without a copy: a view of the cube the backend holds.
    #[getter]
    fn models<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let this = slf.get();
        if this.raw_len == 0 {
            return Err(PyRuntimeError::new_err(
                "the models are not held on the host",
            ));
        }
        // SAFETY: raw_addr/raw_len are the host cube of this object (see the field), alive
        // and unchanged for as long as the object is, which the array keeps alive as its
        // base; the array is made read-only below.
        let data = unsafe { std::slice::from_raw_parts(this.raw_addr as *const f32, this.raw_len) };
        let view = ArrayViewD::from_shape(IxDyn(&this.shape6()), data)
            .map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
        let arr = unsafe { PyArrayDyn::borrow_from_array(&view, slf.clone().into_any()) };
        let kw = PyDict::new(slf.py());
        kw.set_item("write", false)?;
        arr.call_method("setflags", (), Some(&kw))?;
        Ok(arr.into_any())
    }

    /// One model stamp (or any slice) of the unconvolved models, by numpy index.
    fn __getitem__<'py>(
        slf: &Bound<'py, Self>,
        index: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        Self::models(slf)?.get_item(index)
    }

    /// The models convolved with the current PSF, float32, same shape as `models`, read-only
    /// (a copy, made once per convolution); None before any convolution.
    #[getter]
    fn convolved_models<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        if let Some(a) = lock(&self.convolved).as_ref() {
            return Ok(Some(a.bind(py).clone()));
        }
        let n = self.grid.n_models();
        let data = py.detach(|| -> dre::Result<Option<Vec<f32>>> {
            let mut be = lock(&self.backend);
            match &mut *be {
                Backend::Cpu(c) => Ok(c.convolved().map(|m| m.data.clone())),
                Backend::Device(d) => {
                    if d.psf().is_none() {
                        return Ok(None);
                    }
                    let mut out = Vec::with_capacity(n * self.grid.stamp_len());
                    for k in 0..n {
                        out.extend_from_slice(&d.model(k)?);
                    }
                    Ok(Some(out))
                }
            }
        });
        let Some(data) = data.map_err(to_py)? else {
            return Ok(None);
        };
        let arr = Self::to_array(py, &self.shape6(), data)?;
        let kw = PyDict::new(py);
        kw.set_item("write", false)?;
        arr.call_method("setflags", (), Some(&kw))?;
        *lock(&self.convolved) = Some(arr.clone().unbind());
        Ok(Some(arr))
    }

    /// The PSF the models are convolved with (float32, normalised), None before any.
    #[getter]
    fn psf<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let p = py.detach(|| lock(&self.backend).fitter().psf().cloned());
        p.map(|p| Self::to_array(py, &[p.height, p.width], p.data))
            .transpose()
    }

    /// Convolves the models with a PSF: a `.psf` (PSFEx) or FITS image path, or a 2-D
    /// float32 array (negatives set to 0 and normalised to sum 1, as a file's). True when it
    /// convolved, False when the models already were convolved with this PSF.
    /// (`n_proc`, `to_cpu`: the original's, accepted and unused.)
    #[pyo3(signature = (psf, n_proc=None, to_cpu=None))]
    fn convolve(
        &self,
        py: Python<'_>,
        psf: &Bound<'_, PyAny>,
        n_proc: Option<&Bound<'_, PyAny>>,
        to_cpu: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let _ = (n_proc, to_cpu);
        let (p, path) = self.psf_arg(py, psf, "psf")?;
        self.convolve_psf(py, &p, path.as_deref())
    }

    /// The chi-square of one object against every convolved model (as `dre`), float32
    /// (NINDEX, NAXRAT, NPOSANG, NLOGH): obj and rms float32, seg bool, each (BOX, BOX) and
    /// C-contiguous.
    fn dre_fit<'py>(
        &self,
        py: Python<'py>,
        obj: &Bound<'py, PyAny>,
        seg: &Bound<'py, PyAny>,
        rms: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let st = self.stamps(obj, seg, Some(rms), ["obj", "seg", "rms"])?;
        let (o, s, r) = (st.obj(), st.seg(), st.rms());
        let b = self.grid.boxsize;
        let chi = self
            .with_fitter(py, |f| {
                let p = Prepared::from_stamps("object", o, s, r, b, Path::new("dre_fit"))?;
                f.fit(std::slice::from_ref(&p))
            })
            .map_err(|e| match e {
                Error::Object { msg, .. } => PyValueError::new_err(format!("dre_fit: {msg}")),
                e => to_py(e),
            })?;
        let chi = chi
            .into_iter()
            .next()
            .ok_or_else(|| PyRuntimeError::new_err("dre_fit: the backend gave no chi cube"))?;
        Self::to_array(py, &self.grid.shape(), chi)
    }

    /// For the benchmark: the median time of what `dre` itself does for one object (pack its
    /// segment, fit it on this cube's backend and threads), timed in Rust, so that the time
    /// of `dre_fit` beyond it is the Python call's own overhead.
    fn _kernel_seconds(
        &self,
        py: Python<'_>,
        obj: &Bound<'_, PyAny>,
        seg: &Bound<'_, PyAny>,
        rms: &Bound<'_, PyAny>,
        repeat: usize,
    ) -> PyResult<f64> {
        let st = self.stamps(obj, seg, Some(rms), ["obj", "seg", "rms"])?;
        let (o, s, r) = (st.obj(), st.seg(), st.rms());
        let b = self.grid.boxsize;
        let mut times = self
            .with_fitter(py, |f| {
                (0..repeat.max(1))
                    .map(|_| {
                        let start = Instant::now();
                        let p = Prepared::from_stamps("object", o, s, r, b, Path::new("dre_fit"))?;
                        let chi = f.fit(std::slice::from_ref(&p))?;
                        std::hint::black_box(chi);
                        Ok(start.elapsed().as_secs_f64())
                    })
                    .collect::<dre::Result<Vec<f64>>>()
            })
            .map_err(to_py)?;
        times.sort_by(f64::total_cmp);
        Ok(times[times.len() / 2])
    }

    /// `dre_fit` of N objects in one pass over the models (what `dre` does per chunk; the
    /// fast way on a GPU): objs and rmss float32, segs bool, each (N, BOX, BOX).
    fn dre_fit_batch<'py>(
        &self,
        py: Python<'py>,
        objs: &Bound<'py, PyAny>,
        segs: &Bound<'py, PyAny>,
        rmss: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let b = self.grid.boxsize;
        let n = match objs.cast::<PyUntypedArray>() {
            Ok(a) if a.ndim() == 3 => a.shape()[0],
            Ok(a) => {
                return Err(PyValueError::new_err(format!(
                    "objs: expected shape (N, {b}, {b}), got {}",
                    shape_str(a.shape())
                )))
            }
            Err(_) => {
                return Err(PyValueError::new_err(format!(
                    "objs: expected a numpy array of float32, got {}",
                    objs.get_type().name()?
                )))
            }
        };
        let shape = [n, b, b];
        let o = checked::<f32>(objs, "objs", "float32", &shape, "")?;
        let s = checked::<bool>(segs, "segs", "bool", &shape, "objs")?;
        let r = checked::<f32>(rmss, "rmss", "float32", &shape, "objs")?;
        let (o, s, r) = (
            values(&o, "objs")?,
            values(&s, "segs")?,
            values(&r, "rmss")?,
        );
        let len = b * b;
        // The stamps are packed where numpy holds them, with the GIL released.
        let chis = self
            .with_fitter(py, |f| {
                let ready = (0..n)
                    .map(|i| {
                        let at = i * len..(i + 1) * len;
                        Prepared::from_stamps(
                            &i.to_string(),
                            &o[at.clone()],
                            &s[at.clone()],
                            &r[at],
                            b,
                            Path::new("dre_fit_batch"),
                        )
                    })
                    .collect::<dre::Result<Vec<_>>>()?;
                f.fit(&ready)
            })
            .map_err(|e| match e {
                Error::Object { object, msg, .. } => {
                    PyValueError::new_err(format!("dre_fit_batch: object {object}: {msg}"))
                }
                e => to_py(e),
            })?;
        let mut shape = vec![n];
        shape.extend(self.grid.shape());
        Self::to_array(py, &shape, chis.concat())
    }

    /// The Summary's fitted values of one chi cube (float32, (NINDEX, NAXRAT, NPOSANG,
    /// NLOGH)), with the Summary's types: MODEL_IDX (int64[4]), CHI, CHI_STD, LOGR_CHI,
    /// LOGR_VAR, LOGR_CHI_VAR (float32), LOGR_PARAB, LOGR_STD, INDEX (float64), LOGR,
    /// AX_RATIO, ANGLE (float32). Given the object's obj, seg and rms (as to dre_fit), also
    /// the off-grid values `dre` adds: LOGR_FIT, AX_RATIO_FIT, ANGLE_FIT (INDEX_FIT for cubes
    /// of several n), each with its _ERR (float64), NPIX and DRE_FLAGS (int32).
    #[pyo3(signature = (chi, obj=None, seg=None, rms=None))]
    fn get_parameters<'py>(
        &self,
        py: Python<'py>,
        chi: &Bound<'py, PyAny>,
        obj: Option<&Bound<'py, PyAny>>,
        seg: Option<&Bound<'py, PyAny>>,
        rms: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let shape = self.grid.shape();
        let a = checked::<f32>(chi, "chi", "float32", &shape, "the cube's grid")?;
        let v = values(&a, "chi")?;
        let object = match (obj, seg, rms) {
            (None, None, None) => None,
            (Some(o), Some(s), Some(r)) => {
                let st = self.stamps(o, s, Some(r), ["obj", "seg", "rms"])?;
                let file = Path::new("get_parameters");
                let b = self.grid.boxsize;
                let p = Prepared::from_stamps("object", st.obj(), st.seg(), st.rms(), b, file)
                    .map_err(|e| match e {
                        Error::Object { msg, .. } => {
                            PyValueError::new_err(format!("get_parameters: {msg}"))
                        }
                        e => to_py(e),
                    })?;
                Some(p)
            }
            _ => {
                return Err(PyValueError::new_err(
                    "get_parameters: give the object's obj, seg and rms together, or none",
                ))
            }
        };
        // The refinement interpolates the convolved models, as `dre` does.
        let p = match object {
            Some(o) => self
                .with_fitter(py, |f| {
                    batch_parameters(f, &[v.to_vec()], std::slice::from_ref(&o))
                })
                .map_err(|e| {
                    PyValueError::new_err(format!(
                        "get_parameters: {e} (convolve the models with the object's PSF first)"
                    ))
                })?
                .pop()
                .flatten(),
            None => parameters(v, &self.grid),
        }
        .ok_or_else(|| PyValueError::new_err("chi: every value is NaN (no usable pixel)"))?;
        let np = py.import("numpy")?;
        let (f32t, f64t, i32t) = (
            np.getattr("float32")?,
            np.getattr("float64")?,
            np.getattr("int32")?,
        );
        let idx: Vec<i64> = p.model_idx.iter().map(|&i| i as i64).collect();
        let d = PyDict::new(py);
        d.set_item("MODEL_IDX", idx.into_pyarray(py))?;
        for (k, v) in [
            ("CHI", p.chi),
            ("CHI_STD", p.chi_std),
            ("LOGR_CHI", p.logr_chi),
            ("LOGR_VAR", p.logr_var),
            ("LOGR_CHI_VAR", p.logr_chi_var),
        ] {
            d.set_item(k, f32t.call1((v,))?)?;
        }
        for (k, v) in [
            ("LOGR_PARAB", p.logr_parab),
            ("LOGR_STD", p.logr_std),
            ("INDEX", p.index),
        ] {
            d.set_item(k, f64t.call1((v,))?)?;
        }
        for (k, v) in [
            ("LOGR", p.logr),
            ("AX_RATIO", p.ax_ratio),
            ("ANGLE", p.angle),
        ] {
            d.set_item(k, f32t.call1((v,))?)?;
        }
        if let Some(r) = p.refined {
            // The Summary's order: (name, axis) as `dre` writes them.
            let mut axes = vec![("LOGR_FIT", 3), ("AX_RATIO_FIT", 1), ("ANGLE_FIT", 2)];
            if r.multi_index {
                axes.push(("INDEX_FIT", 0));
            }
            for (name, a) in axes {
                d.set_item(name, f64t.call1((r.values[a],))?)?;
                d.set_item(format!("{name}_ERR"), f64t.call1((r.errors[a],))?)?;
            }
            let npix = i32::try_from(r.npix).unwrap_or(i32::MAX);
            d.set_item("NPIX", i32t.call1((npix,))?)?;
            d.set_item("DRE_FLAGS", i32t.call1((r.flags,))?)?;
        }
        Ok(d)
    }

    /// The mosaic `dre --mosaics` writes: the data | the segment filled with the mean flux |
    /// the model `model_index` (n, q, theta, logr) scaled to the data | the residual, in
    /// the tile's orientation. psf_file: convolve with it first.
    #[pyo3(signature = (data, segment, model_index, psf_file=None))]
    fn make_mosaic<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        segment: &Bound<'py, PyAny>,
        model_index: Vec<i64>,
        psf_file: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let k = self.flat_index(&model_index)?;
        if let Some(psf) = psf_file.filter(|p| !p.is_none()) {
            let (p, path) = self.psf_arg(py, psf, "psf_file")?;
            self.convolve_psf(py, &p, path.as_deref())?;
        }
        let st = self.stamps(data, segment, None, ["data", "segment", ""])?;
        let (d, s, r) = (st.obj(), st.seg(), st.rms());
        let b = self.grid.boxsize;
        let img = self
            .with_fitter(py, |f| {
                let p = Prepared::from_stamps("object", d, s, r, b, Path::new("make_mosaic"))?;
                let model = f.model(k)?;
                Ok(dre::mosaic(d, s, &model, p.scale(&model), p.flux, b))
            })
            .map_err(|e| match e {
                Error::Object { msg, .. } => PyValueError::new_err(format!("make_mosaic: {msg}")),
                e => to_py(e),
            })?;
        Self::to_array(py, &[b, 4 * b], img)
    }

    /// The residual data - s_k m_k of every convolved model m_k, each scaled to the data's
    /// flux over the segment as in the fit.
    fn make_residual<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        segment: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let st = self.stamps(data, segment, None, ["data", "segment", ""])?;
        let (d, s, r) = (st.obj(), st.seg(), st.rms());
        let b = self.grid.boxsize;
        let n = self.grid.n_models();
        let out = self
            .with_fitter(py, |f| {
                let p = Prepared::from_stamps("object", d, s, r, b, Path::new("make_residual"))?;
                let mut out = Vec::with_capacity(n * b * b);
                for k in 0..n {
                    let model = f.model(k)?;
                    let scale = p.scale(&model);
                    out.extend(d.iter().zip(model.iter()).map(|(v, m)| v - scale * m));
                }
                Ok(out)
            })
            .map_err(|e| match e {
                Error::Object { msg, .. } => PyValueError::new_err(format!("make_residual: {msg}")),
                e => to_py(e),
            })?;
        Self::to_array(py, &self.shape6(), out)
    }

    /// Writes the models (or an array of their shape, e.g. a residual cube) as a cube file
    /// on this grid, in the layout `ModelsCube` and `dre` read.
    #[pyo3(signature = (output_file, models=None))]
    fn save_models(
        &self,
        py: Python<'_>,
        output_file: PathBuf,
        models: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let array = models
            .map(|m| checked::<f32>(m, "models", "float32", &self.shape6(), "the cube"))
            .transpose()?;
        let given = array.as_ref().map(|a| values(a, "models")).transpose()?;
        // Written from where the stamps are held, with the GIL released.
        py.detach(|| -> dre::Result<()> {
            let write = |data: &[f32]| write_models(&output_file, &self.grid, data, &[]);
            match (given, &self.host) {
                (Some(d), _) => write(d),
                (None, Some(h)) => write(h),
                (None, None) => match &*lock(&self.backend) {
                    Backend::Cpu(c) => write_cube(&output_file, c.raw(), &[]),
                    // A device backend always keeps its host copy (`host`).
                    Backend::Device(_) => Err(Error::Invalid(
                        "save_models: the models are not held on the host".into(),
                    )),
                },
            }
        })
        .map_err(to_py)
    }

    /// Fits every object of one cut file and writes what `dre` writes for it: the chi file
    /// (default Chi/NAME_chi.h5), the Summary (default Summary/NAME_dre.fits, joined with
    /// the catalogue, default found in Sextracted/ as `dre` does) and, with mosaics_dir,
    /// the mosaics. psf: a path or array to convolve with first (None: the current models).
    /// Bad objects are reported as DreWarning and skipped; a bad tile raises.
    #[pyo3(signature = (input_file, output_file=None, psf=None, convolve=true,
        progress_status="", summary_file=None, catalog=None, mosaics_dir=None, chunk=None,
        progress=None),
        text_signature = "(self, input_file, output_file=None, psf=None, convolve=True, \
        progress_status='', summary_file=None, catalog=None, mosaics_dir=None, chunk=None, \
        progress=True)")]
    #[allow(clippy::too_many_arguments)]
    fn fit_file(
        &self,
        py: Python<'_>,
        input_file: PathBuf,
        output_file: Option<PathBuf>,
        psf: Option<&Bound<'_, PyAny>>,
        convolve: bool,
        progress_status: &str,
        summary_file: Option<PathBuf>,
        catalog: Option<PathBuf>,
        mosaics_dir: Option<PathBuf>,
        chunk: Option<usize>,
        progress: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<FitReport> {
        let start = Instant::now();
        let file = input_file
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = layout::tile_name(&file, layout::CUTS_SUFFIX)
            .unwrap_or(&file)
            .to_string();
        let paths = TilePaths {
            cuts: input_file.clone(),
            catalog: Some(catalog.unwrap_or_else(|| {
                layout::find_sextracted(Path::new(layout::SEXTRACTED_DIR), &name).catalog
            })),
            chi: output_file.unwrap_or_else(|| layout::chi_file(Path::new(layout::CHI_DIR), &name)),
            summary: summary_file
                .unwrap_or_else(|| layout::summary_file(Path::new(layout::SUMMARY_DIR), &name)),
            mosaics: mosaics_dir.map(|d| layout::mosaic_dir(&d, &name)),
            png: false,
            name,
        };
        let psf = match psf.filter(|p| !p.is_none() && convolve) {
            Some(p) => Some(self.psf_arg(py, p, "psf")?),
            None => None,
        };
        let obs = PyObserver::new(py, progress, progress_status)?;
        self.forget_convolved();
        let compression = self.compression;
        let result = py.detach(|| {
            let mut be = lock(&self.backend);
            let mut g = self.guarded(&mut be, Some(&obs.stop), true);
            if let Some((p, path)) = &psf {
                g.convolve(p).map_err(|e| match path {
                    Some(path) => e.at_file(path),
                    None => e,
                })?;
            }
            let n = CutReader::open(&paths.cuts)?.names().len();
            obs.start(0, 1, &paths.name, n);
            let chunk = chunk.unwrap_or_else(|| g.default_chunk()).max(1);
            let r = fit_tile(&mut g, &paths, compression, chunk, &|k| obs.advance(k));
            match &r {
                Ok(rep) => obs.finish(rep),
                Err(_) => obs.finish(&Default::default()),
            }
            r
        });
        if let Some(interrupt) = obs.take_interrupt() {
            return Err(interrupt);
        }
        let rep = result.map_err(to_py)?;
        self.report(py, &obs, [1, 0, rep.objects, rep.fitted], start)
    }

    /// `dre` over a folder: every NAME_cuts.h5 of input_dir, convolved with psf_dir/NAME.psf
    /// (or with psf_dir itself when it is one PSF file), writing exactly `dre`'s chi files,
    /// Summaries and (with mosaics_dir) mosaics. Bad tiles and objects are reported as
    /// DreWarning and skipped, as `dre` does; FitReport says what happened.
    /// convolve=False fits every tile with the models as they are convolved now;
    /// resume=True skips tiles whose outputs are complete and up to date (`dre --resume`);
    /// png=True also writes each mosaic's PNG picture (`dre --png`), into mosaics_dir or,
    /// without one, Mosaics.
    #[pyo3(signature = (input_dir=PathBuf::from("Cuts"), chi_dir=PathBuf::from("Chi"),
        psf_dir=PathBuf::from("PSF"), convolve=true, output_dir=PathBuf::from("Summary"),
        cats_dir=PathBuf::from("Sextracted"), mosaics_dir=None, chunk=None, progress=None,
        resume=false, png=false),
        text_signature = "(self, input_dir='Cuts', chi_dir='Chi', psf_dir='PSF', convolve=True, \
        output_dir='Summary', cats_dir='Sextracted', mosaics_dir=None, chunk=None, progress=True, \
        resume=False, png=False)")]
    #[allow(clippy::too_many_arguments)]
    fn fit_dir(
        &self,
        py: Python<'_>,
        input_dir: PathBuf,
        chi_dir: PathBuf,
        psf_dir: PathBuf,
        convolve: bool,
        output_dir: PathBuf,
        cats_dir: PathBuf,
        mosaics_dir: Option<PathBuf>,
        chunk: Option<usize>,
        progress: Option<&Bound<'_, PyAny>>,
        resume: bool,
        png: bool,
    ) -> PyResult<FitReport> {
        let start = Instant::now();
        // As `dre --png`: the pictures imply the mosaics.
        let mosaics_dir = match (mosaics_dir, png) {
            (None, true) => Some(PathBuf::from(layout::MOSAICS_DIR)),
            (d, _) => d,
        };
        let cfg = RunConfig {
            psf: PsfSource::from_path(psf_dir),
            cuts_dir: input_dir,
            summary_dir: output_dir,
            chi_dir,
            catalogs_dir: cats_dir,
            mosaics_dir,
            png,
            compression: self.compression,
            chunk: chunk.map(|c| c.max(1)),
            resume,
            cube_file: Some(self.path.clone()),
        };
        let obs = PyObserver::new(py, progress, "")?;
        self.forget_convolved();
        let result = py.detach(|| {
            let mut be = lock(&self.backend);
            let mut g = self.guarded(&mut be, Some(&obs.stop), convolve);
            run(&cfg, &obs, &mut g)
        });
        if let Some(interrupt) = obs.take_interrupt() {
            return Err(interrupt);
        }
        let rep = result.map_err(to_py)?;
        self.report(
            py,
            &obs,
            [rep.tiles, rep.tiles_failed, rep.objects, rep.fitted],
            start,
        )
    }

    /// Recomputes a Summary from a chi file (the parameters of each chi cube, joined with the
    /// catalogue when given) and writes it as `dre` does; returns its number of rows. With
    /// the tile's cut file, the off-grid columns (LOGR_FIT ..., NPIX, DRE_FLAGS) too, so
    /// that it is `dre`'s Summary exactly; these interpolate the convolved models, so the
    /// models must be convolved with the tile's PSF first.
    #[pyo3(signature = (chi_file, summary_file, catalog=None, cuts_file=None))]
    fn summarize(
        &self,
        py: Python<'_>,
        chi_file: PathBuf,
        summary_file: PathBuf,
        catalog: Option<PathBuf>,
        cuts_file: Option<PathBuf>,
    ) -> PyResult<usize> {
        let grid = &self.grid;
        let (n, skipped) = self
            .with_fitter(py, |f| -> dre::Result<(usize, Vec<String>)> {
                // The chi file's datasets, listed as a cut file's groups are.
                let names = CutReader::open(&chi_file)?.names().to_vec();
                let cuts = cuts_file.as_ref().map(CutReader::open).transpose()?;
                let mut rows = Vec::new();
                let mut skipped = Vec::new();
                for name in &names {
                    let (chi, shape) = read_chi(&chi_file, name)?;
                    if shape != grid.shape() {
                        return Err(Error::object(
                            &chi_file,
                            name,
                            format!(
                                "chi cube of shape {shape:?}, not the cube's grid {:?}",
                                grid.shape()
                            ),
                        ));
                    }
                    let Some((ext, number)) = dre::conventions::parse_object_name(name) else {
                        skipped.push(
                            Error::object(&chi_file, name, "dataset name is not EE_NNNN")
                                .to_string(),
                        );
                        continue;
                    };
                    let params = match (&cuts, &cuts_file) {
                        (Some(r), Some(path)) => {
                            let p = Prepared::new(&r.read(name)?, grid.boxsize, path)?;
                            batch_parameters(&*f, &[chi], std::slice::from_ref(&p))?
                                .pop()
                                .flatten()
                        }
                        _ => parameters(&chi, grid),
                    };
                    match params {
                        Some(params) => rows.push(FitRow {
                            ext,
                            number,
                            params,
                        }),
                        None => skipped.push(
                            Error::object(&chi_file, name, "every chi value is NaN").to_string(),
                        ),
                    }
                }
                let cat = catalog.as_ref().map(read_catalog).transpose()?;
                let table = summary_table(&rows, cat.as_ref())
                    .map_err(|e| e.at_file(catalog.clone().unwrap_or_default()))?;
                write_table(&summary_file, &table)?;
                Ok((table.nrows(), skipped))
            })
            .map_err(to_py)?;
        warn_lines(py, &skipped)?;
        Ok(n)
    }

    fn __repr__(&self) -> String {
        format!(
            "ModelsCube({:?}, device={:?}, shape={})",
            self.path.display().to_string(),
            device_name(self.device),
            shape_str(&self.shape6())
        )
    }
}
