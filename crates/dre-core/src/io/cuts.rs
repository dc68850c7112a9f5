//! Cut files (SPEC 2): one HDF5 group per object, named `EE_NNNN`, holding `obj` (float32,
//! background-subtracted image), `seg` (bool, as h5py writes numpy bool) and `rms` (float32).

use crate::error::{AtPath, Error, Result};
use crate::io::atomic::PendingFile;
use crate::io::chunks::{self, StoredChunks};
use crate::io::compression::Compression;
use hdf5::types::{FloatSize, TypeDescriptor};
use ndarray::ArrayView2;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Mutex;

/// One object's cut: three square images of `size` x `size` pixels, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Cut {
    /// Object name `EE_NNNN` (EXT_NUMBER, catalogue NUMBER): the group's name.
    pub name: String,
    /// Side in pixels (BOXSIZE, 128 as the original).
    pub size: usize,
    /// Background-subtracted science image, in the tile's units.
    pub obj: Vec<f32>,
    /// The object's cleaned segment: the pixels the fit uses.
    pub seg: Vec<bool>,
    /// Background RMS, in the units of `obj`.
    pub rms: Vec<f32>,
}

/// An open cut file.
pub struct CutReader {
    path: PathBuf,
    file: hdf5::File,
    names: Vec<String>,
    warnings: Mutex<BTreeSet<String>>,
}

/// The largest cut side read (pixels): cuts are BOXSIZE (128) wide; a corrupt dataspace may
/// claim anything, and its fill value would be read without a byte of data on disk.
const MAX_CUT_SIDE: usize = 4096;

/// Opens an HDF5 file read-only, with a message that says why it cannot be read: not an
/// HDF5 file, truncated, locked by another process, or otherwise unreadable.
pub(crate) fn open_h5(path: &Path) -> Result<hdf5::File> {
    if !path.is_file() {
        return Err(Error::file(path, "no such file"));
    }
    hdf5::File::open(path).map_err(|e| {
        let text = e.to_string();
        let number = |key: &str| -> Option<u64> {
            let rest = text.split(key).nth(1)?;
            rest.trim_start()
                .split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        };
        let why = if text.contains("truncated file") {
            match (number(" eof = "), number("stored_eof = ")) {
                (Some(have), Some(want)) => {
                    format!("truncated HDF5 file ({have} of its {want} bytes)")
                }
                _ => "truncated HDF5 file".to_string(),
            }
        } else if text.contains("signature not found") {
            "not an HDF5 file".to_string()
        } else if text.contains("unable to lock file") {
            "locked by another process (HDF5 file locking: is another run using it?)".to_string()
        } else {
            format!("unreadable HDF5 file (corrupted?): {text}")
        };
        Error::file(path, why)
    })
}

/// An HDF5 write or close error, said plainly: HDF5's message runs over a line with the
/// temporary's name, buffer addresses and a timestamp; the OS's reason is what matters.
pub(crate) fn h5_write_error(dest: &Path, e: hdf5::Error) -> Error {
    let text = e.to_string();
    let os = text
        .split_once("error message = '")
        .and_then(|(_, rest)| rest.split_once('\''))
        .map(|(m, _)| m.to_string());
    match os {
        Some(m) => Error::file(dest, format!("could not write the file completely: {m}")),
        None => Error::file(dest, format!("could not write the file: {text}")),
    }
}

/// The element type of a dataset, as h5py would name it (`float32`, `uint8`, `bool`).
fn element_type(d: &hdf5::Dataset) -> hdf5::Result<TypeDescriptor> {
    d.dtype()?.to_descriptor()
}

impl CutReader {
    /// Opens a cut file and lists its groups; objects are read one by one with
    /// [`CutReader::read`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = open_h5(&path)?;
        let mut names = file
            .member_names()
            .map_err(|e| Error::file(&path, format!("unreadable (corrupted?): {e}")))?;
        names.sort();
        Ok(CutReader {
            path,
            file,
            names,
            warnings: Mutex::new(BTreeSet::new()),
        })
    }

    /// The file's path, as given to [`CutReader::open`].
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Object names in sorted order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// What was read but is not as `make_cuts` writes it (float64 images, integer
    /// segments), each once per file, as `PATH: message` lines.
    pub fn warnings(&self) -> Vec<String> {
        let w = self.warnings.lock().unwrap_or_else(|e| e.into_inner());
        w.iter()
            .map(|m| format!("{}: {m}", self.path.display()))
            .collect()
    }

    fn warn(&self, msg: String) {
        self.warnings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(msg);
    }

    /// Reads one object; a missing or malformed dataset is an error of that object only.
    ///
    /// `obj` and `rms` are float32 (float64 is read as float32, with a warning); `seg` is
    /// bool (integers are read as non-zero = in the segment, with a warning). Any other
    /// type, a shape that is not one square image for all three, or a side above
    /// 4096 pixels (`MAX_CUT_SIDE`) is refused before any data is read.
    pub fn read(&self, name: &str) -> Result<Cut> {
        self.fetch(name)?.decode(&self.path)
    }

    /// Reads objects `names` as [`CutReader::read`] does, each result in its place: the
    /// stored chunks are fetched one object after another (HDF5 serialises every call),
    /// then inflated and converted on the thread pool.
    pub fn read_many(&self, names: &[String]) -> Vec<Result<Cut>> {
        use rayon::prelude::*;
        let fetched: Vec<Result<Fetched>> = names.iter().map(|n| self.fetch(n)).collect();
        fetched
            .into_par_iter()
            .map(|f| f.and_then(|f| f.decode(&self.path)))
            .collect()
    }

    /// Checks object `name`'s group and datasets and fetches their data, still compressed
    /// where that can be decoded off the HDF5 lock ([`chunks::fetch`]).
    fn fetch(&self, name: &str) -> Result<Fetched> {
        let err = |m: String| Error::object(&self.path, name, m);
        let corrupt = |what: &str, e: &dyn std::fmt::Display| {
            err(format!("{what} unreadable (corrupted file?): {e}"))
        };
        let group = self.file.group(name).map_err(|e| {
            if self.file.dataset(name).is_ok() {
                err("is a dataset, not a group holding obj, seg and rms".into())
            } else {
                corrupt("group", &e)
            }
        })?;
        let members = group.member_names().map_err(|e| corrupt("group", &e))?;
        let open = |ds: &str| -> Result<(hdf5::Dataset, TypeDescriptor, Vec<usize>)> {
            if !members.iter().any(|m| m == ds) {
                return Err(err(format!("no `{ds}` dataset")));
            }
            let d = group.dataset(ds).map_err(|e| {
                if group.group(ds).is_ok() {
                    err(format!("`{ds}` is a group, not a dataset"))
                } else {
                    corrupt(&format!("`{ds}`"), &e)
                }
            })?;
            let t = element_type(&d).map_err(|e| corrupt(&format!("`{ds}` type"), &e))?;
            let shape = d.shape();
            Ok((d, t, shape))
        };
        let (obj, obj_t, shape) = open("obj")?;
        let (rms, rms_t, rms_shape) = open("rms")?;
        let (seg, seg_t, seg_shape) = open("seg")?;

        if shape.len() != 2 || shape[0] != shape[1] {
            return Err(err(format!("obj has shape {shape:?}, not a square image")));
        }
        if rms_shape != shape || seg_shape != shape {
            return Err(err(format!(
                "obj {shape:?}, seg {seg_shape:?} and rms {rms_shape:?} differ in shape"
            )));
        }
        if shape[0] > MAX_CUT_SIDE {
            return Err(err(format!(
                "obj is {0} x {0} pixels, larger than any cut ({MAX_CUT_SIDE} at most)",
                shape[0]
            )));
        }
        for (ds, t) in [("obj", &obj_t), ("rms", &rms_t)] {
            match t {
                TypeDescriptor::Float(FloatSize::U4) => {}
                TypeDescriptor::Float(FloatSize::U8) => self.warn(format!(
                    "{ds} is float64, read as float32 (make_cuts writes float32)"
                )),
                t => return Err(err(format!("{ds} is {t}, expected float32 (or float64)"))),
            }
        }
        let seg_is_int = match &seg_t {
            TypeDescriptor::Boolean => false,
            TypeDescriptor::Integer(_) | TypeDescriptor::Unsigned(_) => true,
            t => {
                return Err(err(format!(
                    "seg is {t}, expected bool (or integers: non-zero in the segment)"
                )))
            }
        };
        if seg_is_int {
            self.warn(format!(
                "seg is {seg_t}, read as non-zero = in the segment (make_cuts writes bool)"
            ));
        }

        // A dataset of the very type read (native float32, HDF5's bool) is fetched as
        // stored, to decode off the lock; any other is read, and converted, by HDF5.
        let side = shape[0];
        let fetch = |d: &hdf5::Dataset, ds: &str, native: hdf5::Result<hdf5::Datatype>| match (
            d.dtype(),
            native,
        ) {
            (Ok(t), Ok(n)) if t == n => chunks::fetch(d, [side, side], t.size())
                .map_err(|m| corrupt(&format!("`{ds}`"), &m)),
            _ => Ok(None),
        };
        let read_f32 = |d: &hdf5::Dataset, ds: &str| -> Result<Stored<f32>> {
            if let Some(c) = fetch(d, ds, hdf5::Datatype::from_type::<f32>())? {
                return Ok(Stored::Chunks(c));
            }
            d.read_raw::<f32>()
                .map(Stored::Values)
                .map_err(|e| corrupt(&format!("`{ds}`"), &e))
        };
        let obj = read_f32(&obj, "obj")?;
        let rms = read_f32(&rms, "rms")?;
        let seg = if seg_is_int {
            let v = seg.read_raw::<i64>().map_err(|e| corrupt("`seg`", &e))?;
            Stored::Values(v.into_iter().map(|v| v != 0).collect())
        } else if let Some(c) = fetch(&seg, "seg", hdf5::Datatype::from_type::<bool>())? {
            Stored::Chunks(c)
        } else {
            Stored::Values(seg.read_raw::<bool>().map_err(|e| corrupt("`seg`", &e))?)
        };
        Ok(Fetched {
            name: name.to_string(),
            size: side,
            obj,
            seg,
            rms,
        })
    }
}

/// A dataset's data as fetched under the HDF5 lock: its stored chunks, to decode, or its
/// values as HDF5 read them (another layout or filter, a type it converts).
enum Stored<T> {
    Chunks(StoredChunks),
    Values(Vec<T>),
}

/// One object's datasets, checked and fetched, not yet decoded.
struct Fetched {
    name: String,
    size: usize,
    obj: Stored<f32>,
    seg: Stored<bool>,
    rms: Stored<f32>,
}

impl Fetched {
    /// The cut, its chunks inflated here (on whichever thread calls); a chunk that does not
    /// decode is an error of this object naming the dataset and the chunk.
    fn decode(self, path: &Path) -> Result<Cut> {
        let bytes = |ds: &str, c: StoredChunks| {
            c.decode().map_err(|m| {
                Error::object(
                    path,
                    &self.name,
                    format!("`{ds}` unreadable (corrupted file?): {m}"),
                )
            })
        };
        let f32s = |ds: &str, s: Stored<f32>| -> Result<Vec<f32>> {
            Ok(match s {
                Stored::Values(v) => v,
                Stored::Chunks(c) => bytes(ds, c)?
                    .chunks_exact(4)
                    .map(|b| f32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
            })
        };
        let obj = f32s("obj", self.obj)?;
        let rms = f32s("rms", self.rms)?;
        // HDF5's bool is a 1-byte enum, FALSE = 0 and TRUE = 1; numpy reads any other
        // byte as true.
        let seg = match self.seg {
            Stored::Values(v) => v,
            Stored::Chunks(c) => bytes("seg", c)?.iter().map(|&b| b != 0).collect(),
        };
        Ok(Cut {
            name: self.name,
            size: self.size,
            obj,
            seg,
            rms,
        })
    }
}

/// Writes a cut file whole or not at all: call [`CutWriter::finish`] to put it in place.
pub struct CutWriter {
    pending: PendingFile,
    file: hdf5::File,
    compression: Compression,
    /// Cuts to gzip together on the thread pool, then write in order.
    queue: Vec<Cut>,
    /// The batch being deflated on the thread pool while the caller cuts the next one.
    deflating: Option<mpsc::Receiver<Result<Deflated>>>,
}

/// Cuts deflated together on the thread pool (3 x 64 KiB each at the default box size);
/// make_cuts also makes them in batches of this size.
pub(crate) const CUT_BATCH: usize = 64;

/// A batch of cuts and their deflated `obj`, `seg` and `rms`.
type Deflated = Vec<(Cut, [Vec<u8>; 3])>;

/// The bytes of float32 values as HDF5 stores them (the file type is the native one).
#[cfg(test)]
pub(crate) fn f32_bytes(v: &[f32]) -> Vec<u8> {
    f32_as_bytes(v).to_vec()
}

/// The memory of float32 values as bytes, native order, without a copy.
pub(crate) fn f32_as_bytes(v: &[f32]) -> &[u8] {
    // SAFETY: f32 has no padding and no invalid bit pattern as bytes; u8's alignment is 1,
    // and the slice covers exactly the memory of `v`, borrowed for as long as `v`.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), std::mem::size_of_val(v)) }
}

/// Deflates a batch of cuts in parallel on the thread pool.
fn deflate_batch(batch: Vec<Cut>, compression: Compression, path: &Path) -> Result<Deflated> {
    use crate::io::compression::deflate;
    use rayon::prelude::*;
    batch
        .into_par_iter()
        .map(|c| {
            let level = compression.gzip_level::<f32>(c.size * c.size).unwrap_or(4);
            let z = |b: &[u8]| {
                deflate(b, level).map_err(|m| {
                    Error::file(path, format!("could not compress cut {}: {m}", c.name))
                })
            };
            let seg: Vec<u8> = c.seg.iter().map(|&b| u8::from(b)).collect();
            let packed = [z(f32_as_bytes(&c.obj))?, z(&seg)?, z(f32_as_bytes(&c.rms))?];
            Ok((c, packed))
        })
        .collect()
}

impl CutWriter {
    /// Starts the cut file `path` (written to a temporary beside it), every dataset
    /// compressed with `compression`.
    pub fn create(path: impl AsRef<Path>, compression: Compression) -> Result<Self> {
        let pending = PendingFile::new(path.as_ref())?;
        let file = pending
            .create(|tmp| hdf5::File::create(tmp).map_err(|e| h5_write_error(pending.dest(), e)))?;
        Ok(CutWriter {
            pending,
            file,
            compression,
            queue: Vec::new(),
            deflating: None,
        })
    }

    /// Writes one object as group `cut.name` holding `obj`, `seg` and `rms` (gzip-compressed
    /// cuts are queued and deflated on the thread pool, a batch at a time while the caller
    /// goes on, and written in order, at the latest by [`CutWriter::finish`]).
    pub fn add(&mut self, cut: Cut) -> Result<()> {
        let n = cut.size * cut.size;
        if self.compression.gzip_level::<f32>(n).is_none() {
            self.drain()?;
            return self.write_now(&cut);
        }
        if cut.obj.len() != n || cut.seg.len() != n || cut.rms.len() != n {
            return Err(Error::file(
                self.pending.dest(),
                format!("cut {} is not {1} x {1} pixels", cut.name, cut.size),
            ));
        }
        self.queue.push(cut);
        if self.queue.len() >= CUT_BATCH {
            self.flush()?;
        }
        Ok(())
    }

    /// Starts deflating the queued cuts on the thread pool, then writes the batch deflated
    /// before them, if any.
    fn flush(&mut self) -> Result<()> {
        let batch = std::mem::take(&mut self.queue);
        let next = (!batch.is_empty()).then(|| {
            let (tx, rx) = mpsc::channel();
            let (compression, path) = (self.compression, self.pending.dest().to_path_buf());
            rayon::spawn(move || {
                // The receiver is gone only when the writer was dropped on an error.
                let _ = tx.send(deflate_batch(batch, compression, &path));
            });
            rx
        });
        let previous = std::mem::replace(&mut self.deflating, next);
        match previous {
            Some(rx) => self.write_deflated(rx),
            None => Ok(()),
        }
    }

    /// Deflates and writes every cut queued so far.
    fn drain(&mut self) -> Result<()> {
        self.flush()?;
        match self.deflating.take() {
            Some(rx) => self.write_deflated(rx),
            None => Ok(()),
        }
    }

    /// Waits for a deflated batch and writes it.
    fn write_deflated(&mut self, rx: mpsc::Receiver<Result<Deflated>>) -> Result<()> {
        use crate::io::compression::write_deflated;
        let path = self.pending.dest().to_path_buf();
        let stopped = || Error::file(&path, "the compression of a batch of cuts stopped");
        // On a worker of the pool (a caller inside `install`), run queued jobs while waiting:
        // the batch may wait in this very thread's queue, and a pool of one would block.
        let batch = loop {
            match rx.try_recv() {
                Ok(b) => break b,
                Err(mpsc::TryRecvError::Disconnected) => return Err(stopped()),
                Err(mpsc::TryRecvError::Empty) => {
                    if rayon::yield_now() != Some(rayon::Yield::Executed) {
                        // Not on a worker, or the batch is running elsewhere.
                        break rx.recv().map_err(|_| stopped())?;
                    }
                }
            }
        }?;
        let compression = self.compression;
        for (c, [obj, seg, rms]) in batch {
            let shape = [c.size, c.size];
            let g = self
                .file
                .create_group(&c.name)
                .map_err(|e| h5_write_error(&path, e))?;
            write_deflated::<f32>(&g, "obj", &shape, compression, &obj)
                .and_then(|()| write_deflated::<bool>(&g, "seg", &shape, compression, &seg))
                .and_then(|()| write_deflated::<f32>(&g, "rms", &shape, compression, &rms))
                .map_err(|e| h5_write_error(&path, e))?;
        }
        Ok(())
    }

    /// Writes one cut through HDF5's own filters.
    fn write_now(&mut self, cut: &Cut) -> Result<()> {
        let path = self.pending.dest().to_path_buf();
        let shape = (cut.size, cut.size);
        let g = self
            .file
            .create_group(&cut.name)
            .map_err(|e| h5_write_error(&path, e))?;
        let write_f32 = |name: &str, v: &[f32]| -> Result<()> {
            let view = ArrayView2::from_shape(shape, v).at(&path)?;
            self.compression
                .apply(g.new_dataset_builder())
                .with_data(view)
                .create(name)
                .map_err(|e| h5_write_error(&path, e))
                .map(drop)
        };
        write_f32("obj", &cut.obj)?;
        let seg = ArrayView2::from_shape(shape, &cut.seg[..]).at(&path)?;
        self.compression
            .apply(g.new_dataset_builder())
            .with_data(seg)
            .create("seg")
            .map_err(|e| h5_write_error(&path, e))?;
        write_f32("rms", &cut.rms)
    }

    /// Closes the file and renames it into place.
    pub fn finish(mut self) -> Result<()> {
        self.drain()?;
        let CutWriter { pending, file, .. } = self;
        file.close()
            .map_err(|e| h5_write_error(pending.dest(), e))?;
        pending.commit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer on the only worker of a pool (make_cuts' library call inside `install`):
    /// the batches deflated behind it run on that same thread instead of waiting for ever.
    #[test]
    fn a_pool_of_one_thread_writes_every_batch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("one_cuts.h5");
        let (tx, rx) = mpsc::channel();
        let p = path.clone();
        std::thread::spawn(move || {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .unwrap();
            let written = pool.install(|| {
                let mut w = CutWriter::create(&p, Compression::Medium)?;
                for k in 0..3 * CUT_BATCH + 5 {
                    w.add(Cut {
                        name: format!("00_{k:04}"),
                        size: 8,
                        obj: vec![k as f32; 64],
                        seg: vec![true; 64],
                        rms: vec![1.0; 64],
                    })?;
                }
                w.finish()
            });
            let _ = tx.send(written);
        });
        let written = rx.recv_timeout(std::time::Duration::from_secs(60));
        written
            .expect("the writer blocked its only thread")
            .unwrap();
        let r = CutReader::open(&path).unwrap();
        assert_eq!(r.names().len(), 3 * CUT_BATCH + 5);
    }

    #[test]
    fn cuts_round_trip_with_every_compression() {
        let dir = tempfile::tempdir().unwrap();
        for c in [
            Compression::None,
            Compression::Low,
            Compression::Medium,
            Compression::High,
        ] {
            let path = dir.path().join(format!("{c:?}_cuts.h5"));
            let cut = Cut {
                name: "00_0007".into(),
                size: 4,
                obj: (0..16).map(|i| i as f32 * 0.5).collect(),
                seg: (0..16).map(|i| i % 3 == 0).collect(),
                rms: vec![1.0; 16],
            };
            let mut w = CutWriter::create(&path, c).unwrap();
            w.add(cut.clone()).unwrap();
            w.finish().unwrap();
            let r = CutReader::open(&path).unwrap();
            assert_eq!(r.names(), ["00_0007"]);
            assert_eq!(r.read("00_0007").unwrap(), cut);
        }
    }

    /// Cuts deflated on the thread pool (libdeflate) are, in data, the file HDF5's own
    /// deflate filter (zlib) writes: the same groups, types, shapes, chunks, filter and
    /// level and values, read back through HDF5's zlib, at both levels, for more cuts than
    /// one batch; and the file is not larger than 102 % of HDF5's.
    #[test]
    fn parallel_gzip_writes_the_data_hdf5_writes() {
        let dir = tempfile::tempdir().unwrap();
        let cuts: Vec<Cut> = (0..CUT_BATCH + 3)
            .map(|k| Cut {
                name: format!("00_{k:04}"),
                size: 16,
                obj: (0..256)
                    .map(|i| ((i * 7 + k) % 13) as f32 * 0.25 - 1.0 + (i as f32).sin() * 1e-3)
                    .collect(),
                seg: (0..256).map(|i| (i + k) % 5 < 2).collect(),
                rms: (0..256).map(|i| 1.0 + (i % 3) as f32).collect(),
            })
            .collect();
        for c in [Compression::Medium, Compression::High] {
            let ours = dir.path().join(format!("{c:?}_ours.h5"));
            let mut w = CutWriter::create(&ours, c).unwrap();
            for cut in &cuts {
                w.add(cut.clone()).unwrap();
            }
            w.finish().unwrap();

            // Every dataset through HDF5's filters.
            let reference = dir.path().join(format!("{c:?}_hdf5.h5"));
            let mut w = CutWriter::create(&reference, c).unwrap();
            for cut in &cuts {
                w.write_now(cut).unwrap();
            }
            w.finish().unwrap();

            let level = if c == Compression::Medium { 4 } else { 9 };
            let (a, b) = (
                hdf5::File::open(&ours).unwrap(),
                hdf5::File::open(&reference).unwrap(),
            );
            assert_eq!(a.member_names().unwrap(), b.member_names().unwrap());
            for cut in &cuts {
                for ds in ["obj", "seg", "rms"] {
                    let path = format!("{}/{ds}", cut.name);
                    let (x, y) = (a.dataset(&path).unwrap(), b.dataset(&path).unwrap());
                    assert_eq!(x.filters(), [hdf5::filters::Filter::Deflate(level)]);
                    assert_eq!(x.filters(), y.filters());
                    assert_eq!(x.chunk(), Some(vec![16, 16]));
                    assert_eq!(x.chunk(), y.chunk());
                    assert_eq!(x.shape(), y.shape());
                    assert_eq!(
                        x.dtype().unwrap().to_descriptor().unwrap(),
                        y.dtype().unwrap().to_descriptor().unwrap()
                    );
                    // The stored values, byte for byte, as HDF5 inflates them.
                    let (u, v) = if ds == "seg" {
                        let bytes = |d: &hdf5::Dataset| -> Vec<u8> {
                            d.read_raw::<bool>()
                                .unwrap()
                                .into_iter()
                                .map(u8::from)
                                .collect()
                        };
                        (bytes(&x), bytes(&y))
                    } else {
                        (
                            f32_bytes(&x.read_raw::<f32>().unwrap()),
                            f32_bytes(&y.read_raw::<f32>().unwrap()),
                        )
                    };
                    assert_eq!(u, v, "{path}");
                }
            }
            drop((a, b));
            let (size, hdf5_size) = (
                std::fs::metadata(&ours).unwrap().len(),
                std::fs::metadata(&reference).unwrap().len(),
            );
            assert!(
                size * 100 <= hdf5_size * 102,
                "{c:?}: {size} bytes, HDF5 {hdf5_size}"
            );
            let r = CutReader::open(&ours).unwrap();
            assert_eq!(r.names().len(), cuts.len());
            for cut in &cuts {
                assert_eq!(&r.read(&cut.name).unwrap(), cut);
            }
        }
    }
}
