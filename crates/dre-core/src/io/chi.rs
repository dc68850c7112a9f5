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
}

impl ChiWriter {
    /// Starts the chi file `path` (written to a temporary beside it) for cubes of grid
    /// shape `shape` (NINDEX, NAXRAT, NPOSANG, NLOGH).
    pub fn create(
        path: impl AsRef<Path>,
        shape: [usize; 4],
        compression: Compression,
    ) -> Result<Self> {
        let pending = PendingFile::new(path.as_ref())?;
        let file =
            hdf5::File::create(pending.path()).map_err(|e| h5_write_error(pending.dest(), e))?;
        Ok(ChiWriter {
            pending,
            file,
            compression,
            shape,
        })
    }

    /// Adds object `name`'s chi cube (flat, C order, the length of `shape`'s product).
    pub fn add(&mut self, name: &str, chi: &[f32]) -> Result<()> {
        let dest = self.pending.dest();
        let [a, b, c, d] = self.shape;
        let view = ArrayView4::from_shape((a, b, c, d), chi).at(dest)?;
        self.compression
            .apply(self.file.new_dataset_builder())
            .with_data(view)
            .create(name)
            .map_err(|e| h5_write_error(dest, e))?;
        Ok(())
    }

    /// Closes the file and renames it into place.
    pub fn finish(self) -> Result<()> {
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
