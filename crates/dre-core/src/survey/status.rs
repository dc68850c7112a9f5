//! Where a survey stands (`dre_survey status`): every tile done, running, pending or
//! failed, from the tiles' records; a tile recorded as running whose task has ended
//! (cancelled, killed, past its time limit: Slurm no longer runs it, or its process is
//! gone) is failed, with the stage it was on. The throughput is that of the latest run.

use crate::error::Result;
use crate::survey::config::ExecutorKind;
use crate::survey::executor::{array_tasks, slurm_state_live};
use crate::survey::tasks::{host_name, RunPlan, Stage, Survey, TileRecord, TileState};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// One tile's standing.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TileStatus {
    /// The tile.
    pub tile: String,
    /// Where it stands.
    pub state: TileState,
    /// The stage running or failed.
    pub stage: Option<Stage>,
    /// Its one-line error (failed).
    pub error: Option<String>,
    /// The run that last took it.
    pub run: Option<u32>,
    /// The host its task ran on.
    pub host: Option<String>,
    /// The Slurm job array.
    pub job: Option<String>,
    /// The task (array index).
    pub task: Option<usize>,
    /// When it started (seconds since 1970).
    pub started: Option<f64>,
    /// When it ended.
    pub ended: Option<f64>,
}

/// The latest run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunSummary {
    /// Its number.
    pub run: u32,
    /// How its tasks ran.
    pub executor: ExecutorKind,
    /// Its Slurm job array.
    pub job: Option<String>,
    /// Its tasks.
    pub tasks: usize,
    /// Its tiles.
    pub tiles: usize,
    /// With `--resume`.
    pub resume: bool,
    /// When it was made (seconds since 1970).
    pub created: f64,
    /// Its tiles done.
    pub done: usize,
    /// Its tiles failed.
    pub failed: usize,
    /// Tiles done per minute, from its first tile's start to its last tile's end.
    pub tiles_per_minute: Option<f64>,
}

/// Where a survey stands.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SurveyStatus {
    /// The survey's folder.
    pub root: PathBuf,
    /// Its tiles.
    pub tiles: usize,
    /// Tiles done.
    pub done: usize,
    /// Tiles running.
    pub running: usize,
    /// Tiles pending (never started, or waiting in a run).
    pub pending: usize,
    /// Tiles failed.
    pub failed: usize,
    /// The latest run, if any.
    pub last_run: Option<RunSummary>,
    /// Every tile, sorted by name.
    pub tile_status: Vec<TileStatus>,
}

impl SurveyStatus {
    /// The tiles in `state`.
    pub fn in_state(&self, state: TileState) -> impl Iterator<Item = &TileStatus> {
        self.tile_status.iter().filter(move |t| t.state == state)
    }
}

/// The standing of every tile of `survey`.
pub fn survey_status(survey: &Survey) -> Result<SurveyStatus> {
    let tiles = survey.tiles()?;
    let latest = survey.latest_run().and_then(|r| survey.plan(r).ok());
    let mut liveness = Liveness::default();
    let mut out = SurveyStatus {
        root: survey.root().to_path_buf(),
        tiles: tiles.len(),
        done: 0,
        running: 0,
        pending: 0,
        failed: 0,
        last_run: None,
        tile_status: Vec::new(),
    };
    // The latest run's tiles not yet started by their task are pending in it.
    let planned: BTreeMap<&str, usize> = latest
        .iter()
        .flat_map(|p| p.tasks.iter().enumerate())
        .flat_map(|(i, tiles)| tiles.iter().map(move |t| (t.as_str(), i)))
        .collect();
    for name in &tiles {
        let record = survey.record(name);
        let queued = match (&latest, planned.get(name.as_str()), &record) {
            (Some(plan), Some(&task), Ok(rec)) if rec.as_ref().is_none_or(|r| r.run < plan.run) => {
                Some((plan, task))
            }
            _ => None,
        };
        let t = if let Some((plan, task)) = queued {
            TileStatus {
                tile: name.clone(),
                state: TileState::Pending,
                stage: None,
                error: None,
                run: Some(plan.run),
                host: None,
                job: plan.job.clone(),
                task: Some(task),
                started: None,
                ended: None,
            }
        } else {
            match record {
                Ok(Some(rec)) => tile_status(&rec, &mut liveness),
                Ok(None) => TileStatus {
                    tile: name.clone(),
                    state: TileState::Pending,
                    stage: None,
                    error: None,
                    run: None,
                    host: None,
                    job: None,
                    task: None,
                    started: None,
                    ended: None,
                },
                Err(e) => TileStatus {
                    tile: name.clone(),
                    state: TileState::Failed,
                    stage: None,
                    error: Some(e.to_string()),
                    run: None,
                    host: None,
                    job: None,
                    task: None,
                    started: None,
                    ended: None,
                },
            }
        };
        match t.state {
            TileState::Done => out.done += 1,
            TileState::Running => out.running += 1,
            TileState::Pending => out.pending += 1,
            TileState::Failed => out.failed += 1,
        }
        out.tile_status.push(t);
    }
    out.last_run = latest.map(|plan| run_summary(&plan, &out.tile_status));
    Ok(out)
}

fn run_summary(plan: &RunPlan, tiles: &[TileStatus]) -> RunSummary {
    let mine: Vec<&TileStatus> = tiles.iter().filter(|t| t.run == Some(plan.run)).collect();
    let done = mine.iter().filter(|t| t.state == TileState::Done).count();
    let failed = mine.iter().filter(|t| t.state == TileState::Failed).count();
    let start = mine.iter().filter_map(|t| t.started).reduce(f64::min);
    let end = mine
        .iter()
        .filter(|t| t.state == TileState::Done)
        .filter_map(|t| t.ended)
        .reduce(f64::max);
    let tiles_per_minute = match (start, end) {
        (Some(s), Some(e)) if e > s && done > 0 => Some(done as f64 * 60.0 / (e - s)),
        _ => None,
    };
    RunSummary {
        run: plan.run,
        executor: plan.executor,
        job: plan.job.clone(),
        tasks: plan.tasks.len(),
        tiles: plan.tiles().count(),
        resume: plan.resume,
        created: plan.created,
        done,
        failed,
        tiles_per_minute,
    }
}

/// What Slurm says of each job array's tasks, asked once per job.
#[derive(Default)]
struct Liveness {
    jobs: BTreeMap<String, Option<Option<BTreeMap<usize, String>>>>,
}

impl Liveness {
    /// Whether task `task` of `job` is still pending or running: Some(true/false), or
    /// None when Slurm cannot be asked; with the state Slurm gives once it ended.
    fn slurm(&mut self, job: &str, task: usize) -> (Option<bool>, Option<String>) {
        let known = self
            .jobs
            .entry(job.to_string())
            .or_insert_with(|| array_tasks(job).ok());
        match known {
            None => (None, None),
            Some(None) => (Some(false), None),
            Some(Some(tasks)) => match tasks.get(&task) {
                Some(s) => (Some(slurm_state_live(s)), Some(s.clone())),
                None => (Some(false), None),
            },
        }
    }
}

/// Whether process `pid` runs on this machine.
pub(crate) fn process_alive(pid: u32) -> bool {
    let Ok(p) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(p, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

fn tile_status(rec: &TileRecord, live: &mut Liveness) -> TileStatus {
    let (started, ended) = rec.span();
    let mut t = TileStatus {
        tile: rec.tile.clone(),
        state: rec.state(),
        stage: rec.current().map(|s| s.stage),
        error: rec.current().and_then(|s| s.error.clone()),
        run: Some(rec.run),
        host: rec.host.clone(),
        job: rec.job.clone(),
        task: Some(rec.task),
        started,
        ended,
    };
    if t.state != TileState::Running {
        return t;
    }
    // Recorded as running: is its task still there?
    let tool = t.stage.map_or("the task", |s| s.tool());
    let gone = match (&rec.executor, &rec.job) {
        (ExecutorKind::Slurm, Some(job)) => match live.slurm(job, rec.task) {
            (Some(false), state) => Some(format!(
                "{tool}: the array task {job}_{} ended ({}) while this stage ran",
                rec.task,
                state.as_deref().unwrap_or("no longer known to Slurm")
            )),
            _ => None,
        },
        _ => match (&rec.host, rec.pid) {
            (Some(h), Some(pid)) if *h == host_name() && !process_alive(pid) => Some(format!(
                "{tool}: the task (process {pid} on {h}) ended while this stage ran"
            )),
            _ => None,
        },
    };
    if let Some(error) = gone {
        t.state = TileState::Failed;
        t.error = Some(error);
    }
    t
}
