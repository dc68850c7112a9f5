//! `survey.toml`: how `dre_survey` runs a survey. Every option of the four stages under
//! the stage's name, with the names and defaults of the tools' flags (`[make_cuts]
//! max-stellarity = 0.5` is `make_cuts --max-stellarity 0.5`), the model cube, and where
//! the tasks run. [`TEMPLATE`] is the file `dre_survey init` writes: every key, commented;
//! optional keys are commented out. An unknown key, a value of the wrong type or a value a
//! tool would refuse is one line naming the file, the line and the key.

use crate::error::{Error, Result};
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The file of a survey's settings, in its folder.
pub const CONFIG_FILE: &str = "survey.toml";

/// What `dre_survey init` writes: every key with its default, commented.
pub const TEMPLATE: &str = r#"# survey.toml: how dre_survey runs the survey of this folder (dre_survey run).
# Keys are the flags of the tools, with their defaults; relative paths are relative to
# this folder. Optional keys are commented out: remove the '#' to set them. The tiles
# are the FITS images of [sex_dre] input (Tiles/NAME.fits); each is taken through
# sex_dre, psfex_dre, make_cuts and dre in turn.

[run]
# Where the tasks run: "local" (this machine) or "slurm" (one Slurm job array).
# dre_survey run --executor overrides it.
executor = "local"
# Tasks at a time: on this machine (local; 0: one per core), or the job array's limit
# (slurm: --array=0-M%N; 0: no limit). dre_survey run --jobs.
jobs = 0
# Tiles per task: each task (a process, or one task of the job array) takes this many
# tiles through the four stages, one after the other. dre_survey run --tiles-per-task.
tiles-per-task = 1

[slurm]
# sbatch options of the job array. Empty: the cluster's default.
partition = ""
# Time limit of one task (sbatch --time): the time of tiles-per-task tiles.
time = "01:00:00"
# Memory of one task (sbatch --mem): dre holds the cube (171 MiB for the default one) and
# a chunk of objects.
mem = "2G"
# CPUs of one task (sbatch --cpus-per-task); dre uses them all unless [dre] cpu says.
cpus-per-task = 1
# More sbatch arguments, one per string, e.g. ["--account=astro", "--qos=short"];
# dre_survey run --sbatch ARG adds to them.
sbatch = []

[cube]
# The model cube for dre (dre -m FILE). Empty: the default cube (n = 4, 2730 models),
# rendered once into cache-dir before the tasks start.
file = ""
# Where the default cube is rendered (171 MiB); every node must read it.
cache-dir = ".survey/cube"

[sex_dre]
# Folder of the images; two folders for dual mode (detection, measurement).
input = ["Tiles"]
# Separator ending the name key that pairs images in dual mode (default: the whole name).
# sep = "_"
# Output folder.
output = "Sextracted"
# SExtractor configuration (default: ./default.sex of this folder, else DRE's own).
# config = "default.sex"
# One sub-folder per image, OUTPUT/NAME/.
subdir = false
# Folder of flag images NAME_flag.fits (FLAG_IMAGE).
# flags = "Flags"
# Folders of weight maps NAME_wht.fits (WEIGHT_IMAGE); two in dual mode.
weights = []
# GAIN: "counts" (the header's), "cps" (header gain x EXPTIME) or a number in e-/ADU
# (default: the configuration's).
# gain = "counts"
# Header key of the gain for counts/cps; "auto": GAIN, else the one key containing GAIN.
gain-key = "auto"
# MAG_ZEROPOINT.
# zp = 30.0
# SEEING_FWHM, in arcsec (in pixels with PIXEL_SCALE 1).
# fwhm = 3.0
# Any SExtractor parameter, [NAME, VALUE] (applied last),
# e.g. [["PIXEL_SCALE", "1"], ["PHOT_APERTURES", "5,10,20"]].
arg = []
# Per-image file parameters, [NAME, DIR, ...]: the file DIR/NAME_*.fits of each image,
# e.g. [["WEIGHT_IMAGE", "detect_wht", "photo_wht"]].
file = []

[psfex_dre]
# Folder of the SExtractor catalogues NAME_cat.fits.
input = "Sextracted"
# Output folder of the PSFs NAME.psf.
output = "PSF"
# PSFEx configuration (default: ./default.psfex of this folder, else DRE's own).
# config = "default.psfex"

[make_cuts]
# Folder of the tiles.
input = "Tiles"
# Folder of the SExtractor check images.
sextracted = "Sextracted"
# Folder of the catalogues NAME_cat.fits (default: beside the check images).
# catalogs = "Sextracted"
# Folder of the cut files NAME_cuts.h5.
output = "Cuts"
# Leave out objects closer than this many pixels to an edge.
margin = 80
# Leave out objects with CLASS_STAR at or above this (stars).
max-stellarity = 0.5
# Keep only objects with MIN < PARAM < MAX, [PARAM, MIN, MAX],
# e.g. [["MAG_AUTO", 17, 21], ["MAGERR_AUTO", 0, 0.5]].
filter = []
# Re-centre each cut on a recomputed centroid.
centroids = false
# How: "com" (centre of mass), "1dg" (1-D Gaussians), "2dg" (2-D Gaussian).
centroids-mode = "com"
# Compression of the cut files: "none", "low" (lzf), "medium" (gzip 4), "high" (gzip 9).
compression = "medium"
# Also say, per tile, why objects were left out.
warn = false

[dre]
# Folder of the PSFs NAME.psf, or one PSF file for every tile.
psf = "PSF"
# Folder of the cut files NAME_cuts.h5.
input = "Cuts"
# Folder of the Summary tables NAME_dre.fits.
output = "Summary"
# Folder of the chi-square cubes NAME_chi.h5.
chi = "Chi"
# Folder of the SExtractor catalogues joined to the Summary.
catalogs = "Sextracted"
# Write a mosaic per object (data | segment | model | residual).
mosaics = false
# Folder of the mosaics.
mosaics-dir = "Mosaics"
# Also a PNG picture of each fit beside its mosaic (implies mosaics).
png = false
# Threads (default: [slurm] cpus-per-task on Slurm; locally, the cores over [run] jobs).
# cpu = 1
# Where to fit: "cpu", or "cuda" (an NVIDIA GPU).
device = "cpu"
# Objects fitted together per pass over the cube (default: 64 on the CPU, 4096 on a GPU).
# chunk = 64
# Compression of the chi files: "none", "low", "medium", "high".
compression = "medium"
# Print warnings (they are always printed).
warn = false
"#;

/// Where the tasks run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutorKind {
    /// On this machine, `jobs` tasks at a time.
    #[default]
    Local,
    /// One Slurm job array.
    Slurm,
}

impl FromStr for ExecutorKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "local" => Ok(ExecutorKind::Local),
            "slurm" => Ok(ExecutorKind::Slurm),
            _ => Err(Error::Invalid(format!(
                "the executor is local or slurm, not {s:?}"
            ))),
        }
    }
}

impl Display for ExecutorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ExecutorKind::Local => "local",
            ExecutorKind::Slurm => "slurm",
        })
    }
}

/// A survey's settings: `survey.toml`. Defaults are the tools' (and [`TEMPLATE`]'s).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SurveyConfig {
    /// `[run]`: the executor, tasks at a time, tiles per task.
    pub run: RunSettings,
    /// `[slurm]`: the job array's sbatch options.
    pub slurm: SlurmSettings,
    /// `[cube]`: the model cube.
    pub cube: CubeSettings,
    /// `[sex_dre]`
    pub sex_dre: SexDreOptions,
    /// `[psfex_dre]`
    pub psfex_dre: PsfexDreOptions,
    /// `[make_cuts]`
    pub make_cuts: MakeCutsOptions,
    /// `[dre]`
    pub dre: DreOptions,
}

/// `[run]`
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "kebab-case")]
pub struct RunSettings {
    /// `executor`: local or slurm (default local).
    pub executor: ExecutorKind,
    /// `jobs`: tasks at a time (local; 0: one per core) or the array's limit (slurm; 0:
    /// none); default 0.
    pub jobs: u32,
    /// `tiles-per-task`: at least 1 (default 1).
    #[serde(deserialize_with = "at_least_one")]
    pub tiles_per_task: u32,
}

impl Default for RunSettings {
    fn default() -> Self {
        RunSettings {
            executor: ExecutorKind::Local,
            jobs: 0,
            tiles_per_task: 1,
        }
    }
}

/// `[slurm]`: sbatch options of the job array.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "kebab-case")]
pub struct SlurmSettings {
    /// `--partition` (empty: the cluster's default).
    pub partition: String,
    /// `--time` of one task (default 01:00:00).
    pub time: String,
    /// `--mem` of one task (default 2G).
    pub mem: String,
    /// `--cpus-per-task` (default 1).
    #[serde(deserialize_with = "at_least_one")]
    pub cpus_per_task: u32,
    /// More sbatch arguments.
    pub sbatch: Vec<String>,
}

impl Default for SlurmSettings {
    fn default() -> Self {
        SlurmSettings {
            partition: String::new(),
            time: "01:00:00".into(),
            mem: "2G".into(),
            cpus_per_task: 1,
            sbatch: Vec::new(),
        }
    }
}

/// `[cube]`
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "kebab-case")]
pub struct CubeSettings {
    /// `file`: the cube (empty: the default cube).
    pub file: String,
    /// `cache-dir`: where the default cube is rendered (default `.survey/cube`).
    pub cache_dir: String,
}

impl Default for CubeSettings {
    fn default() -> Self {
        CubeSettings {
            file: String::new(),
            cache_dir: ".survey/cube".into(),
        }
    }
}

/// `[sex_dre]`: `sex_dre`'s flags.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "kebab-case")]
pub struct SexDreOptions {
    /// `-i DIR [DIR2]` (default Tiles).
    #[serde(deserialize_with = "one_or_two_folders")]
    pub input: Vec<String>,
    /// `-sep C`.
    pub sep: Option<String>,
    /// `-o DIR` (default Sextracted).
    pub output: String,
    /// `-c FILE`.
    pub config: Option<String>,
    /// `--subdir`.
    pub subdir: bool,
    /// `--flags DIR`.
    pub flags: Option<String>,
    /// `--weights DIR [DIR2]`.
    #[serde(deserialize_with = "up_to_two_folders")]
    pub weights: Vec<String>,
    /// `--gain counts|cps|FLOAT`.
    #[serde(deserialize_with = "checked_opt::<_, crate::GainMode>")]
    pub gain: Option<String>,
    /// `--gain-key KEY|auto` (default auto).
    #[serde(deserialize_with = "checked::<_, crate::GainKey>")]
    pub gain_key: String,
    /// `-zp ZP`.
    pub zp: Option<f64>,
    /// `-fwhm F`.
    pub fwhm: Option<f64>,
    /// `--arg NAME VALUE`, repeated.
    pub arg: Vec<(String, String)>,
    /// `--file NAME DIR...`, repeated.
    #[serde(deserialize_with = "file_params")]
    pub file: Vec<Vec<String>>,
}

impl Default for SexDreOptions {
    fn default() -> Self {
        SexDreOptions {
            input: vec!["Tiles".into()],
            sep: None,
            output: "Sextracted".into(),
            config: None,
            subdir: false,
            flags: None,
            weights: Vec::new(),
            gain: None,
            gain_key: "auto".into(),
            zp: None,
            fwhm: None,
            arg: Vec::new(),
            file: Vec::new(),
        }
    }
}

/// `[psfex_dre]`: `psfex_dre`'s flags.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "kebab-case")]
pub struct PsfexDreOptions {
    /// `-i DIR` (default Sextracted).
    pub input: String,
    /// `-o DIR` (default PSF).
    pub output: String,
    /// `-c FILE`.
    pub config: Option<String>,
}

impl Default for PsfexDreOptions {
    fn default() -> Self {
        PsfexDreOptions {
            input: "Sextracted".into(),
            output: "PSF".into(),
            config: None,
        }
    }
}

/// `[make_cuts]`: `make_cuts`'s flags.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "kebab-case")]
pub struct MakeCutsOptions {
    /// `-i DIR` (default Tiles).
    pub input: String,
    /// `-s DIR` (default Sextracted).
    pub sextracted: String,
    /// `-c DIR`.
    pub catalogs: Option<String>,
    /// `-o DIR` (default Cuts).
    pub output: String,
    /// `--margin N` (default 80).
    pub margin: u32,
    /// `--max-stellarity X` (default 0.5).
    pub max_stellarity: f64,
    /// `-f PARAM MIN MAX`, repeated.
    pub filter: Vec<(String, f64, f64)>,
    /// `--centroids`.
    pub centroids: bool,
    /// `--centroids-mode com|1dg|2dg` (default com).
    #[serde(deserialize_with = "checked::<_, crate::CentroidMode>")]
    pub centroids_mode: String,
    /// `--compression none|low|medium|high` (default medium).
    #[serde(deserialize_with = "checked::<_, crate::Compression>")]
    pub compression: String,
    /// `--warn`.
    pub warn: bool,
}

impl Default for MakeCutsOptions {
    fn default() -> Self {
        MakeCutsOptions {
            input: "Tiles".into(),
            sextracted: "Sextracted".into(),
            catalogs: None,
            output: "Cuts".into(),
            margin: 80,
            max_stellarity: 0.5,
            filter: Vec::new(),
            centroids: false,
            centroids_mode: "com".into(),
            compression: "medium".into(),
            warn: false,
        }
    }
}

/// `dre --device`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceName {
    /// The CPU.
    #[default]
    Cpu,
    /// An NVIDIA GPU.
    Cuda,
}

/// `[dre]`: `dre`'s flags (the cube is `[cube]`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "kebab-case")]
pub struct DreOptions {
    /// `--psf DIR|FILE` (default PSF).
    pub psf: String,
    /// `-i DIR` (default Cuts).
    pub input: String,
    /// `-o DIR` (default Summary).
    pub output: String,
    /// `--chi DIR` (default Chi).
    pub chi: String,
    /// `--catalogs DIR` (default Sextracted).
    pub catalogs: String,
    /// `--mosaics`.
    pub mosaics: bool,
    /// `--mosaics-dir DIR` (default Mosaics).
    pub mosaics_dir: String,
    /// `--png` (implies `mosaics`).
    pub png: bool,
    /// `--cpu N`.
    #[serde(deserialize_with = "at_least_one_opt")]
    pub cpu: Option<u32>,
    /// `--device cpu|cuda` (default cpu).
    pub device: DeviceName,
    /// `--chunk N`.
    #[serde(deserialize_with = "at_least_one_opt")]
    pub chunk: Option<u32>,
    /// `--compression none|low|medium|high` (default medium).
    #[serde(deserialize_with = "checked::<_, crate::Compression>")]
    pub compression: String,
    /// `--warn`.
    pub warn: bool,
}

impl Default for DreOptions {
    fn default() -> Self {
        DreOptions {
            psf: "PSF".into(),
            input: "Cuts".into(),
            output: "Summary".into(),
            chi: "Chi".into(),
            catalogs: "Sextracted".into(),
            mosaics: false,
            mosaics_dir: "Mosaics".into(),
            png: false,
            cpu: None,
            device: DeviceName::Cpu,
            chunk: None,
            compression: "medium".into(),
            warn: false,
        }
    }
}

/// A string the library parses as `T`, kept as written (the tools get it as a flag).
fn checked<'de, D: Deserializer<'de>, T: FromStr<Err = Error>>(
    d: D,
) -> std::result::Result<String, D::Error> {
    let s = String::deserialize(d)?;
    T::from_str(&s).map_err(serde::de::Error::custom)?;
    Ok(s)
}

fn checked_opt<'de, D: Deserializer<'de>, T: FromStr<Err = Error>>(
    d: D,
) -> std::result::Result<Option<String>, D::Error> {
    checked::<D, T>(d).map(Some)
}

fn at_least_one<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<u32, D::Error> {
    let n = u32::deserialize(d)?;
    if n == 0 {
        return Err(serde::de::Error::custom("must be at least 1"));
    }
    Ok(n)
}

fn at_least_one_opt<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<u32>, D::Error> {
    at_least_one(d).map(Some)
}

fn one_or_two_folders<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Vec<String>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    if v.is_empty() || v.len() > 2 {
        return Err(serde::de::Error::custom(
            "one folder, or two for dual mode (detection, measurement)",
        ));
    }
    Ok(v)
}

fn up_to_two_folders<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Vec<String>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    if v.len() > 2 {
        return Err(serde::de::Error::custom(
            "one folder, or two in dual mode (detection, measurement)",
        ));
    }
    Ok(v)
}

fn file_params<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<Vec<String>>, D::Error> {
    let v = Vec::<Vec<String>>::deserialize(d)?;
    if v.iter().any(|f| f.len() < 2) {
        return Err(serde::de::Error::custom(
            "each file parameter is [NAME, DIR, ...]: a name and at least one folder",
        ));
    }
    Ok(v)
}

impl SurveyConfig {
    /// Reads `file`. Every fault is one line: `FILE: line N: [SECTION] KEY: what is wrong`.
    pub fn read(file: &Path) -> Result<SurveyConfig> {
        let text = std::fs::read_to_string(file)
            .map_err(|e| Error::file(file, format!("cannot read: {e}")))?;
        Self::parse(&text).map_err(|e| e.at_file(file))
    }

    /// Parses the text of a `survey.toml`; the error ([`Error::Invalid`]) is the message
    /// without the file.
    pub fn parse(text: &str) -> Result<SurveyConfig> {
        toml::from_str(text).map_err(|e| Error::Invalid(describe(text, &e)))
    }

    /// `survey.toml` in the survey folder `root`.
    pub fn file_in(root: &Path) -> PathBuf {
        root.join(CONFIG_FILE)
    }
}

/// A TOML error as one line: where (line, section) and what, in the words of the file.
fn describe(text: &str, e: &toml::de::Error) -> String {
    let msg = e
        .message()
        .trim()
        .replace("unknown field", "unknown key")
        .replace("missing field", "missing key")
        .replace('\n', " ");
    let Some(span) = e.span() else {
        return msg;
    };
    let before = &text[..span.start.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let section = before
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('[') && !l.starts_with("[["))
        .map(|l| format!(" in {}", l.split(']').next().unwrap_or(l).to_string() + "]"))
        .unwrap_or_default();
    let key = text[span.start.min(text.len())..span.end.min(text.len())].trim();
    let key = if key.is_empty() || key.contains('\n') || key.len() > 40 {
        String::new()
    } else {
        format!(" ({key})")
    };
    format!("line {line}{section}{key}: {msg}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_is_the_defaults() {
        let parsed = SurveyConfig::parse(TEMPLATE).unwrap();
        assert_eq!(parsed, SurveyConfig::default());
        // An empty file is the defaults too.
        assert_eq!(SurveyConfig::parse("").unwrap(), SurveyConfig::default());
    }

    #[test]
    fn optional_keys_and_lists_are_read() {
        let c = SurveyConfig::parse(
            "[run]\nexecutor = \"slurm\"\njobs = 4\n\
             [sex_dre]\nzp = 30\nfwhm = 3.5\narg = [[\"PIXEL_SCALE\", \"1\"]]\n\
             [make_cuts]\nfilter = [[\"MAG_AUTO\", 17, 21.5]]\nmax-stellarity = 1\n\
             [dre]\ncpu = 2\ndevice = \"cuda\"\n",
        )
        .unwrap();
        assert_eq!(c.run.executor, ExecutorKind::Slurm);
        assert_eq!(c.run.jobs, 4);
        assert_eq!(c.sex_dre.zp, Some(30.0));
        assert_eq!(c.sex_dre.arg, vec![("PIXEL_SCALE".into(), "1".into())]);
        assert_eq!(c.make_cuts.filter, vec![("MAG_AUTO".into(), 17.0, 21.5)]);
        assert_eq!(c.make_cuts.max_stellarity, 1.0);
        assert_eq!(c.dre.cpu, Some(2));
        assert_eq!(c.dre.device, DeviceName::Cuda);
    }

    fn error(text: &str) -> String {
        SurveyConfig::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn faults_name_the_line_and_key() {
        let e = error("[run]\njobs = 2\n\n[dre]\nchunk = 8\nmosiacs = true\n");
        assert!(
            e.starts_with("line 6 in [dre] (mosiacs): unknown key `mosiacs`"),
            "{e}"
        );
        assert!(!e.contains('\n'));
        let e = error("[make_cuts]\nmargin = \"wide\"\n");
        assert!(e.starts_with("line 2 in [make_cuts]"), "{e}");
        let e = error("[make_cuts]\ncompression = \"max\"\n");
        assert!(
            e.starts_with("line 2 in [make_cuts]") && e.contains("\"max\""),
            "{e}"
        );
        let e = error("[run]\ntiles-per-task = 0\n");
        assert!(
            e.starts_with("line 2 in [run]") && e.contains("at least 1"),
            "{e}"
        );
        let e = error("[surveyy]\n");
        assert!(
            e.starts_with("line 1") && e.contains("unknown key `surveyy`"),
            "{e}"
        );
        let e = error("[sex_dre]\ngain = \"lots\"\n");
        assert!(e.contains("line 2") && e.contains("not a gain"), "{e}");
        let e = error("[run]\nexecutor = \"pbs\"\n");
        assert!(e.contains("line 2") && e.contains("pbs"), "{e}");
        let e = error("[run\n");
        assert!(e.starts_with("line 1"), "{e}");
    }
}
