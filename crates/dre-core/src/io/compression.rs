//! HDF5 compression levels of the original (`h5py_compression`): none, low = lzf (filter
//! 32000, as h5py writes it), medium = gzip 4, high = gzip 9.
//!
//! gzip is deflated here, on the thread pool, and each dataset's one chunk written whole
//! with `H5Dwrite_chunk`: HDF5 would deflate on the writing thread alone, with zlib. The
//! chunk is the one HDF5's own deflate filter makes (one chunk of the whole dataset, as
//! hdf5-metno chooses for datasets under 64 MiB, the deflate filter at the same level), and
//! the stream a standard zlib stream that HDF5 (and h5py) inflate with zlib, deflated with
//! libdeflate at the same level: several times faster than zlib, within a fraction of a
//! percent of its size on cuts and chi cubes (README, Dependencies).

use crate::error::{Error, Result};
use hdf5::{DatasetBuilder, H5Type};
use libdeflater::{CompressionLvl, Compressor};
use std::cell::RefCell;
use std::ffi::{c_int, c_void};
use std::str::FromStr;

// Linked through hdf5-metno-sys (HDF5 >= 1.10.3); hid_t is 64 bits since HDF5 1.10.
extern "C" {
    fn H5Dwrite_chunk(
        dset_id: i64,
        dxpl_id: i64,
        filters: u32,
        offset: *const u64,
        data_size: usize,
        buf: *const c_void,
    ) -> c_int;
}

/// hdf5-metno's automatic chunk (`DEFAULT_CHUNK_SIZE_KB`) is the whole dataset up to this
/// many bytes; larger datasets are left to HDF5.
const WHOLE_CHUNK_BYTES: usize = 64 << 20;

/// Compression of the HDF5 datasets of cut and chi files (`--compression`; default
/// `Medium`, as the original). Parsed from `none`, `low`, `medium`, `high`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compression {
    /// No filter.
    None,
    /// lzf (HDF5 filter 32000): fast, light.
    Low,
    /// gzip level 4.
    #[default]
    Medium,
    /// gzip level 9: smallest, slowest.
    High,
}

impl Compression {
    /// Adds this level's filter to a dataset builder.
    pub(crate) fn apply(self, b: DatasetBuilder) -> DatasetBuilder {
        match self {
            Compression::None => b,
            Compression::Low => b.lzf(),
            Compression::Medium => b.deflate(4),
            Compression::High => b.deflate(9),
        }
    }
}

impl Compression {
    /// The gzip level of a dataset of `elements` values of `T` deflated here, on the
    /// thread pool; `None` where HDF5 compresses it itself (none, lzf, large datasets).
    pub(crate) fn gzip_level<T: H5Type>(self, elements: usize) -> Option<i32> {
        let level = match self {
            Compression::Medium => 4,
            Compression::High => 9,
            Compression::None | Compression::Low => return None,
        };
        let bytes = elements.checked_mul(std::mem::size_of::<T>())?;
        (bytes > 0 && bytes <= WHOLE_CHUNK_BYTES).then_some(level)
    }
}

thread_local! {
    /// One compressor per thread and level: libdeflate allocates its tables per compressor.
    static COMPRESSORS: RefCell<Vec<(i32, Compressor)>> = const { RefCell::new(Vec::new()) };
}

/// `bytes` deflated into a zlib stream (RFC 1950) at gzip `level` (1 to 12), as HDF5's
/// deflate filter stores a chunk.
pub(crate) fn deflate(bytes: &[u8], level: i32) -> std::result::Result<Vec<u8>, String> {
    COMPRESSORS.with(|cell| {
        let mut all = cell.borrow_mut();
        let k = match all.iter().position(|(l, _)| *l == level) {
            Some(k) => k,
            None => {
                let lvl =
                    CompressionLvl::new(level).map_err(|_| format!("no deflate level {level}"))?;
                all.push((level, Compressor::new(lvl)));
                all.len() - 1
            }
        };
        let c = &mut all[k].1;
        let mut out = vec![0u8; c.zlib_compress_bound(bytes.len())];
        let n = c
            .zlib_compress(bytes, &mut out)
            .map_err(|e| format!("deflate failed: {e:?}"))?;
        out.truncate(n);
        Ok(out)
    })
}

/// Creates dataset `name` of `T` and `shape` in `group`, gzip-compressed with `compression`
/// in one chunk of the whole dataset, and writes `deflated` (from [`deflate`]) as that chunk.
pub(crate) fn write_deflated<T: H5Type>(
    group: &hdf5::Group,
    name: &str,
    shape: &[usize],
    compression: Compression,
    deflated: &[u8],
) -> hdf5::Result<()> {
    let ds = compression
        .apply(group.new_dataset_builder())
        .chunk(shape.to_vec())
        .empty::<T>()
        .shape(shape.to_vec())
        .create(name)?;
    let offset = vec![0u64; shape.len()];
    hdf5::sync::sync(|| {
        // SAFETY: the dataset is open, `offset` has one value per axis and `deflated`
        // holds `deflated.len()` bytes.
        hdf5::h5check(unsafe {
            H5Dwrite_chunk(
                ds.id(),
                0, // H5P_DEFAULT
                0, // every filter applied
                offset.as_ptr(),
                deflated.len(),
                deflated.as_ptr().cast(),
            )
        })
    })
    .map(drop)
}

impl FromStr for Compression {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "none" => Ok(Compression::None),
            "low" => Ok(Compression::Low),
            "medium" => Ok(Compression::Medium),
            "high" => Ok(Compression::High),
            _ => Err(Error::Invalid(format!(
                "compression must be none, low, medium or high, not {s:?}"
            ))),
        }
    }
}
