//! Small helpers over fitsio: header cards and key reading with errors a user can act on.

use crate::error::{AtPath, Error, Result};
use crate::io::atomic::PendingFile;
use fitsio::hdu::FitsHdu;
use fitsio::images::{ImageDescription, ImageType};
use fitsio::FitsFile;
use std::path::Path;

/// A header card to write.
#[derive(Clone, Debug, PartialEq)]
pub struct Card {
    /// Keyword, at most 8 characters (e.g. `BOXSIZE`).
    pub key: String,
    /// Integer, real or string value.
    pub value: CardValue,
    /// The card's comment (may be empty).
    pub comment: String,
}

#[derive(Clone, Debug, PartialEq)]
pub enum CardValue {
    Int(i64),
    Float(f64),
    Text(String),
}

impl Card {
    /// An integer card.
    pub fn int(key: &str, v: i64, comment: &str) -> Self {
        Self::new(key, CardValue::Int(v), comment)
    }
    /// A real card.
    pub fn float(key: &str, v: f64, comment: &str) -> Self {
        Self::new(key, CardValue::Float(v), comment)
    }
    /// A string card.
    pub fn text(key: &str, v: &str, comment: &str) -> Self {
        Self::new(key, CardValue::Text(v.to_string()), comment)
    }
    fn new(key: &str, value: CardValue, comment: &str) -> Self {
        Card {
            key: key.to_string(),
            value,
            comment: comment.to_string(),
        }
    }

    /// Writes the card into the header of `hdu` of the open file `f`.
    pub(crate) fn write(&self, f: &mut FitsFile, hdu: &FitsHdu) -> fitsio::errors::Result<()> {
        let c = self.comment.as_str();
        match &self.value {
            CardValue::Int(v) => hdu.write_key(f, &self.key, (*v, c)),
            CardValue::Float(v) => hdu.write_key(f, &self.key, (*v, c)),
            CardValue::Text(v) => hdu.write_key(f, &self.key, (v.clone(), c)),
        }
    }
}

/// Reads a numeric key; the error ([`Error::Invalid`], for the caller to place with
/// [`Error::at_file`]) says plainly when the key is missing.
pub fn read_f64_key(f: &mut FitsFile, hdu: &FitsHdu, key: &str) -> Result<f64> {
    hdu.read_key::<f64>(f, key).map_err(|e| key_error(key, e))
}

/// Reads a text key; the error ([`Error::Invalid`], for the caller to place with
/// [`Error::at_file`]) says plainly when the key is missing.
pub fn read_str_key(f: &mut FitsFile, hdu: &FitsHdu, key: &str) -> Result<String> {
    hdu.read_key::<String>(f, key)
        .map_err(|e| key_error(key, e))
}

fn key_error(key: &str, e: fitsio::errors::Error) -> Error {
    Error::Invalid(match e {
        fitsio::errors::Error::Fits(fe) if fe.status == 202 => {
            format!("missing header key {key}")
        }
        e => format!("header key {key}: {e}"),
    })
}

/// Writes a float32 image (`height` rows of `width`) as the primary HDU with `cards`, whole
/// or not at all.
pub fn write_image(
    path: impl AsRef<Path>,
    width: usize,
    height: usize,
    data: &[f32],
    cards: &[Card],
) -> Result<()> {
    let path = path.as_ref();
    let pending = PendingFile::new(path)?;
    {
        let dims = [height, width];
        let desc = ImageDescription {
            data_type: ImageType::Float,
            dimensions: &dims,
        };
        let mut f = FitsFile::create(pending.path())
            .with_custom_primary(&desc)
            .open()
            .at(path)?;
        let hdu = f.primary_hdu().at(path)?;
        hdu.write_image(&mut f, data).at(path)?;
        for c in cards {
            c.write(&mut f, &hdu).at(path)?;
        }
    }
    pending.commit()
}
