//! Which images SExtractor runs on: every FITS image of the input folder, or in dual mode
//! each detection image with the measurement images whose name has the same key (the part
//! before the separator). Keys must be EQUAL: the original matched by substring and paired
//! `sim_a` with `sim_ab`.

use crate::error::{AtPath, Error, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One SExtractor run: detect on `detection`, measure on `measurement`; outputs are named
/// after the measurement image.
#[derive(Clone, Debug, PartialEq)]
pub struct ImagePair {
    /// Stem of the measurement image: outputs are `NAME_cat.fits`, ...
    pub name: String,
    /// Stem of the detection image (names its flag and weight images).
    pub detection_name: String,
    /// The image SExtractor detects on.
    pub detection: PathBuf,
    /// The image SExtractor measures on (the same path in single mode).
    pub measurement: PathBuf,
}

impl ImagePair {
    /// Whether detection and measurement are different images (SExtractor's dual mode).
    pub fn is_dual(&self) -> bool {
        self.detection != self.measurement
    }
}

/// The runs to make, and the detection images no measurement image matched.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Pairing {
    /// The runs, in the detection images' file-name order.
    pub pairs: Vec<ImagePair>,
    /// Detection images whose key no measurement image has (dual mode only).
    pub unmatched: Vec<PathBuf>,
}

const FITS_SUFFIXES: [&str; 4] = [".fits", ".fit", ".fts", ".fits.fz"];

/// The stem of a FITS image's file name (`gold.fits` -> `gold`), or None for other files.
pub fn fits_stem(file_name: &str) -> Option<&str> {
    if file_name.starts_with('.') {
        return None;
    }
    let lower = file_name.to_ascii_lowercase();
    FITS_SUFFIXES
        .iter()
        .filter(|s| lower.ends_with(*s))
        .map(|s| &file_name[..file_name.len() - s.len()])
        .find(|stem| !stem.is_empty())
}

/// The FITS images of `dir` as `(stem, path)`, sorted by file name.
pub fn list_images(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    if !dir.is_dir() {
        return Err(Error::file(dir, "no such input folder"));
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(stem) = fits_stem(&name) {
            if entry.path().is_file() {
                out.push((stem.to_string(), entry.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The pairing key of a stem: the part before the first `sep`, or the whole stem.
pub fn pair_key<'a>(stem: &'a str, sep: Option<&str>) -> &'a str {
    match sep {
        Some(s) if !s.is_empty() => stem.split(s).next().unwrap_or(stem),
        _ => stem,
    }
}

/// Single mode (`measure` None): each image with itself. Dual mode: each detection image
/// with every measurement image of the same key (one detection image may serve several
/// filters); two detection images with one key are refused, they would write the same outputs.
pub fn pair_images(detect: &Path, measure: Option<&Path>, sep: Option<&str>) -> Result<Pairing> {
    let detections = list_images(detect)?;
    let Some(measure) = measure else {
        let pairs = detections
            .into_iter()
            .map(|(stem, path)| ImagePair {
                name: stem.clone(),
                detection_name: stem,
                detection: path.clone(),
                measurement: path,
            })
            .collect();
        return Ok(Pairing {
            pairs,
            unmatched: Vec::new(),
        });
    };
    let mut by_key: BTreeMap<String, Vec<(String, PathBuf)>> = BTreeMap::new();
    for (stem, path) in list_images(measure)? {
        by_key
            .entry(pair_key(&stem, sep).to_string())
            .or_default()
            .push((stem, path));
    }
    let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut out = Pairing::default();
    for (stem, path) in detections {
        let key = pair_key(&stem, sep).to_string();
        if let Some(first) = seen.insert(key.clone(), path.clone()) {
            return Err(Error::Invalid(format!(
                "detection images {} and {} have the same name key {key:?} (separator {:?}): \
                 rename one or choose another -sep",
                first.display(),
                path.display(),
                sep.unwrap_or("")
            )));
        }
        match by_key.get(&key) {
            None => out.unmatched.push(path),
            Some(meas) => out
                .pairs
                .extend(meas.iter().map(|(mstem, mpath)| ImagePair {
                    name: mstem.clone(),
                    detection_name: stem.clone(),
                    detection: path.clone(),
                    measurement: mpath.clone(),
                })),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(dir: &Path, names: &[&str]) {
        std::fs::create_dir_all(dir).unwrap();
        for n in names {
            std::fs::write(dir.join(n), "").unwrap();
        }
    }

    #[test]
    fn stems_of_fits_files_only() {
        assert_eq!(fits_stem("gold.fits"), Some("gold"));
        assert_eq!(fits_stem("a.b.FITS"), Some("a.b"));
        assert_eq!(fits_stem("x.fits.fz"), Some("x"));
        assert_eq!(fits_stem("notes.txt"), None);
        assert_eq!(fits_stem(".hidden.fits"), None);
    }

    #[test]
    fn keys_are_the_part_before_the_separator() {
        assert_eq!(pair_key("sim_a_r", Some("_")), "sim");
        assert_eq!(pair_key("sim-a_r", Some("_")), "sim-a");
        assert_eq!(pair_key("sim_a", None), "sim_a");
        assert_eq!(pair_key("gold", Some(".")), "gold");
    }

    #[test]
    fn dual_mode_pairs_by_equal_key_never_by_substring() {
        let d = tempfile::tempdir().unwrap();
        let (det, mea) = (d.path().join("det"), d.path().join("mea"));
        touch(
            &det,
            &["sim_a-det.fits", "sim_ab-det.fits", "lonely-det.fits"],
        );
        touch(
            &mea,
            &["sim_ab-r.fits", "sim_a-g.fits", "sim_a-r.fits", "notes.txt"],
        );
        let p = pair_images(&det, Some(&mea), Some("-")).unwrap();
        let got: Vec<(&str, &str)> = p
            .pairs
            .iter()
            .map(|x| (x.detection_name.as_str(), x.name.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("sim_a-det", "sim_a-g"),
                ("sim_a-det", "sim_a-r"),
                ("sim_ab-det", "sim_ab-r")
            ]
        );
        assert_eq!(p.unmatched, [det.join("lonely-det.fits")]);
    }

    #[test]
    fn single_mode_pairs_each_image_with_itself() {
        let d = tempfile::tempdir().unwrap();
        touch(d.path(), &["sim_b.fits", "sim_a.fits", "sim_ab.fits"]);
        let p = pair_images(d.path(), None, Some("_")).unwrap();
        let names: Vec<&str> = p.pairs.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(names, ["sim_a", "sim_ab", "sim_b"]);
        assert!(p.pairs.iter().all(|x| !x.is_dual()));
    }

    #[test]
    fn two_detection_images_with_one_key_are_refused() {
        let d = tempfile::tempdir().unwrap();
        touch(d.path(), &["sim_a.fits", "sim_b.fits"]);
        let e = pair_images(d.path(), Some(d.path()), Some("_")).unwrap_err();
        assert!(e.to_string().contains("same name key \"sim\""), "{e}");
    }

    #[test]
    fn a_missing_folder_is_named() {
        let e = list_images(Path::new("/no/such/Tiles")).unwrap_err();
        assert_eq!(e.to_string(), "/no/such/Tiles: no such input folder");
    }
}
