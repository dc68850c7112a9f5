//! Cut files (SPEC 2): one HDF5 group per object, named `EE_NNNN`, holding `obj` (float32,
//! background-subtracted image), `seg` (bool, as h5py writes numpy bool) and `rms` (float32).

use crate::error::{AtPath, Error, Result};
use crate::io::atomic::PendingFile;
use crate::io::compression::Compression;
use ndarray::ArrayView2;
use std::path::{Path, PathBuf};

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
}

impl CutReader {
    /// Opens a cut file and lists its groups; objects are read one by one with
    /// [`CutReader::read`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if !path.is_file() {
            return Err(Error::file(&path, "no such file"));
        }
        let file = hdf5::File::open(&path).map_err(|e| {
            Error::file(&path, format!("not a readable HDF5 file (truncated?): {e}"))
        })?;
        let mut names = file.member_names().at(&path)?;
        names.sort();
        Ok(CutReader { path, file, names })
    }

    /// The file's path, as given to [`CutReader::open`].
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Object names in sorted order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Reads one object; a missing or malformed dataset is an error of that object only.
    pub fn read(&self, name: &str) -> Result<Cut> {
        let err = |m: String| Error::object(&self.path, name, m);
        let group = self.file.group(name).map_err(|e| err(e.to_string()))?;
        let read_f32 = |ds: &str| -> Result<(Vec<f32>, Vec<usize>)> {
            let d = group
                .dataset(ds)
                .map_err(|_| err(format!("no `{ds}` dataset")))?;
            let v = d.read_raw::<f32>().map_err(|e| err(format!("{ds}: {e}")))?;
            Ok((v, d.shape()))
        };
        let (obj, shape) = read_f32("obj")?;
        let (rms, rms_shape) = read_f32("rms")?;
        let seg_ds = group
            .dataset("seg")
            .map_err(|_| err("no `seg` dataset".into()))?;
        let seg_shape = seg_ds.shape();
        let seg = match seg_ds.read_raw::<bool>() {
            Ok(v) => v,
            // Segments written as integers (e.g. SExtractor labels) count where non-zero.
            Err(_) => seg_ds
                .read_raw::<i64>()
                .map_err(|e| err(format!("seg: {e}")))?
                .into_iter()
                .map(|v| v != 0)
                .collect(),
        };
        if shape.len() != 2 || shape[0] != shape[1] {
            return Err(err(format!("obj has shape {shape:?}, not a square image")));
        }
        if rms_shape != shape || seg_shape != shape {
            return Err(err(format!(
                "obj {shape:?}, seg {seg_shape:?} and rms {rms_shape:?} differ in shape"
            )));
        }
        Ok(Cut {
            name: name.to_string(),
            size: shape[0],
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
}

impl CutWriter {
    /// Starts the cut file `path` (written to a temporary beside it), every dataset
    /// compressed with `compression`.
    pub fn create(path: impl AsRef<Path>, compression: Compression) -> Result<Self> {
        let pending = PendingFile::new(path.as_ref())?;
        let file = hdf5::File::create(pending.path()).at(pending.dest())?;
        Ok(CutWriter {
            pending,
            file,
            compression,
        })
    }

    /// Writes one object as group `cut.name` holding `obj`, `seg` and `rms`.
    pub fn add(&mut self, cut: &Cut) -> Result<()> {
        let path = self.pending.dest().to_path_buf();
        let shape = (cut.size, cut.size);
        let g = self.file.create_group(&cut.name).at(&path)?;
        let write_f32 = |name: &str, v: &[f32]| -> Result<()> {
            let view = ArrayView2::from_shape(shape, v).at(&path)?;
            self.compression
                .apply(g.new_dataset_builder())
                .with_data(view)
                .create(name)
                .at(&path)
                .map(drop)
        };
        write_f32("obj", &cut.obj)?;
        let seg = ArrayView2::from_shape(shape, &cut.seg[..]).at(&path)?;
        self.compression
            .apply(g.new_dataset_builder())
            .with_data(seg)
            .create("seg")
            .at(&path)?;
        write_f32("rms", &cut.rms)
    }

    /// Closes the file and renames it into place.
    pub fn finish(self) -> Result<()> {
        let CutWriter { pending, file, .. } = self;
        file.close().at(pending.dest())?;
        pending.commit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            w.add(&cut).unwrap();
            w.finish().unwrap();
            let r = CutReader::open(&path).unwrap();
            assert_eq!(r.names(), ["00_0007"]);
            assert_eq!(r.read("00_0007").unwrap(), cut);
        }
    }
}
