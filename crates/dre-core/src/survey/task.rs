//! One task of a survey run: its tiles, one after the other, each through `sex_dre`,
//! `psfex_dre`, `make_cuts` and `dre` (the programs themselves, so that a task does exactly
//! what the tools do by hand), with the options of `survey.toml`. Each stage's state is
//! recorded before it starts and when it ends; a stage that fails stops its tile (the
//! next tile goes on) and its record keeps the tool's one-line error.

use crate::error::{Error, Result};
use crate::survey::config::DeviceName;
use crate::survey::tasks::{host_name, now, RunPlan, Stage, Survey, TileRecord, TileState};
use std::ffi::OsString;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

/// The programs a survey runs: the four stages and `dre_survey` itself, all in one folder
/// (as `cargo install` and a release build leave them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StagePrograms {
    /// `dre_survey` (what each task runs).
    pub survey: PathBuf,
    /// The folder of the four stages' programs.
    pub dir: PathBuf,
}

impl StagePrograms {
    /// The programs beside `survey_exe` (the running `dre_survey`); fails, naming the
    /// program, when one is missing.
    pub fn beside(survey_exe: &Path) -> Result<StagePrograms> {
        let dir = survey_exe
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let p = StagePrograms {
            survey: survey_exe.to_path_buf(),
            dir,
        };
        for stage in Stage::ALL {
            let exe = p.of(stage);
            if !exe.is_file() {
                return Err(Error::file(
                    &exe,
                    format!(
                        "{} not found beside {}: install the DRE tools together",
                        stage.tool(),
                        survey_exe.display()
                    ),
                ));
            }
        }
        Ok(p)
    }

    /// The program of `stage`.
    pub fn of(&self, stage: Stage) -> PathBuf {
        self.dir.join(stage.tool())
    }
}

/// The command line (after the program) of `stage` on tile `tile` with the survey's
/// options: absolute paths, the tile selected with `--tiles`, `--resume` when the run
/// resumes.
pub fn stage_args(survey: &Survey, plan: &RunPlan, stage: Stage, tile: &str) -> Vec<OsString> {
    let mut a = StageArgs::default();
    let c = &survey.config;
    let p = |s: &str| survey.path(s).into_os_string();
    match stage {
        Stage::SexDre => {
            let s = &c.sex_dre;
            a.flag("--input");
            for d in &s.input {
                a.push(p(d));
            }
            if let Some(sep) = &s.sep {
                a.opt("--sep", sep);
            }
            a.opt("--output", p(&s.output));
            if let Some(cfg) = sex_config(survey) {
                a.opt("--config", cfg);
            }
            if s.subdir {
                a.flag("--subdir");
            }
            if let Some(f) = &s.flags {
                a.opt("--flags", p(f));
            }
            if !s.weights.is_empty() {
                a.flag("--weights");
                for d in &s.weights {
                    a.push(p(d));
                }
            }
            if let Some(g) = &s.gain {
                a.opt("--gain", g);
            }
            a.opt("--gain-key", &s.gain_key);
            if let Some(zp) = s.zp {
                a.opt("--zp", zp.to_string());
            }
            if let Some(f) = s.fwhm {
                a.opt("--fwhm", f.to_string());
            }
            for (k, v) in &s.arg {
                a.flag("--arg");
                a.push(k);
                a.push(v);
            }
            for f in &s.file {
                a.flag("--file");
                a.push(&f[0]);
                for d in &f[1..] {
                    a.push(p(d));
                }
            }
        }
        Stage::PsfexDre => {
            let s = &c.psfex_dre;
            a.opt("--input", p(&s.input));
            a.opt("--output", p(&s.output));
            if let Some(cfg) = psfex_config(survey) {
                a.opt("--config", cfg);
            }
        }
        Stage::MakeCuts => {
            let s = &c.make_cuts;
            a.opt("--input", p(&s.input));
            a.opt("--sextracted", p(&s.sextracted));
            if let Some(cat) = &s.catalogs {
                a.opt("--catalogs", p(cat));
            }
            a.opt("--output", p(&s.output));
            a.opt("--margin", s.margin.to_string());
            a.opt("--max-stellarity", s.max_stellarity.to_string());
            for (param, min, max) in &s.filter {
                a.flag("--filter");
                a.push(param);
                a.push(min.to_string());
                a.push(max.to_string());
            }
            if s.centroids {
                a.flag("--centroids");
            }
            a.opt("--centroids-mode", &s.centroids_mode);
            a.opt("--compression", &s.compression);
            // Its threads make and compress the cuts: the task's share of the cores, as dre's.
            a.opt("--cpu", plan.dre_cpu.to_string());
            if s.warn {
                a.flag("--warn");
            }
        }
        Stage::Dre => {
            let s = &c.dre;
            a.opt("--model", plan.cube.clone().into_os_string());
            a.opt("--psf", p(&s.psf));
            a.opt("--input", p(&s.input));
            a.opt("--output", p(&s.output));
            a.opt("--chi", p(&s.chi));
            a.opt("--catalogs", p(&s.catalogs));
            if s.mosaics {
                a.flag("--mosaics");
            }
            a.opt("--mosaics-dir", p(&s.mosaics_dir));
            if s.png {
                a.flag("--png");
            }
            a.opt("--cpu", plan.dre_cpu.to_string());
            a.opt(
                "--device",
                match s.device {
                    DeviceName::Cpu => "cpu",
                    DeviceName::Cuda => "cuda",
                },
            );
            if let Some(n) = s.chunk {
                a.opt("--chunk", n.to_string());
            }
            a.opt("--compression", &s.compression);
            if s.warn {
                a.flag("--warn");
            }
        }
    }
    if plan.resume {
        a.flag("--resume");
    }
    // Last: --tiles takes every value after it.
    a.flag("--tiles");
    a.push(tile);
    a.0
}

/// `sex_dre -c`: the survey's, else `default.sex` of the survey's folder (what `sex_dre`
/// would take there), else None (DRE's own).
pub fn sex_config(survey: &Survey) -> Option<PathBuf> {
    match &survey.config.sex_dre.config {
        Some(c) => Some(survey.path(c)),
        None => Some(survey.path("default.sex")).filter(|p| p.is_file()),
    }
}

/// `psfex_dre -c`, as [`sex_config`].
pub fn psfex_config(survey: &Survey) -> Option<PathBuf> {
    match &survey.config.psfex_dre.config {
        Some(c) => Some(survey.path(c)),
        None => Some(survey.path("default.psfex")).filter(|p| p.is_file()),
    }
}

#[derive(Default)]
struct StageArgs(Vec<OsString>);

impl StageArgs {
    fn push(&mut self, v: impl Into<OsString>) {
        self.0.push(v.into());
    }
    fn flag(&mut self, f: &str) {
        self.push(f);
    }
    fn opt(&mut self, f: &str, v: impl Into<OsString>) {
        self.push(f);
        self.push(v);
    }
}

/// Which task this is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskIds {
    /// The Slurm job array's id (slurm).
    pub job: Option<String>,
    /// The task's index in the run's plan (the array index).
    pub index: usize,
}

/// What a task tells its caller as it goes.
pub trait TaskObserver: Sync {
    /// `stage` of `tile` starts.
    fn stage_started(&self, tile: &str, stage: Stage);
    /// `stage` of `tile` ended: done, or failed with `error`.
    fn stage_ended(&self, tile: &str, stage: Stage, state: TileState, error: Option<&str>);
    /// A line the stage's tool printed on stderr (for the task's log).
    fn tool_line(&self, line: &str);
}

/// What a task did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskReport {
    /// Tiles done (all four stages).
    pub done: usize,
    /// Tiles failed.
    pub failed: usize,
    /// The signal that stopped the task, if one did.
    pub stopped_by: Option<i32>,
}

/// Runs task `ids.index` of run `run`: its tiles through the four stages. `stop` holds a
/// signal number once the task is asked to stop (0 until then): the running tool gets
/// SIGTERM, the stage is recorded as failed ("stopped by SIGTERM"), and the task returns.
pub fn run_task(
    survey: &Survey,
    run: u32,
    ids: &TaskIds,
    programs: &StagePrograms,
    stop: &AtomicI32,
    obs: &dyn TaskObserver,
) -> Result<TaskReport> {
    let plan = survey.plan(run)?;
    let Some(tiles) = plan.tasks.get(ids.index) else {
        return Err(Error::Invalid(format!(
            "run {run} has {} tasks: no task {}",
            plan.tasks.len(),
            ids.index
        )));
    };
    if !plan.cube.is_file() {
        // Deleted since the run started: render it again, once for all tasks.
        crate::survey::executor::ensure_cube(survey)?;
    }
    let mut report = TaskReport::default();
    let host = host_name();
    for tile in tiles {
        let mut rec = TileRecord::pending(tile, &plan, ids.index);
        rec.job = ids.job.clone().or(rec.job);
        rec.host = Some(host.clone());
        rec.pid = Some(std::process::id());
        let mut tile_state = TileState::Done;
        for stage in Stage::ALL {
            let sig = stop.load(Ordering::SeqCst);
            if sig != 0 {
                report.stopped_by = Some(sig);
                // A tile stopped between two stages says so; one not begun stays pending.
                if rec.state() != TileState::Pending {
                    if let Some(r) = rec.stage_mut(stage) {
                        r.state = TileState::Failed;
                        r.ended = Some(now());
                        r.error = Some(format!(
                            "{}: not started: the task was stopped by {}",
                            stage.tool(),
                            signal_name(sig)
                        ));
                    }
                    survey.write_record(&rec)?;
                    tile_state = TileState::Failed;
                }
                break;
            }
            let started = now();
            if let Some(r) = rec.stage_mut(stage) {
                r.state = TileState::Running;
                r.started = Some(started);
            }
            survey.write_record(&rec)?;
            obs.stage_started(tile, stage);
            let args = stage_args(survey, &plan, stage, tile);
            let (state, error) =
                match run_stage(survey.root(), &programs.of(stage), &args, stop, obs) {
                    Ok(()) => (TileState::Done, None),
                    Err(e) => (TileState::Failed, Some(e.0)),
                };
            if let Some(r) = rec.stage_mut(stage) {
                r.state = state;
                r.ended = Some(now());
                r.error = error.clone();
            }
            survey.write_record(&rec)?;
            obs.stage_ended(tile, stage, state, error.as_deref());
            if state == TileState::Failed {
                tile_state = TileState::Failed;
                break;
            }
        }
        if report.stopped_by.is_none() && stop.load(Ordering::SeqCst) != 0 {
            report.stopped_by = Some(stop.load(Ordering::SeqCst));
        }
        match tile_state {
            TileState::Failed => report.failed += 1,
            _ if rec.state() == TileState::Done => report.done += 1,
            _ => {}
        }
        if report.stopped_by.is_some() {
            break;
        }
    }
    Ok(report)
}

/// Why a stage failed: the tool's one-line error (recorded in the tile's state).
struct StageFailure(String);

/// Runs one stage's program in the survey's folder; Err: its one-line error.
fn run_stage(
    root: &Path,
    program: &Path,
    args: &[OsString],
    stop: &AtomicI32,
    obs: &dyn TaskObserver,
) -> std::result::Result<(), StageFailure> {
    let tool = program
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let mut child = Command::new(program)
        .args(args)
        .current_dir(root)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| StageFailure(format!("{tool}: {}: cannot start: {e}", program.display())))?;
    let stderr = child.stderr.take();
    let prefix = format!("{tool}: ");
    let warning = format!("{tool}: warning:");
    std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut first_error = None;
            let mut last = None;
            if let Some(err) = stderr {
                for line in std::io::BufReader::new(err).lines().map_while(|l| l.ok()) {
                    obs.tool_line(&line);
                    if first_error.is_none()
                        && line.starts_with(&prefix)
                        && !line.starts_with(&warning)
                    {
                        first_error = Some(line.clone());
                    }
                    if !line.trim().is_empty() {
                        last = Some(line);
                    }
                }
            }
            first_error.or(last)
        });
        let status = wait(&mut child, stop);
        let line = reader.join().ok().flatten();
        match status {
            Ok(st) if st.success() => Ok(()),
            Ok(st) => Err(StageFailure(failure_line(
                &tool,
                st,
                line,
                stop.load(Ordering::SeqCst),
            ))),
            Err(e) => Err(StageFailure(format!("{tool}: cannot wait for it: {e}"))),
        }
    })
}

/// Waits for `child`; once `stop` is set, passes SIGTERM on to it (when the signal did
/// not reach it already) and waits for it to go.
fn wait(child: &mut std::process::Child, stop: &AtomicI32) -> std::io::Result<ExitStatus> {
    let mut told = false;
    loop {
        if let Some(st) = child.try_wait()? {
            return Ok(st);
        }
        if !told && stop.load(Ordering::SeqCst) != 0 {
            told = true;
            if let Ok(pid) = libc::pid_t::try_from(child.id()) {
                // SAFETY: a signal to our own child, not yet reaped.
                unsafe {
                    libc::kill(pid, libc::SIGTERM);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A failed stage's line: the tool's first error line, else what ended it.
fn failure_line(tool: &str, st: ExitStatus, line: Option<String>, stop: i32) -> String {
    use std::os::unix::process::ExitStatusExt;
    let signal = st.signal().or_else(|| match st.code() {
        Some(c @ 129..=159) => Some(c - 128),
        _ => None,
    });
    let sig = if stop != 0 { Some(stop) } else { signal };
    match (sig, line) {
        (Some(s), _) if stop != 0 || st.signal().is_some() => format!(
            "{tool}: stopped by {} (the task was cancelled, or reached its time limit)",
            signal_name(s)
        ),
        (_, Some(l)) => l,
        (_, None) => format!(
            "{tool}: failed with exit status {}",
            st.code().unwrap_or(-1)
        ),
    }
}

/// SIGINT, SIGTERM, ... by number.
pub fn signal_name(sig: i32) -> String {
    match sig {
        libc::SIGINT => "SIGINT".into(),
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGHUP => "SIGHUP".into(),
        libc::SIGKILL => "SIGKILL".into(),
        n => format!("signal {n}"),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    /// A plan of one task on tile `a`, for the stage arguments of `survey`.
    pub(crate) fn one_tile_plan() -> RunPlan {
        RunPlan {
            run: 1,
            executor: crate::survey::config::ExecutorKind::Local,
            created: 0.0,
            resume: true,
            cube: PathBuf::from("cube.fits"),
            dre_cpu: 1,
            job: None,
            runner: None,
            tasks: vec![vec!["a".into()]],
        }
    }

    #[test]
    fn png_in_survey_toml_is_dre_png() {
        let dir = tempfile::tempdir().unwrap();
        let plan = one_tile_plan();
        let args = |toml: &str| {
            std::fs::write(dir.path().join("survey.toml"), toml).unwrap();
            let survey = Survey::open(dir.path()).unwrap();
            stage_args(&survey, &plan, Stage::Dre, "a")
        };
        assert!(!args("").iter().any(|a| a == "--png" || a == "--mosaics"));
        let on = args("[dre]\npng = true\n");
        assert!(on.iter().any(|a| a == "--png"), "{on:?}");
        let dir_at = on.iter().position(|a| a == "--mosaics-dir").unwrap();
        assert!(Path::new(&on[dir_at + 1]).ends_with("Mosaics"));
    }

    #[test]
    fn make_cuts_and_dre_get_the_tasks_share_of_the_cores() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("survey.toml"), "").unwrap();
        let survey = Survey::open(dir.path()).unwrap();
        let plan = RunPlan {
            dre_cpu: 3,
            ..one_tile_plan()
        };
        for stage in [Stage::MakeCuts, Stage::Dre] {
            let a = stage_args(&survey, &plan, stage, "a");
            let at = a.iter().position(|a| a == "--cpu").unwrap();
            assert_eq!(a[at + 1], "3", "{stage:?}");
            assert_eq!(a.iter().filter(|a| *a == "--cpu").count(), 1, "{stage:?}");
        }
    }

    #[test]
    fn a_failed_stage_is_its_first_error_line() {
        let st = ExitStatus::from_raw(1 << 8);
        assert_eq!(
            failure_line("dre", st, Some("dre: a: bad".into()), 0),
            "dre: a: bad"
        );
        assert_eq!(
            failure_line("dre", st, None, 0),
            "dre: failed with exit status 1"
        );
        let killed = ExitStatus::from_raw(libc::SIGKILL);
        assert!(failure_line("dre", killed, None, 0).contains("stopped by SIGKILL"));
        let term = ExitStatus::from_raw(143 << 8);
        assert!(
            failure_line("dre", term, Some("dre: stopped by SIGTERM".into()), 15)
                .starts_with("dre: stopped by SIGTERM (the task was cancelled")
        );
    }
}
