//! `dre_rs`: the original DRE's Python API (`ModelsCube` and friends) over the Rust library
//! `dre`. Every fit, convolution and file goes through the library's public API; this crate
//! only checks arguments, converts arrays and releases the GIL while the library works.
//! The notebook layer (`dre_rs.colab`, `dre_rs.notebook`) is pure Python beside it
//! (`python/dre_rs/`).

mod arrays;
mod cube;
mod progress;

use arrays::{checked, to_py, values};
use numpy::ndarray::{Array, IxDyn};
use numpy::IntoPyArray;
use pyo3::exceptions::PyUserWarning;
use pyo3::prelude::*;
use std::path::PathBuf;

pyo3::create_exception!(
    dre_rs,
    DreWarning,
    PyUserWarning,
    "A tile or object `dre` would report and skip (one line naming the file and object)."
);

/// A 2-D float32 numpy array of `height` x `width` values.
fn image<'py>(
    py: Python<'py>,
    height: usize,
    width: usize,
    data: Vec<f32>,
) -> PyResult<Bound<'py, PyAny>> {
    let a = Array::from_shape_vec(IxDyn(&[height, width]), data)
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
    Ok(a.into_pyarray(py).into_any())
}

/// The PSF `dre` uses for a tile: a PSFEx `.psf` (order 0 of the first accepted HDU) or a
/// FITS image, negatives set to 0, normalised to sum 1 (the original's `get_psf`).
#[pyfunction]
fn read_psf<'py>(py: Python<'py>, path: PathBuf) -> PyResult<Bound<'py, PyAny>> {
    let psf = py.detach(|| dre::read_psf(&path)).map_err(to_py)?;
    image(py, psf.height, psf.width, psf.data)
}

/// The objects (`EE_NNNN`) of a cut file, sorted; also the datasets of a chi file.
#[pyfunction]
fn cut_names(py: Python<'_>, path: PathBuf) -> PyResult<Vec<String>> {
    py.detach(|| dre::CutReader::open(&path).map(|r| r.names().to_vec()))
        .map_err(to_py)
}

/// One object of a cut file: obj and rms float32, seg bool, each (BOX, BOX).
#[pyfunction]
fn read_cut<'py>(
    py: Python<'py>,
    path: PathBuf,
    name: &str,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let cut = py
        .detach(|| dre::CutReader::open(&path).and_then(|r| r.read(name)))
        .map_err(to_py)?;
    let b = cut.size;
    let seg = Array::from_shape_vec(IxDyn(&[b, b]), cut.seg)
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
    Ok((
        image(py, b, b, cut.obj)?,
        seg.into_pyarray(py).into_any(),
        image(py, b, b, cut.rms)?,
    ))
}

/// One object's chi cube from a chi file.
#[pyfunction]
fn read_chi<'py>(py: Python<'py>, path: PathBuf, name: &str) -> PyResult<Bound<'py, PyAny>> {
    let (chi, shape) = py.detach(|| dre::read_chi(&path, name)).map_err(to_py)?;
    let a = Array::from_shape_vec(IxDyn(&shape), chi)
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
    Ok(a.into_pyarray(py).into_any())
}

/// Writes a mosaic (float32, (BOX, 4*BOX)) as `dre --mosaics` does, whole or not at all.
#[pyfunction]
fn write_mosaic(py: Python<'_>, path: PathBuf, image: &Bound<'_, PyAny>) -> PyResult<()> {
    let shape = match image.cast::<numpy::PyUntypedArray>() {
        Ok(a) => numpy::PyUntypedArrayMethods::shape(a).to_vec(),
        Err(_) => Vec::new(),
    };
    let (b, w) = match shape.as_slice() {
        [b, w] if *w == 4 * *b && *b > 0 => (*b, *w),
        _ => {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "image: expected a mosaic of shape (BOX, 4*BOX), got {}",
                arrays::shape_str(&shape)
            )))
        }
    };
    let a = checked::<f32>(image, "image", "float32", &[b, w], "")?;
    let data = values(&a, "image")?.to_vec();
    py.detach(|| dre::write_mosaic(&path, &data, b))
        .map_err(to_py)
}

/// The default model cube (the original's grid), rendered into the cache folder on first use
/// (`$DRE_CACHE_DIR`, else `$XDG_CACHE_HOME/dre`, else `~/.cache/dre`), as `dre` does.
#[pyfunction]
#[pyo3(signature = (cache_dir=None))]
fn default_cube_path(py: Python<'_>, cache_dir: Option<PathBuf>) -> PyResult<String> {
    let dir = cache_dir.unwrap_or_else(dre::default_cache_dir);
    let p = py.detach(|| dre::default_cube(&dir)).map_err(to_py)?;
    Ok(p.display().to_string())
}

/// A checked cube, its shape, the index and the steps.
type StatsArgs<'py> = (
    numpy::PyReadonlyArrayDyn<'py, f32>,
    Vec<usize>,
    Vec<usize>,
    Vec<f64>,
);

/// The statistics' arguments checked (the library panics on a mismatch): a float32 cube of
/// any dimension, one in-range index and one step per axis.
fn stats_args<'py>(
    cube: &Bound<'py, PyAny>,
    idx_min: Vec<i64>,
    steps: Vec<f64>,
) -> PyResult<StatsArgs<'py>> {
    let shape = match cube.cast::<numpy::PyUntypedArray>() {
        Ok(a) => numpy::PyUntypedArrayMethods::shape(a).to_vec(),
        Err(_) => {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "chi_cube: expected a numpy array of float32, got {}",
                cube.get_type().name()?
            )))
        }
    };
    let a = checked::<f32>(cube, "chi_cube", "float32", &shape, "")?;
    let d = shape.len();
    if idx_min.len() != d || steps.len() != d {
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "idx_min and steps: expected {d} values each (one per axis of the cube), got {} and {}",
            idx_min.len(),
            steps.len()
        )));
    }
    let mut idx = Vec::with_capacity(d);
    for (axis, (&i, &n)) in idx_min.iter().zip(&shape).enumerate() {
        let j = if i < 0 { i + n as i64 } else { i };
        if j < 0 || j >= n as i64 {
            return Err(pyo3::exceptions::PyIndexError::new_err(format!(
                "idx_min: index {i} is out of range for axis {axis} of size {n}"
            )));
        }
        idx.push(j as usize);
    }
    Ok((a, shape, idx, steps))
}

/// `f(values, shape, index, steps)` of a checked `chi_cube` ([`stats_args`]).
fn with_stats<R>(
    chi_cube: &Bound<'_, PyAny>,
    idx_min: Vec<i64>,
    steps: Vec<f64>,
    f: impl FnOnce(&[f32], &[usize], &[usize], &[f64]) -> R,
) -> PyResult<R> {
    let (a, shape, idx, steps) = stats_args(chi_cube, idx_min, steps)?;
    Ok(f(values(&a, "chi_cube")?, &shape, &idx, &steps))
}

/// cube_gradient(chi_cube, idx_min, steps) -> float64 array (d,)
///
/// The original's `statistics.cube_gradient`: per axis, the central difference of the cube
/// at `idx_min` on the 3-point window (slid inward at the grid's ends), in units of `steps`.
#[pyfunction]
fn cube_gradient<'py>(
    py: Python<'py>,
    chi_cube: &Bound<'py, PyAny>,
    idx_min: Vec<i64>,
    steps: Vec<f64>,
) -> PyResult<Bound<'py, PyAny>> {
    let g = with_stats(chi_cube, idx_min, steps, dre::cube_gradient)?;
    Ok(g.into_pyarray(py).into_any())
}

/// gradient_norm(chi_cube, idx_min, steps) -> float
///
/// The original's `statistics.gradient_norm`: the norm of `cube_gradient`.
#[pyfunction]
fn gradient_norm(chi_cube: &Bound<'_, PyAny>, idx_min: Vec<i64>, steps: Vec<f64>) -> PyResult<f64> {
    with_stats(chi_cube, idx_min, steps, dre::gradient_norm)
}

/// cube_hessian(chi_cube, idx_min, steps) -> float64 array (d, d)
///
/// The original's `statistics.cube_hessian`: the numerical Hessian of the cube at `idx_min`.
#[pyfunction]
fn cube_hessian<'py>(
    py: Python<'py>,
    chi_cube: &Bound<'py, PyAny>,
    idx_min: Vec<i64>,
    steps: Vec<f64>,
) -> PyResult<Bound<'py, PyAny>> {
    let (d, h) = with_stats(chi_cube, idx_min, steps, |c, shape, idx, steps| {
        (shape.len(), dre::cube_hessian(c, shape, idx, steps))
    })?;
    let h = Array::from_shape_vec(IxDyn(&[d, d]), h)
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
    Ok(h.into_pyarray(py).into_any())
}

/// params_std(chi_cube, idx_min, steps) -> float64 array (d,)
///
/// The original's `statistics.params_std`: the square roots of the diagonal of the inverse of
/// the Hessian of ln(chi) at `idx_min`, in units of `steps` (NaN where a variance is negative,
/// an axis has fewer than 3 values or the Hessian is singular).
#[pyfunction]
fn params_std<'py>(
    py: Python<'py>,
    chi_cube: &Bound<'py, PyAny>,
    idx_min: Vec<i64>,
    steps: Vec<f64>,
) -> PyResult<Bound<'py, PyAny>> {
    let s = with_stats(chi_cube, idx_min, steps, dre::params_std)?;
    Ok(s.into_pyarray(py).into_any())
}

#[pymodule]
fn _dre_rs(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<cube::ModelsCube>()?;
    m.add_class::<cube::FitReport>()?;
    m.add("DreWarning", m.py().get_type::<DreWarning>())?;
    m.add_function(wrap_pyfunction!(read_psf, m)?)?;
    m.add_function(wrap_pyfunction!(cut_names, m)?)?;
    m.add_function(wrap_pyfunction!(read_cut, m)?)?;
    m.add_function(wrap_pyfunction!(read_chi, m)?)?;
    m.add_function(wrap_pyfunction!(write_mosaic, m)?)?;
    m.add_function(wrap_pyfunction!(default_cube_path, m)?)?;
    m.add_function(wrap_pyfunction!(cube_gradient, m)?)?;
    m.add_function(wrap_pyfunction!(gradient_norm, m)?)?;
    m.add_function(wrap_pyfunction!(cube_hessian, m)?)?;
    m.add_function(wrap_pyfunction!(params_std, m)?)?;
    m.add("CUDA_BUILT", cfg!(feature = "cuda"))?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
