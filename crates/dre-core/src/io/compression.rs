//! HDF5 compression levels of the original (`h5py_compression`): none, low = lzf (filter
//! 32000, as h5py writes it), medium = gzip 4, high = gzip 9.

use crate::error::{Error, Result};
use hdf5::DatasetBuilder;
use std::str::FromStr;

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
