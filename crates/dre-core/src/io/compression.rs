//! HDF5 compression levels of the original (`h5py_compression`): none, low = lzf (filter
//! 32000, as h5py writes it), medium = gzip 4, high = gzip 9.

use hdf5::DatasetBuilder;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compression {
    None,
    Low,
    #[default]
    Medium,
    High,
}

impl Compression {
    pub fn apply(self, b: DatasetBuilder) -> DatasetBuilder {
        match self {
            Compression::None => b,
            Compression::Low => b.lzf(),
            Compression::Medium => b.deflate(4),
            Compression::High => b.deflate(9),
        }
    }
}

impl FromStr for Compression {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(Compression::None),
            "low" => Ok(Compression::Low),
            "medium" => Ok(Compression::Medium),
            "high" => Ok(Compression::High),
            _ => Err(format!(
                "compression must be none, low, medium or high, not {s:?}"
            )),
        }
    }
}
