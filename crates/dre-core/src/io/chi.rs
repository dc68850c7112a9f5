//! Chi files: one float32 dataset `EE_NNNN` of shape (NINDEX, NAXRAT, NPOSANG, NLOGH) per
//! fitted object, compressed as the cut files are. Written whole or not at all.

use crate::error::{AtPath, Error, Result};
use crate::io::atomic::PendingFile;
use crate::io::compression::Compression;
use crate::io::cuts::{h5_write_error, open_h5};
use hdf5::types::TypeDescriptor;
use ndarray::ArrayView4;
use std::path::Path;

/// Writes a chi file whole or not at all: dropped without [`ChiWriter::finish`], nothing
/// is left behind.
pub struct ChiWriter {
    pending: PendingFile,
    file: hdf5::File,
    compression: Compression,
    shape: [usize; 4],
    /// Chi cubes to gzip together on the thread pool, then write in order.
    queue: Vec<(String, Vec<f32>)>,
}

/// Chi cubes deflated together on the thread pool (as many as a fit pass gives by default).
const CHI_BATCH: usize = 64;

impl ChiWriter {
    /// Starts the chi file `path` (written to a temporary beside it) for cubes of grid
    /// shape `shape` (NINDEX, NAXRAT, NPOSANG, NLOGH).
    pub fn create(
        path: impl AsRef<Path>,
        shape: [usize; 4],
        compression: Compression,
    ) -> Result<Self> {
        let pending = PendingFile::new(path.as_ref())?;
        let file = pending
            .create(|tmp| hdf5::File::create(tmp).map_err(|e| h5_write_error(pending.dest(), e)))?;
        Ok(ChiWriter {
            pending,
            file,
            compression,
            shape,
            queue: Vec::new(),
        })
    }

    /// Adds object `name`'s chi cube (flat, C order, the length of `shape`'s product);
    /// gzip-compressed cubes are queued, deflated on the thread pool and written in order, at
    /// the latest by [`ChiWriter::finish`].
    pub fn add(&mut self, name: &str, chi: &[f32]) -> Result<()> {
        let dest = self.pending.dest();
        let [a, b, c, d] = self.shape;
        ArrayView4::from_shape((a, b, c, d), chi).at(dest)?;
        if self.compression.gzip_level::<f32>(chi.len()).is_some() {
            self.queue.push((name.to_string(), chi.to_vec()));
            if self.queue.len() >= CHI_BATCH {
                self.flush()?;
            }
            return Ok(());
        }
        self.flush()?;
        let dest = self.pending.dest();
        let view = ArrayView4::from_shape((a, b, c, d), chi).at(dest)?;
        self.compression
            .apply(self.file.new_dataset_builder())
            .with_data(view)
            .create(name)
            .map_err(|e| h5_write_error(dest, e))?;
        Ok(())
    }

    /// Deflates the queued chi cubes on the thread pool, then writes them in order.
    fn flush(&mut self) -> Result<()> {
        use crate::io::compression::{deflate, write_deflated};
        use crate::io::cuts::f32_as_bytes;
        use rayon::prelude::*;
        let queue = std::mem::take(&mut self.queue);
        let dest = self.pending.dest().to_path_buf();
        let compression = self.compression;
        let packed = queue
            .par_iter()
            .map(|(name, chi)| {
                let level = compression.gzip_level::<f32>(chi.len()).unwrap_or(4);
                deflate(f32_as_bytes(chi), level).map_err(|m| {
                    Error::file(&dest, format!("could not compress chi cube {name}: {m}"))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        for ((name, _), z) in queue.iter().zip(packed) {
            write_deflated::<f32>(&self.file, name, &self.shape, compression, &z)
                .map_err(|e| h5_write_error(&dest, e))?;
        }
        Ok(())
    }

    /// Closes the file and renames it into place.
    pub fn finish(mut self) -> Result<()> {
        self.flush()?;
        let ChiWriter { pending, file, .. } = self;
        file.close()
            .map_err(|e| h5_write_error(pending.dest(), e))?;
        pending.commit()
    }
}

/// The most values of one chi cube read (2^27 models): a corrupt dataspace may claim
/// anything, and its fill value would be read without a byte of data on disk.
const MAX_CHI_VALUES: usize = 1 << 27;

/// Reads one object's chi cube (flat, C order) and its shape: a float32 (or float64, read
/// as float32) dataset of 4 dimensions (NINDEX, NAXRAT, NPOSANG, NLOGH); anything else is
/// one error naming the file and the object.
pub fn read_chi(path: impl AsRef<Path>, name: &str) -> Result<(Vec<f32>, Vec<usize>)> {
    let path = path.as_ref();
    let f = open_h5(path)?;
    let err = |m: String| Error::object(path, name, m);
    let names = f
        .member_names()
        .map_err(|e| Error::file(path, format!("unreadable (corrupted?): {e}")))?;
    if !names.iter().any(|n| n == name) {
        return Err(err("no chi cube of this object in the file".into()));
    }
    let corrupt = |e: hdf5::Error| err(format!("unreadable (corrupted file?): {e}"));
    let ds = f.dataset(name).map_err(|e| match f.group(name) {
        Ok(_) => err("is a group, not a chi cube dataset".into()),
        Err(_) => corrupt(e),
    })?;
    let shape = ds.shape();
    match ds
        .dtype()
        .and_then(|t| t.to_descriptor())
        .map_err(corrupt)?
    {
        TypeDescriptor::Float(_) => {}
        t => return Err(err(format!("chi cube is {t}, expected float32"))),
    }
    if shape.len() != 4 {
        return Err(err(format!(
            "chi cube has shape {shape:?}, expected 4 axes (NINDEX, NAXRAT, NPOSANG, NLOGH)"
        )));
    }
    let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if n.is_none_or(|n| n > MAX_CHI_VALUES) {
        return Err(err(format!(
            "chi cube of shape {shape:?} is larger than any grid ({MAX_CHI_VALUES} models)"
        )));
    }
    Ok((ds.read_raw::<f32>().map_err(corrupt)?, shape))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::cuts::f32_bytes;

    /// gzip deflated on the thread pool (libdeflate) gives, in data, the file HDF5's own
    /// deflate filter (zlib) gives: the same datasets, chunks, filter and values, for more
    /// chi cubes than one batch, and a file not larger than 102 % of HDF5's; the other
    /// compressions, written by HDF5 itself, byte for byte.
    #[test]
    fn parallel_gzip_writes_the_data_hdf5_writes() {
        let dir = tempfile::tempdir().unwrap();
        let shape = [2, 3, 4, 5];
        let chis: Vec<(String, Vec<f32>)> = (0..CHI_BATCH + 5)
            .map(|k| {
                let chi = (0..120).map(|i| ((i * 11 + k) % 17) as f32 * 0.5).collect();
                (format!("00_{k:04}"), chi)
            })
            .collect();
        for c in [
            Compression::None,
            Compression::Low,
            Compression::Medium,
            Compression::High,
        ] {
            let ours = dir.path().join(format!("{c:?}_ours.h5"));
            let mut w = ChiWriter::create(&ours, shape, c).unwrap();
            for (name, chi) in &chis {
                w.add(name, chi).unwrap();
            }
            w.finish().unwrap();

            // Today's writer: every dataset through HDF5's filters.
            let reference = dir.path().join(format!("{c:?}_hdf5.h5"));
            let f = hdf5::File::create(&reference).unwrap();
            for (name, chi) in &chis {
                let view = ArrayView4::from_shape((2, 3, 4, 5), &chi[..]).unwrap();
                c.apply(f.new_dataset_builder())
                    .with_data(view)
                    .create(name.as_str())
                    .unwrap();
            }
            f.close().unwrap();

            if c.gzip_level::<f32>(120).is_none() {
                assert_eq!(
                    std::fs::read(&ours).unwrap(),
                    std::fs::read(&reference).unwrap(),
                    "{c:?}"
                );
            } else {
                let (a, b) = (
                    hdf5::File::open(&ours).unwrap(),
                    hdf5::File::open(&reference).unwrap(),
                );
                assert_eq!(a.member_names().unwrap(), b.member_names().unwrap());
                for (name, _) in &chis {
                    let (x, y) = (a.dataset(name).unwrap(), b.dataset(name).unwrap());
                    assert_eq!(x.filters(), y.filters(), "{c:?}");
                    assert_eq!(x.chunk(), y.chunk(), "{c:?}");
                    assert_eq!(x.chunk(), Some(shape.to_vec()));
                    let bytes = |d: &hdf5::Dataset| f32_bytes(&d.read_raw::<f32>().unwrap());
                    assert_eq!(bytes(&x), bytes(&y), "{c:?} {name}");
                }
                drop((a, b));
                let size = |p: &Path| std::fs::metadata(p).unwrap().len();
                assert!(
                    size(&ours) * 100 <= size(&reference) * 102,
                    "{c:?}: {} bytes, HDF5 {}",
                    size(&ours),
                    size(&reference)
                );
            }
            for (name, chi) in &chis {
                let (got, got_shape) = read_chi(&ours, name).unwrap();
                assert_eq!((&got, got_shape), (chi, vec![2, 3, 4, 5]));
            }
        }
    }
}
