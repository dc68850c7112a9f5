//! A survey's folder and its bookkeeping under `ROOT/.survey/`: the runs (each a plan of
//! tasks, the tiles of each), and one state record per tile saying, per stage, whether it
//! is pending, running, done or failed (with the one-line error), where (host, job and
//! task ids) and when. Records are written atomically (a temporary beside, renamed), each
//! by the one task that owns its tile in the run, so a reader never sees half a record.
//!
//! ```text
//! ROOT/survey.toml                the settings (config.rs)
//! ROOT/.survey/state/NAME.json    the tile's state record
//! ROOT/.survey/runs/NNNN/plan.json    run NNNN: its tasks and how they run
//! ROOT/.survey/runs/NNNN/array.sh     its Slurm batch script (slurm)
//! ROOT/.survey/runs/NNNN/logs/        what each task printed
//! ROOT/.survey/cube/              the default cube, rendered once
//! ```

use crate::error::{Error, Result};
use crate::io::atomic::write_file;
use crate::survey::config::{ExecutorKind, SurveyConfig};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The bookkeeping folder in a survey's folder.
pub const SURVEY_DIR: &str = ".survey";

/// The four stages, in the order a tile goes through them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Stage {
    /// SExtractor: catalogue and check images.
    #[serde(rename = "sex_dre")]
    SexDre,
    /// PSFEx: the tile's PSF.
    #[serde(rename = "psfex_dre")]
    PsfexDre,
    /// The cut file.
    #[serde(rename = "make_cuts")]
    MakeCuts,
    /// The fit: chi file and Summary.
    #[serde(rename = "dre")]
    Dre,
}

impl Stage {
    /// Every stage, in order.
    pub const ALL: [Stage; 4] = [Stage::SexDre, Stage::PsfexDre, Stage::MakeCuts, Stage::Dre];

    /// The stage's tool (its program's name).
    pub fn tool(self) -> &'static str {
        match self {
            Stage::SexDre => "sex_dre",
            Stage::PsfexDre => "psfex_dre",
            Stage::MakeCuts => "make_cuts",
            Stage::Dre => "dre",
        }
    }
}

/// Where a tile, or one of its stages, stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TileState {
    /// Not started.
    Pending,
    /// Started and not finished (or its task ended without saying: see
    /// [`survey_status`](crate::survey_status)).
    Running,
    /// Finished, outputs complete.
    Done,
    /// Failed: see the error.
    Failed,
}

/// One stage of one tile.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageRecord {
    /// The stage.
    pub stage: Stage,
    /// Where it stands.
    pub state: TileState,
    /// When it started (seconds since 1970, UTC).
    #[serde(default)]
    pub started: Option<f64>,
    /// When it ended.
    #[serde(default)]
    pub ended: Option<f64>,
    /// Its error, one line (failed only).
    #[serde(default)]
    pub error: Option<String>,
}

/// A tile's state record, `.survey/state/NAME.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TileRecord {
    /// The tile's name.
    pub tile: String,
    /// The run that last took the tile.
    pub run: u32,
    /// How that run's tasks ran.
    pub executor: ExecutorKind,
    /// The Slurm job (the array's id) that runs the tile, if any.
    #[serde(default)]
    pub job: Option<String>,
    /// The task (array index) that runs the tile.
    pub task: usize,
    /// The host the task ran on (once started).
    #[serde(default)]
    pub host: Option<String>,
    /// The task's process id (once started).
    #[serde(default)]
    pub pid: Option<u32>,
    /// The four stages, in order.
    pub stages: Vec<StageRecord>,
}

impl TileRecord {
    /// A tile given to `task` of `run`, not started.
    pub fn pending(tile: &str, run: &RunPlan, task: usize) -> Self {
        TileRecord {
            tile: tile.to_string(),
            run: run.run,
            executor: run.executor,
            job: run.job.clone(),
            task,
            host: None,
            pid: None,
            stages: Stage::ALL
                .iter()
                .map(|&stage| StageRecord {
                    stage,
                    state: TileState::Pending,
                    started: None,
                    ended: None,
                    error: None,
                })
                .collect(),
        }
    }

    /// The tile's state: failed if a stage failed, done if all are, running if one
    /// started, else pending.
    pub fn state(&self) -> TileState {
        let s = |st| self.stages.iter().any(|r| r.state == st);
        if s(TileState::Failed) {
            TileState::Failed
        } else if self.stages.iter().all(|r| r.state == TileState::Done) && !self.stages.is_empty()
        {
            TileState::Done
        } else if s(TileState::Running) || s(TileState::Done) {
            TileState::Running
        } else {
            TileState::Pending
        }
    }

    /// The stage that failed or is running, if any.
    pub fn current(&self) -> Option<&StageRecord> {
        self.stages
            .iter()
            .find(|r| r.state == TileState::Failed)
            .or_else(|| self.stages.iter().find(|r| r.state == TileState::Running))
    }

    /// The record of `stage`.
    pub fn stage_mut(&mut self, stage: Stage) -> Option<&mut StageRecord> {
        self.stages.iter_mut().find(|r| r.stage == stage)
    }

    /// When the tile started (its first stage) and ended (its last), if it did.
    pub fn span(&self) -> (Option<f64>, Option<f64>) {
        let start = self
            .stages
            .iter()
            .filter_map(|r| r.started)
            .reduce(f64::min);
        let end = self.stages.iter().filter_map(|r| r.ended).reduce(f64::max);
        (start, end)
    }
}

/// One run of `dre_survey run`: its tasks (the tiles of each, in order) and how they run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunPlan {
    /// The run's number (1, 2, ...): its folder `.survey/runs/NNNN/`.
    pub run: u32,
    /// How its tasks run.
    pub executor: ExecutorKind,
    /// When it was made (seconds since 1970).
    pub created: f64,
    /// `--resume`: the tools skip the stages already done.
    pub resume: bool,
    /// The model cube every task fits with.
    pub cube: PathBuf,
    /// `dre --cpu` and `make_cuts --cpu` of every task.
    pub dre_cpu: u32,
    /// The Slurm job array's id, once submitted.
    #[serde(default)]
    pub job: Option<String>,
    /// The host and process that runs a local run's tasks.
    #[serde(default)]
    pub runner: Option<(String, u32)>,
    /// The tiles of each task.
    pub tasks: Vec<Vec<String>>,
}

impl RunPlan {
    /// Every tile of the run.
    pub fn tiles(&self) -> impl Iterator<Item = &String> {
        self.tasks.iter().flatten()
    }
}

/// A survey: its folder (absolute) and settings.
#[derive(Clone, Debug)]
pub struct Survey {
    root: PathBuf,
    /// The settings of `survey.toml` (the defaults where there is none).
    pub config: SurveyConfig,
    /// Whether `survey.toml` exists (else the settings are the defaults).
    pub config_found: bool,
}

impl Survey {
    /// The survey in folder `root`, with its `survey.toml` (the defaults where there is
    /// none). Fails when `root` is not a folder or `survey.toml` is bad.
    pub fn open(root: &Path) -> Result<Survey> {
        if !root.is_dir() {
            return Err(Error::file(root, "no such survey folder"));
        }
        let root = std::path::absolute(root).map_err(|e| Error::file(root, e))?;
        let file = SurveyConfig::file_in(&root);
        let (config, config_found) = if file.exists() {
            (SurveyConfig::read(&file)?, true)
        } else {
            (SurveyConfig::default(), false)
        };
        Ok(Survey {
            root,
            config,
            config_found,
        })
    }

    /// The survey's folder, absolute.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A path of the settings (relative to the survey's folder), absolute.
    pub fn path(&self, p: &str) -> PathBuf {
        self.root.join(p)
    }

    /// `.survey/`
    pub fn survey_dir(&self) -> PathBuf {
        self.root.join(SURVEY_DIR)
    }

    /// `.survey/state/`
    pub fn state_dir(&self) -> PathBuf {
        self.survey_dir().join("state")
    }

    /// `.survey/runs/NNNN/`
    pub fn run_dir(&self, run: u32) -> PathBuf {
        self.survey_dir().join("runs").join(format!("{run:04}"))
    }

    /// The tile names of the survey, sorted: those `sex_dre` takes from its input
    /// folder(s) (`Tiles/NAME.fits`).
    pub fn tiles(&self) -> Result<Vec<String>> {
        let s = &self.config.sex_dre;
        let detect = self.path(&s.input[0]);
        let measure = s.input.get(1).map(|d| self.path(d));
        let pairing = crate::pair_images(&detect, measure.as_deref(), s.sep.as_deref())?;
        let mut names: Vec<String> = pairing.pairs.into_iter().map(|p| p.name).collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// The record of tile `name`, if it has one.
    pub fn record(&self, name: &str) -> Result<Option<TileRecord>> {
        let f = record_path(&self.state_dir(), name);
        match std::fs::read(&f) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Error::file(&f, format!("unreadable state record: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::file(&f, e)),
        }
    }

    /// Writes tile `rec.tile`'s record, atomically.
    pub fn write_record(&self, rec: &TileRecord) -> Result<()> {
        let f = record_path(&self.state_dir(), &rec.tile);
        let json = serde_json::to_vec_pretty(rec).map_err(|e| Error::file(&f, e))?;
        write_file(&f, &json)
    }

    /// Run `run`'s plan.
    pub fn plan(&self, run: u32) -> Result<RunPlan> {
        let f = self.run_dir(run).join("plan.json");
        let bytes = std::fs::read(&f).map_err(|e| Error::file(&f, e))?;
        serde_json::from_slice(&bytes).map_err(|e| Error::file(&f, format!("unreadable plan: {e}")))
    }

    /// Writes `plan` into its run's folder, atomically.
    pub fn write_plan(&self, plan: &RunPlan) -> Result<()> {
        let f = self.run_dir(plan.run).join("plan.json");
        let json = serde_json::to_vec_pretty(plan).map_err(|e| Error::file(&f, e))?;
        write_file(&f, &json)
    }

    /// The number of the latest run, if any.
    pub fn latest_run(&self) -> Option<u32> {
        let dir = self.survey_dir().join("runs");
        std::fs::read_dir(dir)
            .ok()?
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|&r| self.run_dir(r).join("plan.json").is_file())
            .max()
    }

    /// Makes the folder of a new run and returns its number (one more than the last;
    /// two `run`s at once get different numbers).
    pub fn new_run(&self) -> Result<u32> {
        let runs = self.survey_dir().join("runs");
        std::fs::create_dir_all(&runs).map_err(|e| Error::file(&runs, e))?;
        let last = std::fs::read_dir(&runs)
            .map_err(|e| Error::file(&runs, e))?
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .max()
            .unwrap_or(0);
        for run in last + 1..last + 1000 {
            let d = self.run_dir(run);
            match std::fs::create_dir(&d) {
                Ok(()) => {
                    let logs = d.join("logs");
                    std::fs::create_dir(&logs).map_err(|e| Error::file(&logs, e))?;
                    return Ok(run);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::file(&d, e)),
            }
        }
        Err(Error::file(&runs, "cannot make a new run folder"))
    }
}

/// `.survey/state/NAME.json`
fn record_path(state_dir: &Path, name: &str) -> PathBuf {
    state_dir.join(format!("{name}.json"))
}

/// Splits `tiles` into tasks of `per_task` tiles (the last may hold fewer), in order.
pub fn split_tasks(tiles: &[String], per_task: usize) -> Vec<Vec<String>> {
    tiles
        .chunks(per_task.max(1))
        .map(<[String]>::to_vec)
        .collect()
}

/// Seconds since 1970 (UTC).
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// This machine's host name.
pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if r != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// A time (seconds since 1970) as `YYYY-MM-DD HH:MM:SS` UTC.
pub fn format_time(t: f64) -> String {
    let secs = t.max(0.0) as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_split_into_tasks_in_order() {
        let t: Vec<String> = (0..5).map(|i| format!("t{i}")).collect();
        let tasks = split_tasks(&t, 2);
        assert_eq!(tasks.len(), 3);
        assert_eq!(tasks[2], vec!["t4".to_string()]);
        assert_eq!(split_tasks(&t, 10).len(), 1);
        assert!(split_tasks(&[], 3).is_empty());
    }

    #[test]
    fn times_are_utc_dates() {
        assert_eq!(format_time(0.0), "1970-01-01 00:00:00");
        assert_eq!(format_time(951_782_400.0), "2000-02-29 00:00:00");
        assert_eq!(format_time(1_798_761_599.0), "2026-12-31 23:59:59");
    }

    #[test]
    fn a_tile_is_as_far_as_its_stages() {
        let plan = RunPlan {
            run: 1,
            executor: ExecutorKind::Local,
            created: 0.0,
            resume: false,
            cube: PathBuf::new(),
            dre_cpu: 1,
            job: None,
            runner: None,
            tasks: vec![vec!["a".into()]],
        };
        let mut r = TileRecord::pending("a", &plan, 0);
        assert_eq!(r.state(), TileState::Pending);
        r.stages[0].state = TileState::Done;
        assert_eq!(r.state(), TileState::Running);
        r.stages[1].state = TileState::Failed;
        assert_eq!(r.state(), TileState::Failed);
        assert_eq!(r.current().unwrap().stage, Stage::PsfexDre);
        for s in &mut r.stages {
            s.state = TileState::Done;
        }
        assert_eq!(r.state(), TileState::Done);
    }

    #[test]
    fn records_are_written_whole_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let s = Survey::open(dir.path()).unwrap();
        assert!(!s.config_found);
        assert_eq!(s.new_run().unwrap(), 1);
        assert_eq!(s.new_run().unwrap(), 2);
        let plan = RunPlan {
            run: 2,
            executor: ExecutorKind::Slurm,
            created: 1.0,
            resume: true,
            cube: "/c.fits".into(),
            dre_cpu: 2,
            job: Some("17".into()),
            runner: None,
            tasks: vec![vec!["a".into(), "b".into()]],
        };
        s.write_plan(&plan).unwrap();
        assert_eq!(s.plan(2).unwrap(), plan);
        assert_eq!(s.latest_run(), Some(2));
        let r = TileRecord::pending("b", &plan, 0);
        s.write_record(&r).unwrap();
        assert_eq!(s.record("b").unwrap(), Some(r));
        assert_eq!(s.record("zz").unwrap(), None);
        let left: Vec<_> = std::fs::read_dir(s.state_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["b.json"], "no temporary left");
    }
}
