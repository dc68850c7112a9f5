//! What a long call (`fit_dir`, `fit_file`) shows and honours while the GIL is released:
//! tqdm bars driven from the library's [`Observer`] callbacks, Ctrl-C noticed at each
//! callback, and a [`Fitter`] wrapper that then fails every further step at once, so the
//! call returns (nothing half-written: the library writes whole files or none) and raises
//! `KeyboardInterrupt`.

use dre::{Error, Fitter, Grid, Observer, Prepared, Psf, Result, TileReport};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Progress bars and the failure lines of a run.
pub struct PyObserver {
    /// Makes a bar: `factory(total=N, desc=..., unit="obj")` (tqdm); None shows none.
    factory: Option<Py<PyAny>>,
    /// The current tile's bar.
    bar: Mutex<Option<Py<PyAny>>>,
    /// Bar label of a single-file fit (the original's `progress_status`); empty: the tile.
    status: String,
    /// Set when Ctrl-C arrived; the signal's exception is kept to be raised at the end.
    pub stop: AtomicBool,
    interrupt: Mutex<Option<PyErr>>,
    /// One line per failed tile or object, as `dre` prints them (without `dre: `).
    pub failures: Mutex<Vec<String>>,
    /// Warnings, as `dre` prints them (without `dre: warning: `).
    pub warnings: Mutex<Vec<String>>,
    /// The tiles' own times (read, fit, write; not the convolution), as `dre` reports them.
    pub fit_seconds: Mutex<f64>,
}

impl PyObserver {
    /// `progress`: None or true (tqdm), false (no bars), or a tqdm-like callable.
    pub fn new(
        py: Python<'_>,
        progress: Option<&Bound<'_, PyAny>>,
        status: &str,
    ) -> PyResult<PyObserver> {
        let factory = if let Some(p) = progress.filter(|p| p.is_callable()) {
            Some(p.clone().unbind())
        } else if let Some(false) = progress.map(|p| p.is_truthy()).transpose()? {
            None
        } else {
            // tqdm.auto draws a widget in a notebook and text elsewhere.
            let m = py.import("tqdm.auto").or_else(|_| py.import("tqdm"))?;
            Some(m.getattr("tqdm")?.unbind())
        };
        Ok(PyObserver {
            factory,
            bar: Mutex::new(None),
            status: status.to_string(),
            stop: AtomicBool::new(false),
            interrupt: Mutex::new(None),
            failures: Mutex::new(Vec::new()),
            warnings: Mutex::new(Vec::new()),
            fit_seconds: Mutex::new(0.0),
        })
    }

    /// Notices Ctrl-C (only the main thread sees signals).
    fn poll(&self, py: Python<'_>) {
        if let Err(e) = py.check_signals() {
            self.stop.store(true, Ordering::SeqCst);
            let mut slot = lock(&self.interrupt);
            slot.get_or_insert(e);
        }
    }

    /// The interrupt to raise once the library has returned, if any.
    pub fn take_interrupt(&self) -> Option<PyErr> {
        lock(&self.interrupt).take()
    }

    /// Starts a bar of `total` objects for tile `name`, `index` of `count`.
    pub fn start(&self, index: usize, count: usize, name: &str, total: usize) {
        Python::attach(|py| {
            self.poll(py);
            self.close(py);
            let Some(f) = &self.factory else { return };
            let desc = if !self.status.is_empty() {
                self.status.clone()
            } else if count > 1 {
                format!("({}/{count}) {name}", index + 1)
            } else {
                name.to_string()
            };
            let made = (|| -> PyResult<Py<PyAny>> {
                let kw = PyDict::new(py);
                kw.set_item("total", total)?;
                kw.set_item("desc", desc)?;
                kw.set_item("unit", "obj")?;
                f.call(py, (), Some(&kw))
            })();
            match made {
                Ok(bar) => *lock(&self.bar) = Some(bar),
                // A broken progress callable must not stop the fit.
                Err(e) => e.write_unraisable(py, None),
            }
        });
    }

    /// Advances the bar by `k` objects.
    pub fn advance(&self, k: usize) {
        Python::attach(|py| {
            self.poll(py);
            if let Some(bar) = lock(&self.bar).as_ref() {
                if let Err(e) = bar.call_method1(py, "update", (k,)) {
                    e.write_unraisable(py, None);
                }
            }
        });
    }

    fn close(&self, py: Python<'_>) {
        if let Some(bar) = lock(&self.bar).take() {
            if let Err(e) = bar.call_method0(py, "close") {
                e.write_unraisable(py, None);
            }
        }
    }

    /// Closes the bar and keeps the tile's failures and warnings.
    pub fn finish(&self, report: &TileReport) {
        Python::attach(|py| self.close(py));
        lock(&self.failures).extend(report.failures.iter().map(|e| e.to_string()));
        lock(&self.warnings).extend(report.warnings.iter().cloned());
        *lock(&self.fit_seconds) += report.fit_seconds;
    }

    /// Closes the bar and keeps the tile's error.
    pub fn fail(&self, error: &Error) {
        Python::attach(|py| self.close(py));
        lock(&self.failures).push(error.to_string());
    }
}

impl Observer for PyObserver {
    fn tile_started(&self, index: usize, total: usize, name: &str, objects: usize) {
        self.start(index, total, name, objects);
    }
    fn convolved(&self, _seconds: f64) {}
    fn objects_done(&self, count: usize) {
        self.advance(count);
    }
    fn tile_finished(&self, _name: &str, report: &TileReport) {
        self.finish(report);
    }
    fn tile_failed(&self, _name: &str, error: &Error) {
        self.fail(error);
    }
}

/// A poisoned lock only means a panic elsewhere; the data (bars, lines) are still usable.
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The models a call works on: convolution and fit on `pool` (a `threads=N` cube) or the
/// global pool, refused once `stop` is set; `convolve: false` keeps the current models.
pub struct Guarded<'a> {
    pub inner: &'a mut (dyn Fitter + Send),
    pub pool: Option<&'a rayon::ThreadPool>,
    pub stop: Option<&'a AtomicBool>,
    pub convolve: bool,
}

impl Guarded<'_> {
    fn check(&self) -> Result<()> {
        match self.stop {
            Some(s) if s.load(Ordering::SeqCst) => Err(Error::Invalid("interrupted".into())),
            _ => Ok(()),
        }
    }
}

impl Fitter for Guarded<'_> {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn grid(&self) -> &Grid {
        self.inner.grid()
    }
    fn convolve(&mut self, psf: &Psf) -> Result<bool> {
        self.check()?;
        if !self.convolve {
            return Ok(false);
        }
        let inner = &mut *self.inner;
        match self.pool {
            Some(p) => p.install(|| inner.convolve(psf)),
            None => inner.convolve(psf),
        }
    }
    fn psf(&self) -> Option<&Psf> {
        self.inner.psf()
    }
    fn fit(&mut self, objects: &[Prepared]) -> Result<Vec<Vec<f32>>> {
        self.check()?;
        let inner = &mut *self.inner;
        match self.pool {
            Some(p) => p.install(|| inner.fit(objects)),
            None => inner.fit(objects),
        }
    }
    fn model(&self, k: usize) -> Result<Cow<'_, [f32]>> {
        self.inner.model(k)
    }
    fn default_chunk(&self) -> usize {
        self.inner.default_chunk()
    }
}
