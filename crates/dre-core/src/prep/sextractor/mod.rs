//! `sex_dre`'s work: runs SExtractor on one image (or a detection/measurement pair) and
//! leaves `NAME_cat.fits` (FITS_LDAC) and the check images `NAME_nb.fits` (-BACKGROUND),
//! `NAME_rms.fits` (BACKGROUND_RMS) and `NAME_seg.fits` (SEGMENTATION) in the output folder,
//! whole or not at all.

pub mod config;
pub mod gain;
pub mod pairing;

use crate::error::{AtPath, Error, Result};
use crate::io::atomic::ScratchDir;
use crate::io::lock::{lock_output_dir, OutputLock};
use crate::layout::{BACKGROUND_SUFFIX, CATALOG_SUFFIX, RMS_SUFFIX, SEGMENTATION_SUFFIX};
use crate::pipeline::resume::{forget_record, record_file, Provenance};
use crate::prep::aliases::alias_args;
use crate::prep::external::Tool;
use config::{ResolvedFiles, SexConfig, DEFAULT_PARAM, DEFAULT_SEX};
use gain::{image_gain, GainKey, GainMode};
use pairing::ImagePair;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The outputs of one run, in the order SExtractor's CHECKIMAGE_TYPE lists them, catalogue last.
const SUFFIXES: [&str; 4] = [
    BACKGROUND_SUFFIX,
    RMS_SUFFIX,
    SEGMENTATION_SUFFIX,
    CATALOG_SUFFIX,
];
const CHECKIMAGE_TYPE: &str = "-BACKGROUND,BACKGROUND_RMS,SEGMENTATION";

/// Everything `sex_dre` takes besides the images.
#[derive(Clone, Debug)]
pub struct SexOptions {
    /// The configuration (`-c`; default `./default.sex`, as the original, else the shipped one).
    pub config: SexConfig,
    /// Output folder (`-o`; default `Sextracted`, as the original).
    pub output: PathBuf,
    /// One sub-folder per image (`Sextracted/NAME/NAME_cat.fits`), else flat.
    pub subdir: bool,
    /// Folder of `NAME_flag.fits` (FLAG_IMAGE), named after the detection image.
    pub flags: Option<PathBuf>,
    /// Folders of `NAME_wht.fits` (WEIGHT_IMAGE): one for both images, or detection and
    /// measurement.
    pub weights: Vec<PathBuf>,
    /// `--gain`: GAIN from the header or a number (default None: the configuration's GAIN).
    pub gain: Option<GainMode>,
    /// `--gain-key`: where `gain` finds the header's gain (default auto, as the original).
    pub gain_key: GainKey,
    /// `-zp`: MAG_ZEROPOINT (default None: the configuration's).
    pub zero_point: Option<f64>,
    /// `-fwhm`: SEEING_FWHM in arcsec, or pixels with PIXEL_SCALE 1 (default None: the
    /// configuration's).
    pub fwhm: Option<f64>,
    /// Any other SExtractor parameter, `(NAME, VALUE)`; last, so they override everything.
    pub args: Vec<(String, String)>,
    /// `(PARAMETER, folders)`: the file `IMAGE_*.fits` of each folder, comma-separated.
    pub files: Vec<(String, Vec<PathBuf>)>,
}

/// What one run found.
#[derive(Clone, Debug, PartialEq)]
pub struct SexReport {
    /// The catalogue written, `NAME_cat.fits`.
    pub catalog: PathBuf,
    /// Objects in the catalogue.
    pub objects: usize,
    /// The GAIN passed to SExtractor in e-/ADU (None: the configuration's).
    pub gain: Option<f64>,
    /// SExtractor's warnings.
    pub warnings: Vec<String>,
}

/// A SExtractor ready to run on image pairs.
#[derive(Debug)]
pub struct Sextractor {
    tool: Tool,
    opts: SexOptions,
    files: ResolvedFiles,
    _lock: OutputLock,
}

impl Sextractor {
    /// Finds the SExtractor binary and the configuration's files; checks the folders and
    /// that the output folder can be written, and locks it (refused when another run
    /// holds it).
    pub fn new(opts: SexOptions) -> Result<Sextractor> {
        let tool = Tool::find(
            "SExtractor",
            &["source-extractor", "sex"],
            "Debian/Ubuntu: apt-get install source-extractor",
        )?;
        if opts.weights.len() > 2 {
            return Err(Error::Invalid(
                "--weights takes one folder, or two in dual mode".into(),
            ));
        }
        for dir in opts
            .flags
            .iter()
            .chain(&opts.weights)
            .chain(opts.files.iter().flat_map(|(_, d)| d))
        {
            if !dir.is_dir() {
                return Err(Error::file(dir, "no such folder"));
            }
        }
        let lock = lock_output_dir(&opts.output, "sex_dre")?;
        drop(ScratchDir::new(&opts.output, "sex_dre")?);
        let files = opts.config.resolve_files();
        Ok(Sextractor {
            tool,
            opts,
            files,
            _lock: lock,
        })
    }

    /// The configuration file used (None: the shipped one).
    pub fn config_file(&self) -> Option<&Path> {
        self.opts.config.file.as_deref()
    }

    /// Notes about the configuration (files not found, shipped files used instead).
    pub fn notes(&self) -> &[String] {
        &self.files.notes
    }

    /// Where the outputs of `pair` go.
    pub fn output_dir(&self, pair: &ImagePair) -> PathBuf {
        if self.opts.subdir {
            self.opts.output.join(&pair.name)
        } else {
            self.opts.output.clone()
        }
    }

    /// Whether `pair`'s outputs are complete and were made by this same SExtractor from the
    /// same images, files and parameters (the record [`Sextractor::run`] writes beside them
    /// says so): `sex_dre --resume` skips such a pair.
    pub fn up_to_date(&self, pair: &ImagePair) -> bool {
        let out_dir = self.output_dir(pair);
        let record = record_file(&out_dir, &pair.name, "sex_dre");
        if !record.is_file() {
            return false;
        }
        let check = || -> Result<bool> {
            let gain = match &self.opts.gain {
                Some(mode) => Some(image_gain(&pair.measurement, mode, &self.opts.gain_key)?),
                None => None,
            };
            let out_abs = std::path::absolute(&out_dir).at(&out_dir)?;
            let scratch = ScratchDir::new(&out_abs, &format!("{}.sex_dre", pair.name))?;
            let args = self.command_args(pair, scratch.path(), gain)?;
            Ok(self.provenance(&args, scratch.path()).matches(&record))
        };
        check().unwrap_or(false)
    }

    fn provenance(&self, args: &[OsString], scratch: &Path) -> Provenance {
        let mut p = Provenance::new("sex_dre");
        p.command(&self.tool.path, args, scratch);
        p
    }

    /// Runs SExtractor on one pair; outputs appear only when it succeeded, followed by a
    /// record of what they were made from (see [`Sextractor::up_to_date`]).
    pub fn run(&self, pair: &ImagePair) -> Result<SexReport> {
        let out_dir = self.output_dir(pair);
        let made_dir = !out_dir.exists();
        let result = self.run_in(pair, &out_dir);
        if result.is_err() && made_dir {
            // A sub-folder made for this image only; left in place if anything is in it.
            let _ = std::fs::remove_dir(&out_dir);
        }
        result
    }

    fn run_in(&self, pair: &ImagePair, out_dir: &Path) -> Result<SexReport> {
        let gain = match &self.opts.gain {
            Some(mode) => Some(image_gain(&pair.measurement, mode, &self.opts.gain_key)?),
            None => None,
        };
        let out_abs = std::path::absolute(out_dir).at(out_dir)?;
        let scratch = ScratchDir::new(&out_abs, &format!("{}.sex_dre", pair.name))?;
        let args = self.command_args(pair, scratch.path(), gain)?;
        let record = record_file(out_dir, &pair.name, "sex_dre");
        let made_of = self.provenance(&args, scratch.path());
        forget_record(&record)?;
        let aliased = alias_args(&args, scratch.path())?;
        let run = self
            .tool
            .run(&aliased.args, None)
            .map_err(|e| Error::file(&pair.measurement, e))?;
        aliased.restore()?;
        let name = |s: &str| format!("{}{s}", pair.name);
        for s in SUFFIXES {
            if !scratch.path().join(name(s)).is_file() {
                return Err(Error::file(
                    &pair.measurement,
                    format!("SExtractor wrote no {}", name(s)),
                ));
            }
        }
        let objects = count_objects(&scratch.path().join(name(CATALOG_SUFFIX)))?;
        let outputs: Vec<PathBuf> = SUFFIXES.iter().map(|s| out_dir.join(name(s))).collect();
        for (s, dest) in SUFFIXES.iter().zip(&outputs) {
            scratch.commit(&name(s), dest)?;
        }
        made_of.write(&record, &outputs)?;
        Ok(SexReport {
            catalog: out_dir.join(name(CATALOG_SUFFIX)),
            objects,
            gain,
            warnings: run.warnings,
        })
    }

    /// SExtractor's command line for `pair`, writing into `dir`. The shipped configuration
    /// and parameter list are written there too when they are used.
    pub fn command_args(
        &self,
        pair: &ImagePair,
        dir: &Path,
        gain: Option<f64>,
    ) -> Result<Vec<OsString>> {
        let mut a = Args::default();
        let abs = |p: &Path| std::path::absolute(p).at(p);
        let (det, meas) = (abs(&pair.detection)?, abs(&pair.measurement)?);
        if pair.is_dual() {
            a.push_one(join_paths(&[det, meas]));
        } else {
            a.push_one(meas.into_os_string());
        }
        let config = match &self.opts.config.file {
            Some(f) => f.clone(),
            None => write_beside(dir, "default.sex", DEFAULT_SEX)?,
        };
        a.set("-c", config);
        let base = |s: &str| dir.join(format!("{}{s}", pair.name));
        a.set("-CATALOG_NAME", base(CATALOG_SUFFIX));
        a.set("-CATALOG_TYPE", "FITS_LDAC");
        a.set("-CHECKIMAGE_TYPE", CHECKIMAGE_TYPE);
        a.set(
            "-CHECKIMAGE_NAME",
            join_paths(&[
                base(BACKGROUND_SUFFIX),
                base(RMS_SUFFIX),
                base(SEGMENTATION_SUFFIX),
            ]),
        );
        let params = match &self.files.parameters {
            Some(p) if self.opts.config.file.is_some() => p.clone(),
            _ => write_beside(dir, "default.param", DEFAULT_PARAM)?,
        };
        a.set("-PARAMETERS_NAME", params);
        if let Some(f) = &self.files.filter {
            a.set("-FILTER_NAME", f);
        }
        if let Some(f) = &self.files.starnnw {
            a.set("-STARNNW_NAME", f);
        }
        if let Some(dir) = &self.opts.flags {
            let flag = existing(dir.join(format!("{}_flag.fits", pair.detection_name)))?;
            a.set("-FLAG_IMAGE", abs(&flag)?);
        }
        if !self.opts.weights.is_empty() {
            self.weight_args(pair, &mut a)?;
        }
        if let Some(g) = gain {
            a.set("-GAIN", g.to_string());
        }
        if let Some(zp) = self.opts.zero_point {
            a.set("-MAG_ZEROPOINT", zp.to_string());
        }
        if let Some(fwhm) = self.opts.fwhm {
            a.set("-SEEING_FWHM", fwhm.to_string());
        }
        for (param, dirs) in &self.opts.files {
            let names: Vec<PathBuf> = dirs
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    // With two folders in dual mode, the first holds the detection image's file.
                    let stem = if i == 0 && dirs.len() == 2 {
                        &pair.detection_name
                    } else {
                        &pair.name
                    };
                    find_companion(d, stem).and_then(|p| abs(&p))
                })
                .collect::<Result<_>>()?;
            a.set(&dash(param), join_paths(&names));
        }
        for (k, v) in &self.opts.args {
            a.set(&dash(k), v);
        }
        Ok(a.0)
    }

    fn weight_args(&self, pair: &ImagePair, a: &mut Args) -> Result<()> {
        let w = &self.opts.weights;
        let det = existing(w[0].join(format!("{}_wht.fits", pair.detection_name)))?;
        let mut images = vec![std::path::absolute(&det).at(&det)?];
        if pair.is_dual() {
            let dir = w.get(1).unwrap_or(&w[0]);
            let stem = if w.len() == 2 {
                &pair.name
            } else {
                &pair.detection_name
            };
            let meas = existing(dir.join(format!("{stem}_wht.fits")))?;
            images.push(std::path::absolute(&meas).at(&meas)?);
        }
        // Without a weight type SExtractor ignores the image; the user's own choice wins.
        let user_type = self
            .opts
            .args
            .iter()
            .any(|(k, _)| dash(k).eq_ignore_ascii_case("-WEIGHT_TYPE"))
            || self
                .opts
                .config
                .get("WEIGHT_TYPE")
                .is_some_and(|t| !t.eq_ignore_ascii_case("NONE"));
        if !user_type {
            let types = vec!["MAP_WEIGHT"; images.len()].join(",");
            a.set("-WEIGHT_TYPE", types);
        }
        a.set("-WEIGHT_IMAGE", join_paths(&images));
        Ok(())
    }
}

/// A command line of `-KEY value` pairs after the image.
#[derive(Default)]
struct Args(Vec<OsString>);

impl Args {
    fn push_one(&mut self, v: OsString) {
        self.0.push(v);
    }
    fn set(&mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) {
        self.0.push(key.into());
        self.0.push(value.as_ref().to_os_string());
    }
}

fn dash(key: &str) -> String {
    format!("-{}", key.trim_start_matches('-'))
}

fn join_paths(paths: &[PathBuf]) -> OsString {
    let mut s = OsString::new();
    for (i, p) in paths.iter().enumerate() {
        if i > 0 {
            s.push(",");
        }
        s.push(p);
    }
    s
}

fn existing(p: PathBuf) -> Result<PathBuf> {
    if p.is_file() {
        Ok(p)
    } else {
        Err(Error::file(p, "no such file"))
    }
}

/// The one file `STEM_*.fits` of `dir` (`--file`): `sim_a` never takes `sim_ab_wht.fits`.
fn find_companion(dir: &Path, stem: &str) -> Result<PathBuf> {
    let prefix = format!("{stem}_");
    let found: Vec<PathBuf> = pairing::list_images(dir)?
        .into_iter()
        .filter(|(s, _)| s.starts_with(&prefix))
        .map(|(_, p)| p)
        .collect();
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(Error::file(dir, format!("no file {prefix}*.fits"))),
        _ => Err(Error::file(
            dir,
            format!("several files {prefix}*.fits: keep one"),
        )),
    }
}

fn write_beside(dir: &Path, name: &str, text: &str) -> Result<PathBuf> {
    let p = dir.join(name);
    std::fs::write(&p, text).at(&p)?;
    Ok(p)
}

/// Rows of the catalogue's LDAC_OBJECTS tables.
fn count_objects(path: &Path) -> Result<usize> {
    let mut f = crate::io::fits::open_fits(path)?;
    let mut n = 0;
    for hdu in f.iter().collect::<Vec<_>>() {
        let name = hdu
            .read_key::<String>(&mut f, "EXTNAME")
            .unwrap_or_default();
        if name.trim() == "LDAC_OBJECTS" {
            n += hdu.read_key::<i64>(&mut f, "NAXIS2").at(path)? as usize;
        }
    }
    Ok(n)
}
