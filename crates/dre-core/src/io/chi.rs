//! Chi files: one float32 dataset `EE_NNNN` of shape (NINDEX, NAXRAT, NPOSANG, NLOGH) per
//! fitted object, compressed as the cut files are. Written whole or not at all.

use crate::error::{AtPath, Result};
use crate::io::atomic::PendingFile;
use crate::io::compression::Compression;
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
        let file = hdf5::File::create(pending.path()).at(pending.dest())?;
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
            .at(dest)?;
        Ok(())
    }

    /// Closes the file and renames it into place.
    pub fn finish(self) -> Result<()> {
        let ChiWriter { pending, file, .. } = self;
        file.close().at(pending.dest())?;
        pending.commit()
    }
}

/// Reads one object's chi cube (flat, C order) and its shape.
pub fn read_chi(path: impl AsRef<Path>, name: &str) -> Result<(Vec<f32>, Vec<usize>)> {
    let path = path.as_ref();
    let f = hdf5::File::open(path).at(path)?;
    let ds = f.dataset(name).at(path)?;
    Ok((ds.read_raw::<f32>().at(path)?, ds.shape()))
}
