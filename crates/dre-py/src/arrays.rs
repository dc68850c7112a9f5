//! Checks of the numpy arrays Python hands in, and the library's errors as Python
//! exceptions: a wrong array is a `ValueError` naming the argument and what was expected,
//! never a crash or a silent conversion.

use dre::Error;
use numpy::{
    dtype, Element, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn,
    PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyFileNotFoundError, PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;

/// The library's one-line error as the Python exception a notebook expects: a missing file
/// is `FileNotFoundError`, another bad file `OSError`, a bad object or request `ValueError`,
/// a device fault `RuntimeError`. The text is the line the binaries print after `TOOL: `.
pub fn to_py(e: Error) -> PyErr {
    let line = e.to_string();
    match &e {
        Error::File { msg, .. } if msg.starts_with("no such") => PyFileNotFoundError::new_err(line),
        Error::File { .. } => PyOSError::new_err(line),
        Error::Object { .. } | Error::Invalid(_) => PyValueError::new_err(line),
        Error::Device(_) => PyRuntimeError::new_err(line),
    }
}

/// `(128, 128)`, as numpy prints a shape.
pub fn shape_str(shape: &[usize]) -> String {
    match shape {
        [one] => format!("({one},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// `arg` as a read-only numpy array of `T` (numpy dtype `want`), C-contiguous, aligned,
/// of shape `shape` (`like` names the argument that fixed it, if another did).
pub fn checked<'py, T: Element>(
    arg: &Bound<'py, PyAny>,
    name: &str,
    want: &str,
    shape: &[usize],
    like: &str,
) -> PyResult<PyReadonlyArrayDyn<'py, T>> {
    let py = arg.py();
    let Ok(untyped) = arg.cast::<PyUntypedArray>() else {
        let kind = arg.get_type().name()?;
        return Err(PyValueError::new_err(format!(
            "{name}: expected a numpy array of {want}, got {kind}"
        )));
    };
    let dt = untyped.dtype();
    if !dt.is_equiv_to(&dtype::<T>(py)) {
        return Err(PyValueError::new_err(format!(
            "{name}: expected dtype {want}, got {} (convert with {name}.astype({}))",
            dt.str()?,
            if want == "bool" {
                "bool".to_string()
            } else {
                format!("np.{want}")
            }
        )));
    }
    if untyped.shape() != shape {
        let whose = if like.is_empty() {
            String::new()
        } else {
            format!(" like {like}")
        };
        return Err(PyValueError::new_err(format!(
            "{name}: expected shape {}{whose}, got {}",
            shape_str(shape),
            shape_str(untyped.shape())
        )));
    }
    if !untyped.is_c_contiguous() || !untyped.is_aligned() {
        return Err(PyValueError::new_err(format!(
            "{name}: expected a C-contiguous, aligned array, got a strided view \
             (pass np.ascontiguousarray({name}))"
        )));
    }
    let typed = arg
        .cast::<PyArrayDyn<T>>()
        .map_err(|_| PyValueError::new_err(format!("{name}: expected a numpy array of {want}")))?;
    typed
        .try_readonly()
        .map_err(|e| PyValueError::new_err(format!("{name}: {e}")))
}

/// The values of a checked array (C-contiguous, so one slice).
pub fn values<'a, T: Element>(a: &'a PyReadonlyArrayDyn<'_, T>, name: &str) -> PyResult<&'a [T]> {
    a.as_slice()
        .map_err(|e| PyValueError::new_err(format!("{name}: {e}")))
}
