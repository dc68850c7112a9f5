//! Which tiles of a survey are done: a tile is done when each of the four stages would
//! skip it with `--resume`, that is when the record each tool wrote beside its outputs
//! says they are complete and made from the current inputs and options. The options are
//! those a task passes to the tools (`survey.toml`'s, with absolute paths), so the
//! decision is the tools' own.

use crate::survey::config::DeviceName;
use crate::survey::task::{psfex_config, sex_config};
use crate::survey::tasks::{RunPlan, Survey};
use crate::{
    cuts_up_to_date, list_catalogs, list_tile_images, pair_images, tile_up_to_date, CatalogFile,
    CutOptions, Filter, ImagePair, PsfSource, Psfex, RunConfig, SexConfig, SexOptions, Sextractor,
    TileInputs,
};
use std::path::PathBuf;
use std::str::FromStr;

/// The four tools' `--resume` decisions for the tiles of a survey, set up once.
pub struct DoneCheck<'a> {
    survey: &'a Survey,
    sex: Option<(Sextractor, Vec<ImagePair>)>,
    psfex: Option<(Psfex, Vec<CatalogFile>)>,
    cuts: Option<(CutOptions, Vec<PathBuf>)>,
    dre: Option<RunConfig>,
}

impl<'a> DoneCheck<'a> {
    /// The checks of `survey`'s tools with `plan`'s cube. A stage that cannot be set up
    /// (its program missing, an input folder not there yet) has nothing done.
    pub fn new(survey: &'a Survey, plan: &RunPlan) -> Self {
        let c = &survey.config;
        let p = |s: &str| survey.path(s);
        let sex = (|| {
            let s = &c.sex_dre;
            let opts = SexOptions {
                config: SexConfig::choose(sex_config(survey).as_deref()).ok()?,
                output: p(&s.output),
                subdir: s.subdir,
                flags: s.flags.as_deref().map(p),
                weights: s.weights.iter().map(|w| p(w)).collect(),
                gain: match &s.gain {
                    Some(g) => Some(crate::GainMode::from_str(g).ok()?),
                    None => None,
                },
                gain_key: crate::GainKey::from_str(&s.gain_key).ok()?,
                zero_point: s.zp,
                fwhm: s.fwhm,
                args: s.arg.clone(),
                files: s
                    .file
                    .iter()
                    .map(|f| (f[0].clone(), f[1..].iter().map(|d| p(d)).collect()))
                    .collect(),
            };
            let detect = p(&s.input[0]);
            let measure = s.input.get(1).map(|d| p(d));
            let pairs = pair_images(&detect, measure.as_deref(), s.sep.as_deref()).ok()?;
            Some((Sextractor::new(opts).ok()?, pairs.pairs))
        })();
        let psfex = (|| {
            let s = &c.psfex_dre;
            let psfex = Psfex::new(psfex_config(survey).as_deref(), &p(&s.output)).ok()?;
            Some((psfex, list_catalogs(&p(&s.input)).ok()?))
        })();
        let cuts = (|| {
            let s = &c.make_cuts;
            let opts = CutOptions {
                margin: f64::from(s.margin),
                max_stellarity: s.max_stellarity,
                filters: s
                    .filter
                    .iter()
                    .map(|(param, min, max)| Filter {
                        param: param.clone(),
                        min: *min,
                        max: *max,
                    })
                    .collect(),
                centroids: if s.centroids {
                    Some(crate::CentroidMode::from_str(&s.centroids_mode).ok()?)
                } else {
                    None
                },
                compression: crate::Compression::from_str(&s.compression).ok()?,
                ..CutOptions::default()
            };
            Some((opts, list_tile_images(&p(&s.input)).ok()?))
        })();
        let dre = (|| {
            let s = &c.dre;
            Some(RunConfig {
                psf: PsfSource::from_path(p(&s.psf)),
                cuts_dir: p(&s.input),
                summary_dir: p(&s.output),
                chi_dir: p(&s.chi),
                catalogs_dir: p(&s.catalogs),
                mosaics_dir: (s.mosaics || s.png).then(|| p(&s.mosaics_dir)),
                png: s.png,
                compression: crate::Compression::from_str(&s.compression).ok()?,
                chunk: s.chunk.map(|n| n as usize),
                resume: true,
                cube_file: Some(plan.cube.clone()),
            })
        })();
        DoneCheck {
            survey,
            sex,
            psfex,
            cuts,
            dre,
        }
    }

    /// Whether all four stages of tile `name` are done.
    pub fn done(&self, name: &str) -> bool {
        self.sex_done(name) && self.psfex_done(name) && self.cuts_done(name) && self.dre_done(name)
    }

    fn sex_done(&self, name: &str) -> bool {
        self.sex.as_ref().is_some_and(|(sex, pairs)| {
            pairs
                .iter()
                .find(|p| p.name == name)
                .is_some_and(|p| sex.up_to_date(p))
        })
    }

    fn psfex_done(&self, name: &str) -> bool {
        self.psfex.as_ref().is_some_and(|(psfex, cats)| {
            cats.iter()
                .find(|c| c.name == name)
                .is_some_and(|c| psfex.up_to_date(c))
        })
    }

    fn cuts_done(&self, name: &str) -> bool {
        let s = &self.survey.config.make_cuts;
        self.cuts.as_ref().is_some_and(|(opts, tiles)| {
            tiles
                .iter()
                .find(|t| t.file_stem().is_some_and(|stem| stem == name))
                .is_some_and(|t| {
                    let catalogs = s.catalogs.as_deref().map(|c| self.survey.path(c));
                    let inputs = TileInputs::locate(
                        t,
                        &self.survey.path(&s.sextracted),
                        catalogs.as_deref(),
                    );
                    cuts_up_to_date(&inputs, &self.survey.path(&s.output), opts)
                })
        })
    }

    fn dre_done(&self, name: &str) -> bool {
        // The backend's name of a GPU is known only once it is opened: on a GPU every
        // tile's fit is checked by dre --resume itself, in its task.
        if self.survey.config.dre.device != DeviceName::Cpu {
            return false;
        }
        self.dre
            .as_ref()
            .is_some_and(|cfg| tile_up_to_date(cfg, "CPU", name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_survey_with_png_checks_the_tiles_pictures() {
        let dir = tempfile::tempdir().unwrap();
        let plan = crate::survey::task::tests::one_tile_plan();
        let dre = |toml: &str| {
            std::fs::write(dir.path().join("survey.toml"), toml).unwrap();
            let survey = Survey::open(dir.path()).unwrap();
            DoneCheck::new(&survey, &plan).dre.unwrap()
        };
        let off = dre("");
        assert!(!off.png && off.mosaics_dir.is_none());
        // png implies the mosaics, as `dre --png` does.
        let on = dre("[dre]\npng = true\n");
        assert!(on.png);
        assert!(on.mosaics_dir.unwrap().ends_with("Mosaics"));
    }
}
