//! The GAIN given to SExtractor (`--gain`, `--gain-key`): a number, or read from the primary
//! header of the measurement image, times EXPTIME for images in counts per second.

use crate::error::{Error, Result};
use std::path::Path;
use std::str::FromStr;

/// How the gain is obtained (`--gain counts|cps|FLOAT`).
#[derive(Clone, Debug, PartialEq)]
pub enum GainMode {
    /// The header's gain (image in counts).
    Counts,
    /// The header's gain times EXPTIME (image in counts per second).
    Cps,
    /// This gain in e-/ADU.
    Value(f64),
}

impl FromStr for GainMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "counts" => Ok(GainMode::Counts),
            "cps" => Ok(GainMode::Cps),
            _ => s
                .parse::<f64>()
                .ok()
                .filter(|g| g.is_finite() && *g >= 0.0)
                .map(GainMode::Value)
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "{s:?} is not a gain: use counts, cps or a number in e-/ADU"
                    ))
                }),
        }
    }
}

/// Which header key holds the gain (`--gain-key KEY|auto`).
#[derive(Clone, Debug, PartialEq)]
pub enum GainKey {
    /// GAIN if present, else the single key whose name contains GAIN.
    Auto,
    /// This key (upper-cased).
    Key(String),
}

impl FromStr for GainKey {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        if s.eq_ignore_ascii_case("auto") {
            Ok(GainKey::Auto)
        } else if s.trim().is_empty() {
            Err(Error::Invalid("the gain key is empty".into()))
        } else {
            Ok(GainKey::Key(s.trim().to_ascii_uppercase()))
        }
    }
}

/// The gain from header cards `(KEY, value)`: the pure part of [`image_gain`].
pub fn gain_from_header(cards: &[(String, String)], mode: &GainMode, key: &GainKey) -> Result<f64> {
    let header_gain = || -> Result<f64> {
        let name = match key {
            GainKey::Key(k) => k.clone(),
            GainKey::Auto if cards.iter().any(|(k, _)| k == "GAIN") => "GAIN".to_string(),
            GainKey::Auto => {
                let found: Vec<&str> = cards
                    .iter()
                    .map(|(k, _)| k.as_str())
                    .filter(|k| k.contains("GAIN"))
                    .collect();
                match found.as_slice() {
                    [one] => one.to_string(),
                    [] => return Err(Error::Invalid("no header key contains GAIN: name one with --gain-key KEY or give the gain as a number (--gain 2.5)".into())),
                    many => return Err(Error::Invalid(format!("several header keys contain GAIN ({}): choose one with --gain-key KEY", many.join(", ")))),
                }
            }
        };
        number(cards, &name)
    };
    match mode {
        GainMode::Value(g) => Ok(*g),
        GainMode::Counts => header_gain(),
        GainMode::Cps => {
            let exptime = number(cards, "EXPTIME")
                .map_err(|e| Error::Invalid(format!("{e} (needed by --gain cps)")))?;
            Ok(header_gain()? * exptime)
        }
    }
}

fn number(cards: &[(String, String)], key: &str) -> Result<f64> {
    let (_, v) = cards
        .iter()
        .find(|(k, _)| k == key)
        .ok_or_else(|| Error::Invalid(format!("missing header key {key}")))?;
    let v = v.trim().trim_matches('\'').trim();
    v.parse::<f64>()
        .map_err(|_| Error::Invalid(format!("header key {key} = {v:?} is not a number")))
}

/// The gain for `image` (its primary header is read only when the mode needs it).
pub fn image_gain(image: &Path, mode: &GainMode, key: &GainKey) -> Result<f64> {
    let cards = match mode {
        GainMode::Value(_) => Vec::new(),
        _ => primary_header(image)?,
    };
    gain_from_header(&cards, mode, key).map_err(|e| e.at_file(image))
}

/// Every `(KEY, value)` card of the primary header. fitsio has no way to list the keys,
/// so this goes through cfitsio.
fn primary_header(path: &Path) -> Result<Vec<(String, String)>> {
    use fitsio::sys::{ffghsp, ffgkyn};
    use std::ffi::CStr;
    use std::os::raw::{c_char, c_int};

    let mut f = crate::io::fits::open_fits(path)?;
    // Not `primary_hdu`: fitsio panics describing some HDUs (see check_describable).
    crate::io::fits::check_describable(&mut f, 0, path)?;
    let mut cards = Vec::new();
    let mut status: c_int = 0;
    let (mut nkeys, mut more): (c_int, c_int) = (0, 0);
    // SAFETY: the pointer comes from an open FitsFile that outlives these calls; the buffers
    // have cfitsio's documented sizes (FLEN_KEYWORD 75, FLEN_VALUE 71, FLEN_COMMENT 73).
    unsafe {
        let fp = f.as_raw();
        ffghsp(fp, &mut nkeys, &mut more, &mut status);
        for i in 1..=nkeys {
            let mut name = [0 as c_char; 75];
            let mut value = [0 as c_char; 71];
            let mut comment = [0 as c_char; 73];
            ffgkyn(
                fp,
                i,
                name.as_mut_ptr(),
                value.as_mut_ptr(),
                comment.as_mut_ptr(),
                &mut status,
            );
            if status != 0 {
                break;
            }
            let text = |b: &[c_char]| {
                CStr::from_ptr(b.as_ptr())
                    .to_string_lossy()
                    .trim()
                    .to_string()
            };
            cards.push((text(&name), text(&value)));
        }
    }
    if status != 0 {
        return Err(Error::file(
            path,
            format!("cannot read the header (cfitsio status {status})"),
        ));
    }
    Ok(cards)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cards(kv: &[(&str, &str)]) -> Vec<(String, String)> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn gain_modes() {
        let h = cards(&[("GAIN", "2.5"), ("EXPTIME", "100.0"), ("CCDGAIN", "9")]);
        let auto = GainKey::Auto;
        assert_eq!(gain_from_header(&h, &GainMode::Counts, &auto), Ok(2.5));
        assert_eq!(gain_from_header(&h, &GainMode::Cps, &auto), Ok(250.0));
        assert_eq!(gain_from_header(&[], &GainMode::Value(1.5), &auto), Ok(1.5));
        let ccd = GainKey::Key("CCDGAIN".into());
        assert_eq!(gain_from_header(&h, &GainMode::Counts, &ccd), Ok(9.0));
    }

    #[test]
    fn auto_takes_the_single_gain_like_key() {
        let h = cards(&[("EXPTIME", "10"), ("CCDGAIN", "'1.25 '")]);
        assert_eq!(
            gain_from_header(&h, &GainMode::Counts, &GainKey::Auto),
            Ok(1.25)
        );
        assert_eq!(
            gain_from_header(&h, &GainMode::Cps, &GainKey::Auto),
            Ok(12.5)
        );
    }

    #[test]
    fn auto_fails_clearly_when_ambiguous_or_missing() {
        let h = cards(&[("CCDGAIN", "1"), ("GAINA", "2")]);
        let e = gain_from_header(&h, &GainMode::Counts, &GainKey::Auto)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("several header keys contain GAIN (CCDGAIN, GAINA)"),
            "{e}"
        );
        let e = gain_from_header(
            &cards(&[("EXPTIME", "1")]),
            &GainMode::Counts,
            &GainKey::Auto,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("no header key contains GAIN"), "{e}");
        let e = gain_from_header(&cards(&[("GAIN", "1")]), &GainMode::Cps, &GainKey::Auto)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "missing header key EXPTIME (needed by --gain cps)");
    }

    #[test]
    fn parsing_the_options() {
        assert_eq!("CPS".parse::<GainMode>(), Ok(GainMode::Cps));
        assert_eq!("counts".parse::<GainMode>(), Ok(GainMode::Counts));
        assert_eq!("4.2".parse::<GainMode>(), Ok(GainMode::Value(4.2)));
        assert!("fast".parse::<GainMode>().is_err());
        assert!("-1".parse::<GainMode>().is_err());
        assert_eq!("Auto".parse::<GainKey>(), Ok(GainKey::Auto));
        assert_eq!(
            "ccdgain".parse::<GainKey>(),
            Ok(GainKey::Key("CCDGAIN".into()))
        );
    }

    #[test]
    fn reads_the_primary_header_of_an_image() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("img.fits");
        crate::io::fits::init_cfitsio();
        let mut f = fitsio::FitsFile::create(&p).open().unwrap();
        let hdu = f.primary_hdu().unwrap();
        hdu.write_key(&mut f, "CCDGAIN", 3.0).unwrap();
        hdu.write_key(&mut f, "EXPTIME", 20.0).unwrap();
        drop(f);
        let g = image_gain(&p, &GainMode::Cps, &GainKey::Auto).unwrap();
        assert_eq!(g, 60.0);
    }
}
