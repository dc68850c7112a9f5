//! The GPU backend on the CUDA driver API (cudarc, libcuda loaded at run time, kernels
//! compiled at run time by NVRTC).
//!
//! The raw cube is uploaded once and stays on the device with a convolved copy beside it;
//! [`Fitter::convolve`] recomputes the copy only when the PSF changes. A batch of objects
//! is cut into launches of [`GpuFitter::batch`] objects that alternate between two streams,
//! each with its own device buffers and pinned host buffer: while the device fits launch
//! i, the host packs and uploads launch i+1, and launch i's chi cubes come back on their
//! own stream.

use super::kernels::{self, CONV_ROWS, CONV_TILE, FIT_THREADS, SOURCE};
use super::pack::Packed;
use crate::error::{Error, Result};
use crate::fit::backend::Fitter;
use crate::fit::kernel::Prepared;
use crate::io::psf::Psf;
use crate::model::cube::{Grid, ModelCube};
use cudarc::driver::sys::{CUdevice_attribute, CUfunction_attribute};
use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, DeviceRepr, LaunchConfig, PinnedHostSlice,
    PushKernelArg,
};
use cudarc::nvrtc::{compile_ptx_with_opts, CompileError, CompileOptions, Ptx};
use std::borrow::Cow;
use std::fmt::Display;
use std::sync::Arc;

/// What `GpuFitter::new` says when there is no driver.
pub const NO_DRIVER: &str = "no CUDA driver found (libcuda.so could not be loaded)";
/// What `GpuFitter::new` says when there is no NVRTC library.
pub const NO_NVRTC: &str =
    "no NVRTC library found (libnvrtc.so, from a CUDA toolkit or the nvidia-cuda-nvrtc-cu12 wheel)";

/// Shared memory a block may use without opting in.
const DEFAULT_SMEM: usize = 48 * 1024;

/// Objects per launch unless told otherwise.
pub const DEFAULT_BATCH: usize = 1024;

fn err(what: &str, e: impl Display) -> Error {
    let msg = e.to_string();
    let one: Vec<&str> = msg
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    Error::Device(format!("GPU: {what}: {}", one.join("; ")))
}

/// An internal state the code guarantees, reported rather than panicking if ever broken.
fn lost(what: &str) -> Error {
    Error::Device(format!("GPU: internal error: {what} is missing"))
}

fn no_cube() -> Error {
    Error::Device("GPU: no cube loaded".into())
}

/// A device buffer that grows (to a power of two) as needed.
struct Buf<T>(Option<CudaSlice<T>>);

impl<T: DeviceRepr> Buf<T> {
    fn ensure(&mut self, stream: &Arc<CudaStream>, n: usize) -> Result<&mut CudaSlice<T>> {
        if self.0.as_ref().is_none_or(|b| b.len() < n) {
            self.0 = None; // free first
                           // SAFETY: every buffer is written (upload or kernel) before it is read.
            let b = unsafe { stream.alloc::<T>(n.max(1).next_power_of_two()) }
                .map_err(|e| err("device allocation", e))?;
            self.0 = Some(b);
        }
        self.0.as_mut().ok_or_else(|| lost("a device buffer"))
    }

    /// The buffer, once allocated.
    fn get(&self) -> Result<&CudaSlice<T>> {
        self.0.as_ref().ok_or_else(|| lost("a device buffer"))
    }

    fn upload(&mut self, stream: &Arc<CudaStream>, src: &[T]) -> Result<()> {
        let dst = self.ensure(stream, src.len())?;
        if !src.is_empty() {
            stream.memcpy_htod(src, dst).map_err(|e| err("upload", e))?;
        }
        Ok(())
    }
}

/// One of the two launch pipelines.
struct Slot {
    stream: Arc<CudaStream>,
    pix: Buf<u32>,
    dat: Buf<f32>,
    r2: Buf<f32>,
    start: Buf<u32>,
    flux: Buf<f32>,
    chi: Buf<f32>,
    host: Option<PinnedHostSlice<f32>>,
    /// Objects of the launch in flight, whose chi cubes are (being) copied to `host`.
    pending: Option<usize>,
}

/// The cube on the device.
struct DeviceCube {
    grid: Grid,
    raw: CudaSlice<f32>,
    conv: CudaSlice<f32>,
    psf: Option<Psf>,
    fit_smem: bool,
}

/// Convolution and fit on one CUDA device, through the [`Fitter`] trait: open it with the
/// cube ([`GpuFitter::open`]), then convolve per tile and fit batches of objects.
pub struct GpuFitter {
    ctx: Arc<CudaContext>,
    main: Arc<CudaStream>,
    slots: [Slot; 2],
    conv_smem: CudaFunction,
    conv_global: CudaFunction,
    fit_smem: CudaFunction,
    fit_global: CudaFunction,
    name: String,
    sm_count: u32,
    smem_optin: usize,
    cube: Option<DeviceCube>,
    grid: Grid,
    batch: usize,
    packed: Packed,
}

impl std::fmt::Debug for GpuFitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuFitter")
            .field("device", &self.name)
            .field("batch", &self.batch)
            .finish_non_exhaustive()
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}

fn compile(cc: (i32, i32)) -> Result<Ptx> {
    let opts = |arch: Option<String>| CompileOptions {
        // Round s*m, d - s*m, ... as written, like the CPU kernel (the convolution uses
        // explicit fused multiply-adds).
        fmad: Some(false),
        options: arch
            .into_iter()
            .map(|a| format!("--gpu-architecture={a}"))
            .collect(),
        ..Default::default()
    };
    let describe = |e: CompileError| match e {
        CompileError::CompileError { log, .. } => log.to_string_lossy().into_owned(),
        other => other.to_string(),
    };
    // The device's own architecture, else NVRTC's default (an NVRTC older than the device).
    compile_ptx_with_opts(SOURCE, opts(Some(format!("compute_{}{}", cc.0, cc.1)))).or_else(
        |first| {
            compile_ptx_with_opts(SOURCE, opts(None)).map_err(|e| {
                err(
                    "NVRTC could not compile the kernels",
                    format!("{}; {}", describe(first), describe(e)),
                )
            })
        },
    )
}

impl GpuFitter {
    /// Opens CUDA device `ordinal`, compiles the kernels and uploads `cube`. Fails with a
    /// one-line [`Error::Device`] (never a panic) when there is no driver, no NVRTC, no such
    /// device, too little device memory, or the kernels do not build or load.
    pub fn open(ordinal: usize, cube: &ModelCube) -> Result<GpuFitter> {
        let mut g = Self::new(ordinal, cube.grid.clone())?;
        g.load_cube(cube)?;
        Ok(g)
    }

    /// Opens CUDA device `ordinal` and compiles the kernels. Fails with a one-line message
    /// (never a panic) when there is no driver, no NVRTC, no device, or the kernels do not
    /// build or load.
    fn new(ordinal: usize, grid: Grid) -> Result<GpuFitter> {
        // SAFETY: only tries to dlopen the libraries.
        if !unsafe { cudarc::driver::sys::is_culib_present() } {
            return Err(Error::Device(NO_DRIVER.into()));
        }
        if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
            return Err(Error::Device(NO_NVRTC.into()));
        }
        // cudarc panics on a missing driver symbol (a driver older than the API it uses).
        std::panic::catch_unwind(|| Self::init(ordinal, grid)).unwrap_or_else(|p| {
            Err(err(
                "CUDA initialisation failed (driver too old?)",
                panic_message(&*p),
            ))
        })
    }

    fn init(ordinal: usize, grid: Grid) -> Result<GpuFitter> {
        let count = CudaContext::device_count().map_err(|e| err("no CUDA device", e))?;
        if count <= ordinal as i32 {
            return Err(Error::Device(format!(
                "GPU: no CUDA device {ordinal} ({count} device(s) found)"
            )));
        }
        let ctx = CudaContext::new(ordinal).map_err(|e| err("opening the device", e))?;
        let name = ctx.name().unwrap_or_else(|_| "CUDA device".into());
        let cc = ctx
            .compute_capability()
            .map_err(|e| err("compute capability", e))?;
        let attr = |a| ctx.attribute(a).map_err(|e| err("device attribute", e));
        let sm_count = attr(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)?;
        let optin =
            attr(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN)?;
        let ptx = compile(cc)?;
        let module = ctx
            .load_module(ptx)
            .map_err(|e| err("loading the kernels (a driver older than NVRTC?)", e))?;
        let f = |n: &str| module.load_function(n).map_err(|e| err(n, e));
        // Streams before any allocation: cudarc then tracks the buffers' uses across them.
        let stream = || ctx.new_stream().map_err(|e| err("creating a stream", e));
        let slot = |stream: Arc<CudaStream>| Slot {
            stream,
            pix: Buf(None),
            dat: Buf(None),
            r2: Buf(None),
            start: Buf(None),
            flux: Buf(None),
            chi: Buf(None),
            host: None,
            pending: None,
        };
        Ok(GpuFitter {
            main: stream()?,
            slots: [slot(stream()?), slot(stream()?)],
            conv_smem: f(kernels::CONV_SMEM)?,
            conv_global: f(kernels::CONV_GLOBAL)?,
            fit_smem: f(kernels::FIT_SMEM)?,
            fit_global: f(kernels::FIT_GLOBAL)?,
            name: format!("{name} (compute {}.{}, {sm_count} SMs)", cc.0, cc.1),
            sm_count: sm_count.max(1) as u32,
            smem_optin: optin.max(DEFAULT_SMEM as i32) as usize,
            cube: None,
            grid,
            batch: DEFAULT_BATCH,
            packed: Packed::default(),
            ctx,
        })
    }

    /// The device, in words.
    pub fn device_name(&self) -> &str {
        &self.name
    }

    /// Objects per kernel launch.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Sets the objects per kernel launch (at least 1); for benchmarks and tests.
    pub fn set_batch(&mut self, n: usize) {
        self.batch = n.max(1);
    }

    /// Uploads the (unconvolved) cube; it stays on the device with room for a convolved copy.
    fn load_cube(&mut self, cube: &ModelCube) -> Result<()> {
        self.cube = None;
        cube.grid.check_data(&cube.data)?;
        let bytes = cube.data.len() * 4;
        let (free, _) = self.ctx.mem_get_info().map_err(|e| err("memory info", e))?;
        if 2 * bytes + (64 << 20) > free {
            return Err(Error::Device(format!(
                "GPU: the cube takes {} MiB, twice that is needed and {} MiB are free",
                bytes >> 20,
                free >> 20
            )));
        }
        let raw = self
            .main
            .clone_htod(&cube.data)
            .map_err(|e| err("uploading the cube", e))?;
        // SAFETY: written by the convolution before any read.
        let conv = unsafe { self.main.alloc::<f32>(cube.data.len().max(1)) }
            .map_err(|e| err("device allocation", e))?;
        let smem = cube.grid.stamp_len() * 4;
        let fit_smem = smem <= self.smem_optin;
        if fit_smem && smem > DEFAULT_SMEM {
            self.fit_smem
                .set_attribute(
                    CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                    smem as i32,
                )
                .map_err(|e| err("shared memory of the fit kernel", e))?;
        }
        self.main
            .synchronize()
            .map_err(|e| err("uploading the cube", e))?;
        self.cube = Some(DeviceCube {
            grid: cube.grid.clone(),
            raw,
            conv,
            psf: None,
            fit_smem,
        });
        Ok(())
    }

    /// Convolves the cube with `psf` on the device, unless it already is: true when it
    /// convolved. Waits for the convolution to finish.
    fn convolve_psf(&mut self, psf: &Psf) -> Result<bool> {
        let cube = self.cube.as_mut().ok_or_else(no_cube)?;
        if cube.psf.as_ref() == Some(psf) {
            return Ok(false);
        }
        let b = cube.grid.boxsize;
        psf.check_shape()?;
        if psf.width > b || psf.height > b {
            return Err(Error::Invalid(format!(
                "PSF of {}x{} pixels is larger than the {b}x{b} model stamps",
                psf.height, psf.width
            )));
        }
        cube.psf = None;
        let n_models = cube.grid.n_models();
        if n_models == 0 {
            cube.psf = Some(psf.clone());
            return Ok(true);
        }
        let psf_dev = self
            .main
            .clone_htod(&psf.data)
            .map_err(|e| err("uploading the PSF", e))?;
        let smem = kernels::conv_smem_bytes(psf.width, psf.height);
        let f = if smem <= DEFAULT_SMEM {
            &self.conv_smem
        } else if smem <= self.smem_optin {
            self.conv_smem
                .set_attribute(
                    CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                    smem as i32,
                )
                .map_err(|e| err("shared memory of the convolution kernel", e))?;
            &self.conv_smem
        } else {
            &self.conv_global
        };
        let shared = if std::ptr::eq(f, &self.conv_smem) {
            smem
        } else {
            0
        };
        let tiles = b.div_ceil(CONV_TILE as usize);
        let cfg = LaunchConfig {
            grid_dim: (n_models as u32, (tiles * tiles) as u32, 1),
            block_dim: (CONV_TILE, CONV_ROWS, 1),
            shared_mem_bytes: shared as u32,
        };
        let (bi, pw, ph) = (b as i32, psf.width as i32, psf.height as i32);
        let mut launch = self.main.launch_builder(f);
        launch
            .arg(&cube.raw)
            .arg(&mut cube.conv)
            .arg(&bi)
            .arg(&psf_dev)
            .arg(&pw)
            .arg(&ph);
        // SAFETY: the arguments match `dre_conv_*`; raw and conv hold n_models stamps of b*b.
        unsafe { launch.launch(cfg) }.map_err(|e| err("convolution kernel", e))?;
        self.main
            .synchronize()
            .map_err(|e| err("convolution kernel", e))?;
        cube.psf = Some(psf.clone());
        Ok(true)
    }

    /// Convolved model `k`, copied back (for mosaics).
    fn model_host(&self, k: usize) -> Result<Vec<f32>> {
        let cube = self.convolved_cube()?;
        let stamp = cube.grid.stamp_len();
        if k >= cube.grid.n_models() {
            return Err(Error::Invalid(format!("no model {k}")));
        }
        self.main
            .clone_dtoh(&cube.conv.slice(k * stamp..(k + 1) * stamp))
            .map_err(|e| err("download", e))
    }

    /// The whole convolved cube, copied back (for tests).
    pub fn convolved(&self) -> Result<Vec<f32>> {
        let cube = self.convolved_cube()?;
        let n = cube.grid.n_models() * cube.grid.stamp_len();
        if n == 0 {
            return Ok(Vec::new());
        }
        self.main
            .clone_dtoh(&cube.conv.slice(0..n))
            .map_err(|e| err("download", e))
    }

    fn convolved_cube(&self) -> Result<&DeviceCube> {
        match &self.cube {
            Some(c) if c.psf.is_some() => Ok(c),
            Some(_) => Err(Error::Device("GPU: the cube is not convolved yet".into())),
            None => Err(no_cube()),
        }
    }

    /// Chi cubes of `objects` against every convolved model, as [`crate::fit::kernel::fit_batch`]:
    /// `result[j]` is object j's cube in C order.
    fn fit_objects(&mut self, objects: &[Prepared]) -> Result<Vec<Vec<f32>>> {
        self.convolved_cube()?;
        let launches: Vec<&[Prepared]> = objects.chunks(self.batch).collect();
        let mut out = Vec::with_capacity(objects.len());
        let result = (|| {
            for (i, objs) in launches.iter().enumerate() {
                if i >= 2 {
                    self.collect(i % 2, &mut out)?;
                }
                self.submit(i % 2, objs)?;
            }
            for i in launches.len().saturating_sub(2)..launches.len() {
                self.collect(i % 2, &mut out)?;
            }
            Ok(())
        })();
        if let Err(e) = result {
            // Leave no launch pending for the next call.
            for s in &mut self.slots {
                s.pending = None;
                let _ = s.stream.synchronize();
            }
            return Err(e);
        }
        Ok(out)
    }

    /// Packs and uploads a launch on slot `si`, starts the kernel and the copy back.
    fn submit(&mut self, si: usize, objects: &[Prepared]) -> Result<()> {
        let cube = self.cube.as_ref().ok_or_else(no_cube)?;
        let (n_models, stamp) = (cube.grid.n_models(), cube.grid.stamp_len());
        self.packed.fill(objects, stamp)?;
        let p = &self.packed;
        let n_obj = p.n_objects();
        let slot = &mut self.slots[si];
        debug_assert!(slot.pending.is_none());
        let s = slot.stream.clone();
        slot.pix.upload(&s, &p.pix)?;
        slot.dat.upload(&s, &p.dat)?;
        slot.r2.upload(&s, &p.r2)?;
        slot.start.upload(&s, &p.start)?;
        slot.flux.upload(&s, &p.flux)?;
        let n_out = n_obj * n_models;
        slot.chi.ensure(&s, n_out)?;
        if slot.host.as_ref().is_none_or(|h| h.len() < n_out) {
            slot.host = None;
            // SAFETY: the kernel's output is copied in before it is read.
            let h = unsafe { self.ctx.alloc_pinned_with_flags::<f32>(n_out.max(1), 0) }
                .map_err(|e| err("pinned host allocation", e))?;
            slot.host = Some(h);
        }
        slot.pending = Some(n_obj);
        if n_out == 0 {
            return Ok(());
        }
        let warps = (FIT_THREADS / 32) as usize;
        let target = 4 * self.sm_count as usize;
        let gy = target
            .div_ceil(n_models)
            .clamp(1, n_obj.div_ceil(warps).clamp(1, 65535));
        let (f, shared) = if cube.fit_smem {
            (&self.fit_smem, stamp * 4)
        } else {
            (&self.fit_global, 0)
        };
        let cfg = LaunchConfig {
            grid_dim: (n_models as u32, gy as u32, 1),
            block_dim: (FIT_THREADS, 1, 1),
            shared_mem_bytes: shared as u32,
        };
        let (nm, st, no) = (n_models as u32, stamp as u32, n_obj as u32);
        let chi = slot.chi.0.as_mut().ok_or_else(|| lost("the chi buffer"))?;
        let mut launch = s.launch_builder(f);
        launch
            .arg(&cube.conv)
            .arg(&nm)
            .arg(&st)
            .arg(slot.pix.get()?)
            .arg(slot.dat.get()?)
            .arg(slot.r2.get()?)
            .arg(slot.start.get()?)
            .arg(slot.flux.get()?)
            .arg(&no)
            .arg(&mut *chi);
        // SAFETY: the arguments match `dre_fit_*`; every pixel index is < stamp (packed
        // from objects prepared for this stamp size) and chi holds n_obj * n_models.
        unsafe { launch.launch(cfg) }.map_err(|e| err("fit kernel", e))?;
        let host = slot
            .host
            .as_mut()
            .ok_or_else(|| lost("the pinned buffer"))?;
        s.memcpy_dtoh(&chi.slice(0..n_out), host)
            .map_err(|e| err("download", e))?;
        Ok(())
    }

    /// Waits for slot `si`'s launch and appends its chi cubes to `out`.
    fn collect(&mut self, si: usize, out: &mut Vec<Vec<f32>>) -> Result<()> {
        let n_models = self.cube.as_ref().ok_or_else(no_cube)?.grid.n_models();
        let slot = &mut self.slots[si];
        let Some(n_obj) = slot.pending.take() else {
            return Ok(());
        };
        let host = slot
            .host
            .as_ref()
            .ok_or_else(|| lost("the pinned buffer"))?;
        let h = host.as_slice().map_err(|e| err("fit kernel", e))?;
        if n_models == 0 {
            out.extend((0..n_obj).map(|_| Vec::new()));
        } else {
            out.extend(
                h[..n_obj * n_models]
                    .chunks_exact(n_models)
                    .map(<[f32]>::to_vec),
            );
        }
        Ok(())
    }
}

impl Fitter for GpuFitter {
    fn describe(&self) -> String {
        format!("GPU {}", self.name)
    }

    fn grid(&self) -> &Grid {
        &self.grid
    }

    fn convolve(&mut self, psf: &Psf) -> Result<bool> {
        self.convolve_psf(psf)
    }

    fn psf(&self) -> Option<&Psf> {
        self.cube.as_ref()?.psf.as_ref()
    }

    fn fit(&mut self, objects: &[Prepared]) -> Result<Vec<Vec<f32>>> {
        self.fit_objects(objects)
    }

    fn model(&self, k: usize) -> Result<Cow<'_, [f32]>> {
        self.model_host(k).map(Cow::Owned)
    }

    fn default_chunk(&self) -> usize {
        4096
    }
}
