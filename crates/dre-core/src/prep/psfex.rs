//! `psfex_dre`'s work: runs PSFEx on one SExtractor catalogue and leaves `PSF/NAME.psf`,
//! whole or not at all, only when PSFEx accepted stars for it.

use crate::error::{AtPath, Error, Result};
use crate::io::atomic::ScratchDir;
use crate::io::fits::read_f64_key;
use crate::io::lock::{lock_output_dir, OutputLock};
use crate::layout::{self, CATALOG_SUFFIX, PSF_SUFFIX};
use crate::pipeline::resume::{forget_record, record_file, Provenance};
use crate::prep::aliases::{alias_args, safe_name};
use crate::prep::external::Tool;
use fitsio::hdu::HduInfo;
use fitsio::FitsFile;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// PSFEx configuration shipped with DRE: constant PSF (order 0), image pixel scale, 25x25.
pub const DEFAULT_PSFEX: &str = include_str!("../../data/default.psfex");

/// A SExtractor catalogue `NAME_cat.fits` of tile NAME.
#[derive(Clone, Debug, PartialEq)]
pub struct CatalogFile {
    /// Tile name NAME: the PSF is written as `NAME.psf`.
    pub name: String,
    /// The catalogue file.
    pub path: PathBuf,
}

/// What PSFEx made of one catalogue.
#[derive(Clone, Debug, PartialEq)]
pub struct PsfReport {
    /// The PSF file written, `OUTPUT/NAME.psf`.
    pub psf: PathBuf,
    /// Star candidates PSFEx loaded.
    pub loaded: usize,
    /// Of those, stars PSFEx accepted (at least 1: none is an error).
    pub accepted: usize,
    /// PSF FWHM in image pixels.
    pub fwhm: f64,
    /// PSFEx's warnings, one line each.
    pub warnings: Vec<String>,
}

/// Every `NAME_cat.fits` below `dir` (`Sextracted/NAME/NAME_cat.fits` or flat), sorted by
/// NAME. Two catalogues for one NAME are refused: both would write `NAME.psf`.
pub fn list_catalogs(dir: &Path) -> Result<Vec<CatalogFile>> {
    if !dir.is_dir() {
        return Err(Error::file(dir, "no such input folder"));
    }
    let mut out = Vec::new();
    collect(dir, &mut out)?;
    out.sort_by(|a: &CatalogFile, b| a.name.cmp(&b.name).then(a.path.cmp(&b.path)));
    if let Some(w) = out.windows(2).find(|w| w[0].name == w[1].name) {
        return Err(Error::Invalid(format!(
            "two catalogues of tile {}: {} and {}; keep one",
            w[0].name,
            w[0].path.display(),
            w[1].path.display()
        )));
    }
    Ok(out)
}

fn collect(dir: &Path, out: &mut Vec<CatalogFile>) -> Result<()> {
    for entry in std::fs::read_dir(dir).at(dir)? {
        let path = entry.at(dir)?.path();
        let file = path.file_name().unwrap_or_default().to_string_lossy();
        if file.starts_with('.') {
            continue; // scratch folders and temporaries
        }
        if path.is_dir() {
            collect(&path, out)?;
        } else if let Some(name) = layout::tile_name(&file, CATALOG_SUFFIX) {
            out.push(CatalogFile {
                name: name.to_string(),
                path: path.clone(),
            });
        }
    }
    Ok(())
}

/// A PSFEx ready to run on catalogues.
#[derive(Debug)]
pub struct Psfex {
    tool: Tool,
    /// None: the shipped configuration.
    config: Option<PathBuf>,
    output: PathBuf,
    _lock: OutputLock,
}

impl Psfex {
    /// Finds PSFEx and checks the output folder can be written. `config`: `-c FILE`, else `default.psfex` of the working directory if there is one,
    /// else the shipped configuration.
    pub fn new(config: Option<&Path>, output: &Path) -> Result<Psfex> {
        let tool = Tool::find("PSFEx", &["psfex"], "Debian/Ubuntu: apt-get install psfex")?;
        let config = match config {
            Some(c) if !c.is_file() => {
                // PSFEx itself would carry on with built-in settings and ask for a plot device.
                return Err(Error::file(c, "no such PSFEx configuration file"));
            }
            Some(c) => Some(std::path::absolute(c).at(c)?),
            None if Path::new("default.psfex").is_file() => {
                Some(std::path::absolute("default.psfex").at("default.psfex")?)
            }
            None => None,
        };
        let lock = lock_output_dir(output, "psfex_dre")?;
        drop(ScratchDir::new(output, "psfex_dre")?); // the output folder can be written
        let output = std::path::absolute(output).at(output)?;
        Ok(Psfex {
            tool,
            config,
            output,
            _lock: lock,
        })
    }

    /// The configuration file used (None: the shipped one).
    pub fn config(&self) -> Option<&Path> {
        self.config.as_deref()
    }

    /// PSFEx's command line for `cat`, writing into `scratch` (the shipped configuration is
    /// read from there).
    fn args(&self, cat: &CatalogFile, scratch: &Path) -> Result<Vec<OsString>> {
        let config = match &self.config {
            Some(c) => c.clone(),
            None => scratch.join("default.psfex"),
        };
        let input = std::path::absolute(&cat.path).at(&cat.path)?;
        Ok(vec![
            input.into(),
            "-c".into(),
            config.into(),
            "-PSF_DIR".into(),
            scratch.into(),
            "-PSF_SUFFIX".into(),
            PSF_SUFFIX.into(),
        ])
    }

    fn provenance(&self, args: &[OsString], scratch: &Path) -> Provenance {
        let mut p = Provenance::new("psfex_dre");
        p.command(&self.tool.path, args, scratch);
        p
    }

    /// Whether `cat`'s PSF is complete and was made by this same PSFEx from the same
    /// catalogue and configuration (the record [`Psfex::run`] writes beside it says so):
    /// `psfex_dre --resume` skips such a catalogue.
    pub fn up_to_date(&self, cat: &CatalogFile) -> bool {
        // Any scratch name: it is left out of the record.
        let scratch = self.output.join(format!(".{}.psfex_dre.check", cat.name));
        let record = record_file(&self.output, &cat.name, "psfex_dre");
        self.args(cat, &scratch)
            .is_ok_and(|args| self.provenance(&args, &scratch).matches(&record))
    }

    /// Runs PSFEx on `cat`, in the output folder as the original did (check plots and XML
    /// land there); the PSF is written to a scratch folder and moved to `NAME.psf`, then a
    /// record of what it was made from (see [`Psfex::up_to_date`]).
    pub fn run(&self, cat: &CatalogFile) -> Result<PsfReport> {
        let scratch = ScratchDir::new(&self.output, &format!("{}.psfex_dre", cat.name))?;
        if self.config.is_none() {
            let p = scratch.path().join("default.psfex");
            std::fs::write(&p, DEFAULT_PSFEX).at(&p)?;
        }
        let args = self.args(cat, scratch.path())?;
        let record = record_file(&self.output, &cat.name, "psfex_dre");
        let made_of = self.provenance(&args, scratch.path());
        forget_record(&record)?;
        let mut aliased = alias_args(&args, scratch.path())?;
        let stem = cat.path.file_stem().unwrap_or_default().to_string_lossy();
        let written = format!("{stem}{PSF_SUFFIX}");
        let tmp = scratch.path().join(&written);
        // PSFEx names the PSF after its input, which may be an alias.
        aliased.expect(
            scratch
                .path()
                .join(format!("{}{PSF_SUFFIX}", safe_name(&stem))),
            tmp.clone(),
        );
        let run = self
            .tool
            .run(&aliased.args, Some(&self.output))
            .map_err(|e| Error::file(&cat.path, e))?;
        aliased.restore()?;
        if !tmp.is_file() {
            return Err(Error::file(&cat.path, "PSFEx wrote no PSF"));
        }
        let (loaded, accepted, fwhm) = accepted_stars(&tmp)?;
        if accepted == 0 {
            return Err(Error::file(
                &cat.path,
                format!(
                    "PSFEx accepted no star ({loaded} candidates loaded): no PSF \
                     (too few bright, unsaturated point sources; see SAMPLE_* in the configuration)"
                ),
            ));
        }
        // What dre will read must be readable.
        crate::io::psf::read_psf(&tmp).map_err(|e| Error::file(&cat.path, e))?;
        let dest = layout::psf_file(&self.output, &cat.name);
        scratch.commit(&written, &dest)?;
        made_of.write(&record, std::slice::from_ref(&dest))?;
        Ok(PsfReport {
            psf: dest,
            loaded,
            accepted,
            fwhm,
            warnings: run.warnings,
        })
    }
}

/// LOADED, ACCEPTED and PSF_FWHM of the first PSF HDU that accepted stars (or of the last
/// PSF HDU when none did).
fn accepted_stars(path: &Path) -> Result<(usize, usize, f64)> {
    let mut f = crate::io::fits::open_fits(path)?;
    let mut best = (0, 0, 0.0);
    for i in 1..f.num_hdus().at(path)? {
        let hdu = crate::io::fits::checked_hdu(&mut f, i, path)?;
        if !matches!(hdu.info, HduInfo::TableInfo { .. }) {
            continue;
        }
        let key = |f: &mut FitsFile, k| read_f64_key(f, &hdu, k).unwrap_or(0.0);
        best = (
            key(&mut f, "LOADED") as usize,
            key(&mut f, "ACCEPTED") as usize,
            key(&mut f, "PSF_FWHM"),
        );
        if best.1 > 0 {
            break;
        }
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogues_in_both_layouts_sorted_by_tile() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("b")).unwrap();
        std::fs::create_dir_all(d.path().join(".b.sex_dre.1.tmp")).unwrap();
        for f in [
            "b/b_cat.fits",
            "a_cat.fits",
            "a_seg.fits",
            "_cat.fits",
            ".b.sex_dre.1.tmp/b_cat.fits",
        ] {
            std::fs::write(d.path().join(f), "").unwrap();
        }
        let c = list_catalogs(d.path()).unwrap();
        let names: Vec<&str> = c.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(c[1].path, d.path().join("b/b_cat.fits"));
        std::fs::write(d.path().join("b_cat.fits"), "").unwrap();
        let e = list_catalogs(d.path()).unwrap_err().to_string();
        assert!(e.starts_with("two catalogues of tile b"), "{e}");
    }
}
