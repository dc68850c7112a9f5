//! One error type for the library: every error names the file (and object) it is about,
//! and renders as a single line, so the binaries can print it as it is.

use std::fmt::Display;
use std::path::{Path, PathBuf};

/// The library's error: each variant renders as one line, `PATH: [object NAME: ]MESSAGE`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Something is wrong with a file: unreadable, malformed, or not what the tool needs.
    #[error("{}: {msg}", path.display())]
    File {
        /// The file, as the caller named it.
        path: PathBuf,
        /// What is wrong, on one line.
        msg: String,
    },
    /// Something is wrong with one object of a file; the rest of the file is usable.
    #[error("{}: object {object}: {msg}", path.display())]
    Object {
        /// The file holding the object.
        path: PathBuf,
        /// The object's name, `EE_NNNN`.
        object: String,
        /// What is wrong, on one line.
        msg: String,
    },
    /// A request that makes no sense whatever the files (a bad grid, a bad option).
    #[error("{0}")]
    Invalid(String),
    /// A fault of the compute device (no driver, out of device memory, a failed launch).
    #[error("{0}")]
    Device(String),
}

/// `std::result::Result` with the library's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An [`Error::File`]; a multi-line `msg` (HDF5, cfitsio) is joined into one line.
    pub fn file(path: impl AsRef<Path>, msg: impl Display) -> Self {
        Error::File {
            path: path.as_ref().to_path_buf(),
            msg: one_line(&msg.to_string()),
        }
    }

    /// An [`Error::Object`] about object `object` of `path`; `msg` is joined into one line.
    pub fn object(path: impl AsRef<Path>, object: &str, msg: impl Display) -> Self {
        Error::Object {
            path: path.as_ref().to_path_buf(),
            object: object.to_string(),
            msg: one_line(&msg.to_string()),
        }
    }
}

impl Error {
    /// An [`Error::Invalid`] about a file becomes an [`Error::File`] naming it; an error that
    /// already names its file is left as it is.
    pub fn at_file(self, path: impl AsRef<Path>) -> Self {
        match self {
            Error::Invalid(msg) => Error::file(path, msg),
            other => other,
        }
    }
}

/// Attaches the file a low-level error (cfitsio, HDF5, io) is about.
pub trait AtPath<T> {
    fn at(self, path: impl AsRef<Path>) -> Result<T>;
}

impl<T, E: Display> AtPath<T> for std::result::Result<T, E> {
    fn at(self, path: impl AsRef<Path>) -> Result<T> {
        self.map_err(|e| Error::file(path, e))
    }
}

/// HDF5 and cfitsio messages can span lines; a log wants one line per fault.
fn one_line(msg: &str) -> String {
    let mut parts = msg.lines().map(str::trim).filter(|l| !l.is_empty());
    let mut out = parts.next().unwrap_or("unknown error").to_string();
    for p in parts {
        out.push_str("; ");
        out.push_str(p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_one_line_and_name_the_file() {
        let e = Error::file("Cuts/a.h5", "first\n  second\n");
        assert_eq!(e.to_string(), "Cuts/a.h5: first; second");
        let e = Error::object("Cuts/a.h5", "00_0001", "segment is empty");
        assert_eq!(e.to_string(), "Cuts/a.h5: object 00_0001: segment is empty");
    }
}
