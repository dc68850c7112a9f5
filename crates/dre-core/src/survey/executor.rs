//! Where a survey's tasks run: on this machine, `jobs` at a time (`local`), or as one Slurm
//! job array (`slurm`: a batch script under `.survey/runs/NNNN/`, submitted with
//! `sbatch --array=0-M%N`, followed with `squeue`). Both run the same thing in each task:
//! `dre_survey task` (see [`crate::run_survey_task`]).
//!
//! A run is planned first ([`plan_run`]): the tiles (all, or with `resume` those not done
//! as the tools' own `--resume` decides), split into tasks, the cube rendered once, and the
//! plan written before any task starts; a tile of the plan is pending until its task
//! writes its record.

use crate::error::{Error, Result};
use crate::io::atomic::write_file;
use crate::survey::config::ExecutorKind;
use crate::survey::resume::DoneCheck;
use crate::survey::select::TileSelection;
use crate::survey::task::StagePrograms;
use crate::survey::tasks::{host_name, now, split_tasks, RunPlan, Survey, TileState};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

/// What `dre_survey run` was asked for (each None: `survey.toml`'s).
#[derive(Clone, Debug, Default)]
pub struct RunRequest {
    /// `--executor`.
    pub executor: Option<ExecutorKind>,
    /// `--jobs N`.
    pub jobs: Option<u32>,
    /// `--tiles-per-task K`.
    pub tiles_per_task: Option<u32>,
    /// `--resume`: only the tiles not done, and the tools skip the stages done.
    pub resume: bool,
    /// `--sbatch ARG`, after `survey.toml`'s.
    pub sbatch: Vec<String>,
    /// Only these tiles (default: every tile of the survey).
    pub tiles: TileSelection,
}

impl RunRequest {
    /// The executor: the request's, else `survey.toml`'s.
    pub fn executor(&self, survey: &Survey) -> ExecutorKind {
        self.executor.unwrap_or(survey.config.run.executor)
    }

    /// Tasks at a time: the request's, else `survey.toml`'s; 0 is one per core locally,
    /// no limit on Slurm.
    pub fn jobs(&self, survey: &Survey) -> u32 {
        let jobs = self.jobs.unwrap_or(survey.config.run.jobs);
        match self.executor(survey) {
            ExecutorKind::Local if jobs == 0 => cores(),
            _ => jobs,
        }
    }
}

/// The message when Slurm's `sbatch` is not on PATH.
pub const SLURM_NOT_FOUND: &str = "Slurm not found: use --executor local";

/// Plans a run: the survey's tiles (those of `req.tiles`; with `req.resume`, only those
/// not done), split into tasks, the cube ready, the plan written. Returns the
/// plan (with no task, numbered 0 and not written, when every tile is done) and the
/// number of tiles left out as done. Fails on a survey with no tiles, a
/// bad request, or (slurm) no `sbatch` on PATH, before anything is written.
pub fn plan_run(survey: &Survey, req: &RunRequest) -> Result<(RunPlan, usize)> {
    let executor = req.executor(survey);
    let jobs = req.jobs(survey);
    if executor == ExecutorKind::Slurm && crate::find_on_path(&["sbatch"]).is_none() {
        return Err(Error::Invalid(SLURM_NOT_FOUND.into()));
    }
    let per_task = req
        .tiles_per_task
        .unwrap_or(survey.config.run.tiles_per_task);
    if per_task == 0 {
        return Err(Error::Invalid("--tiles-per-task must be at least 1".into()));
    }
    refuse_if_running(survey)?;
    let all = survey.tiles()?;
    let input = survey.path(&survey.config.sex_dre.input[0]);
    let missing = req.tiles.missing(all.iter().map(String::as_str));
    if let Some(name) = missing.first() {
        return Err(Error::file(&input, format!("no tile {name}")));
    }
    let selected = req.tiles.filter(all, |t| t);
    if selected.is_empty() {
        return Err(Error::file(&input, "no tiles (FITS images) to run"));
    }
    let cube = ensure_cube(survey)?;
    let dre_cpu = survey
        .config
        .dre
        .cpu
        .unwrap_or_else(|| default_dre_cpu(survey, executor, jobs));
    let probe = RunPlan {
        run: 0,
        executor,
        created: now(),
        resume: req.resume,
        cube,
        dre_cpu,
        job: None,
        runner: None,
        tasks: Vec::new(),
    };
    let total = selected.len();
    let todo: Vec<String> = if req.resume {
        // Dropped before any task starts: setting up the checks locks the output folders.
        let check = DoneCheck::new(survey, &probe);
        selected.into_iter().filter(|t| !check.done(t)).collect()
    } else {
        selected
    };
    let skipped = total - todo.len();
    if todo.is_empty() {
        // Nothing to run: no run is made.
        return Ok((probe, skipped));
    }
    let run = survey.new_run()?;
    let plan = RunPlan {
        run,
        runner: (executor == ExecutorKind::Local).then(|| (host_name(), std::process::id())),
        tasks: split_tasks(&todo, per_task as usize),
        ..probe
    };
    survey.write_plan(&plan)?;
    Ok((plan, skipped))
}

/// Refuses a new run while the latest one still runs (its job array has a task pending or
/// running, or its local runner is alive): the two would take the same tiles at once.
fn refuse_if_running(survey: &Survey) -> Result<()> {
    let Some(plan) = survey.latest_run().and_then(|r| survey.plan(r).ok()) else {
        return Ok(());
    };
    let running = match (&plan.job, &plan.runner) {
        (Some(job), _) => array_tasks(job)
            .ok()
            .flatten()
            .is_some_and(|t| t.values().any(|s| slurm_state_live(s)))
            .then(|| format!("job array {job}")),
        (None, Some((host, pid))) => (*host == host_name()
            && *pid != std::process::id()
            && crate::survey::status::process_alive(*pid))
        .then(|| format!("process {pid}")),
        _ => None,
    };
    match running {
        Some(what) => Err(Error::file(
            survey.run_dir(plan.run),
            format!(
                "run {} still runs ({what}): wait for it to end (dre_survey status), or stop it",
                plan.run
            ),
        )),
        None => Ok(()),
    }
}

/// `dre --cpu` when `survey.toml` does not say: the task's CPUs on Slurm, the machine's
/// cores shared by the tasks running at once locally.
fn default_dre_cpu(survey: &Survey, executor: ExecutorKind, jobs: u32) -> u32 {
    match executor {
        ExecutorKind::Slurm => survey.config.slurm.cpus_per_task,
        ExecutorKind::Local => (cores() / jobs.max(1)).max(1),
    }
}

/// This machine's cores.
fn cores() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

/// The model cube of the survey: `[cube] file`, else the default cube, rendered into
/// `[cube] cache-dir` by the first caller while the others wait (an exclusive lock on
/// `.survey/cube.lock`), so that tasks starting together never render it twice nor read
/// it half-written.
pub fn ensure_cube(survey: &Survey) -> Result<PathBuf> {
    let c = &survey.config.cube;
    if !c.file.is_empty() {
        let f = survey.path(&c.file);
        if !f.is_file() {
            return Err(Error::file(&f, "no such model cube ([cube] file)"));
        }
        return Ok(f);
    }
    let dir = survey.survey_dir();
    std::fs::create_dir_all(&dir).map_err(|e| Error::file(&dir, e))?;
    let _lock = FileLock::exclusive(&dir.join("cube.lock"))?;
    crate::default_cube(&survey.path(&c.cache_dir))
}

/// An exclusive `flock` on a file, released when dropped (or when the process ends).
struct FileLock(std::fs::File);

impl FileLock {
    fn exclusive(path: &Path) -> Result<FileLock> {
        use std::os::unix::io::AsRawFd;
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| Error::file(path, e))?;
        loop {
            // SAFETY: flock on a descriptor this File owns.
            let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
            if r == 0 {
                return Ok(FileLock(f));
            }
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                // No locks on this filesystem: go on unlocked, as the tools do.
                Some(libc::ENOLCK) | Some(libc::EOPNOTSUPP) => return Ok(FileLock(f)),
                _ => return Err(Error::file(path, format!("cannot lock: {e}"))),
            }
        }
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        use std::os::unix::io::AsRawFd;
        // SAFETY: unlocking a descriptor this File owns.
        unsafe {
            libc::flock(self.0.as_raw_fd(), libc::LOCK_UN);
        }
    }
}

/// Tiles of a run by state, from their records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SurveyProgress {
    /// Tiles of the run.
    pub total: usize,
    /// Done.
    pub done: usize,
    /// Failed.
    pub failed: usize,
    /// Started, not finished.
    pub running: usize,
}

impl SurveyProgress {
    /// Tiles that ended, done or failed.
    pub fn ended(&self) -> usize {
        self.done + self.failed
    }
}

/// The progress of `plan`'s tiles, from their records.
pub fn run_progress(survey: &Survey, plan: &RunPlan) -> SurveyProgress {
    let mut p = SurveyProgress {
        total: plan.tiles().count(),
        ..SurveyProgress::default()
    };
    for tile in plan.tiles() {
        match survey.record(tile) {
            Ok(Some(r)) if r.run == plan.run => match r.state() {
                TileState::Done => p.done += 1,
                TileState::Failed => p.failed += 1,
                TileState::Running => p.running += 1,
                TileState::Pending => {}
            },
            _ => {}
        }
    }
    p
}

/// Told how a run goes while it is followed.
pub trait RunObserver {
    /// The tiles' progress changed.
    fn progress(&self, p: &SurveyProgress);
}

/// Runs `plan`'s tasks on this machine, `jobs` at a time, each a `dre_survey task` process;
/// returns when all have ended. Once `stop` holds a signal number, the tasks running are
/// sent SIGTERM (they record where they stopped) and no new one starts.
pub fn run_local(
    survey: &Survey,
    plan: &RunPlan,
    programs: &StagePrograms,
    jobs: u32,
    stop: &AtomicI32,
    obs: &dyn RunObserver,
) -> Result<SurveyProgress> {
    let logs = survey.run_dir(plan.run).join("logs");
    let mut next = 0;
    let mut running: Vec<Child> = Vec::new();
    let mut last = None;
    let mut told = false;
    loop {
        let stopping = stop.load(Ordering::SeqCst) != 0;
        while !stopping && running.len() < jobs.max(1) as usize && next < plan.tasks.len() {
            running.push(spawn_task(survey, plan.run, next, programs, &logs)?);
            next += 1;
        }
        if stopping && !told {
            told = true;
            for c in &running {
                if let Ok(pid) = libc::pid_t::try_from(c.id()) {
                    // SAFETY: a signal to our own child, not yet reaped.
                    unsafe {
                        libc::kill(pid, libc::SIGTERM);
                    }
                }
            }
        }
        running.retain_mut(|c| !matches!(c.try_wait(), Ok(Some(_)) | Err(_)));
        let p = run_progress(survey, plan);
        if last != Some(p) {
            obs.progress(&p);
            last = Some(p);
        }
        if running.is_empty() && (next >= plan.tasks.len() || stopping) {
            return Ok(p);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn spawn_task(
    survey: &Survey,
    run: u32,
    index: usize,
    programs: &StagePrograms,
    logs: &Path,
) -> Result<Child> {
    let log = logs.join(format!("task-{index}.log"));
    let out = std::fs::File::create(&log).map_err(|e| Error::file(&log, e))?;
    let err = out.try_clone().map_err(|e| Error::file(&log, e))?;
    Command::new(&programs.survey)
        .args(task_args(survey, run))
        .arg(index.to_string())
        .current_dir(survey.root())
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| Error::file(&programs.survey, format!("cannot start a task: {e}")))
}

/// `dre_survey task -d ROOT --run R --index` (the index follows).
fn task_args(survey: &Survey, run: u32) -> Vec<OsString> {
    vec![
        "task".into(),
        "-d".into(),
        survey.root().into(),
        "--run".into(),
        run.to_string().into(),
        "--index".into(),
    ]
}

/// The batch script of `plan`'s job array, `.survey/runs/NNNN/array.sh`: each array task
/// runs `dre_survey task` on its tiles, logging to `logs/task-INDEX.log`.
pub fn batch_script(survey: &Survey, plan: &RunPlan, programs: &StagePrograms) -> String {
    let s = &survey.config.slurm;
    let logs = survey.run_dir(plan.run).join("logs");
    let mut text = format!(
        "#!/bin/bash\n\
         # dre_survey run {run}: {tasks} tasks of {tiles} tiles; task i takes the tiles of\n\
         # tasks[i] in plan.json through sex_dre, psfex_dre, make_cuts and dre.\n\
         # Submitted as: sbatch --array=0-{last}%N [--sbatch ARGS] array.sh\n\
         #SBATCH --job-name=dre_survey\n\
         #SBATCH --output={log}\n",
        run = plan.run,
        tasks = plan.tasks.len(),
        tiles = plan.tiles().count(),
        last = plan.tasks.len().saturating_sub(1),
        log = logs.join("task-%a.log").display(),
    );
    let mut directive = |k: &str, v: &str| {
        if !v.is_empty() {
            text.push_str(&format!("#SBATCH --{k}={v}\n"));
        }
    };
    directive("partition", &s.partition);
    directive("time", &s.time);
    directive("mem", &s.mem);
    directive("cpus-per-task", &s.cpus_per_task.to_string());
    let mut cmd: Vec<String> = vec![shell_quote(&programs.survey.to_string_lossy())];
    cmd.extend(
        task_args(survey, plan.run)
            .iter()
            .map(|a| shell_quote(&a.to_string_lossy())),
    );
    text.push_str(&format!(
        "cd {} || exit 1\nexec {} \"$SLURM_ARRAY_TASK_ID\"\n",
        shell_quote(&survey.root().to_string_lossy()),
        cmd.join(" ")
    ));
    text
}

/// `s` as one word of a shell command.
fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:,@%".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Submits `plan` as one job array (`sbatch --array=0-M%N`, `jobs` = N, 0: no limit) and
/// records the job's id in the plan. A refused submission is one line: sbatch's message.
pub fn submit_slurm(
    survey: &Survey,
    plan: &mut RunPlan,
    programs: &StagePrograms,
    jobs: u32,
    extra: &[String],
) -> Result<String> {
    let Some(sbatch) = crate::find_on_path(&["sbatch"]) else {
        return Err(Error::Invalid(SLURM_NOT_FOUND.into()));
    };
    let script = survey.run_dir(plan.run).join("array.sh");
    write_file(&script, batch_script(survey, plan, programs).as_bytes())?;
    let last = plan.tasks.len().saturating_sub(1);
    let array = if jobs > 0 {
        format!("--array=0-{last}%{jobs}")
    } else {
        format!("--array=0-{last}")
    };
    let out = Command::new(&sbatch)
        .arg("--parsable")
        .arg(array)
        .args(&survey.config.slurm.sbatch)
        .args(extra)
        .arg(&script)
        .current_dir(survey.root())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::file(&sbatch, format!("cannot run sbatch: {e}")))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        // Never submitted: no run.
        let _ = std::fs::remove_dir_all(survey.run_dir(plan.run));
        return Err(Error::Invalid(format!(
            "sbatch refused the job array: {}",
            one_line(&stderr, &stdout)
        )));
    }
    let job = stdout
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .and_then(|l| l.split(';').next())
        .filter(|j| !j.is_empty() && j.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| {
            Error::Invalid(format!(
                "sbatch gave no job id: {}",
                one_line(&stdout, &stderr)
            ))
        })?
        .to_string();
    plan.job = Some(job.clone());
    survey.write_plan(plan)?;
    Ok(job)
}

/// sbatch's message as one line: without `sbatch: error: `, lines joined with `; `.
fn one_line(first: &str, second: &str) -> String {
    let lines: Vec<&str> = first
        .lines()
        .chain(second.lines())
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| l.strip_prefix("sbatch: error: ").unwrap_or(l))
        .collect();
    if lines.is_empty() {
        "no message".into()
    } else {
        lines.join("; ")
    }
}

/// The state of each task of job array `job` that Slurm still knows (`squeue -r
/// --states=all`: pending, running, and for a while those ended), by index; None when
/// Slurm no longer knows the job at all.
pub fn array_tasks(job: &str) -> Result<Option<BTreeMap<usize, String>>> {
    let Some(squeue) = crate::find_on_path(&["squeue"]) else {
        return Err(Error::Invalid(SLURM_NOT_FOUND.into()));
    };
    let out = Command::new(&squeue)
        .args(["-h", "-r", "--states=all", "-o", "%K|%T", "-j", job])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::file(&squeue, format!("cannot run squeue: {e}")))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        if stderr.contains("Invalid job id") {
            return Ok(None);
        }
        return Err(Error::Invalid(format!("squeue: {}", one_line(&stderr, ""))));
    }
    let mut tasks = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some((index, state)) = line.trim().split_once('|') else {
            continue;
        };
        let state = state.trim().to_string();
        // A pending array may still show as one line with a range ("0-7%2").
        if let Ok(i) = index.parse::<usize>() {
            tasks.insert(i, state);
        } else if let Some((a, b)) = index.split('%').next().and_then(|r| r.split_once('-')) {
            if let (Ok(a), Ok(b)) = (a.parse::<usize>(), b.parse::<usize>()) {
                for i in a..=b {
                    tasks.insert(i, state.clone());
                }
            }
        }
    }
    Ok(Some(tasks))
}

/// Whether a Slurm task state is one of a task not ended.
pub fn slurm_state_live(state: &str) -> bool {
    matches!(
        state,
        "PENDING"
            | "RUNNING"
            | "CONFIGURING"
            | "COMPLETING"
            | "SUSPENDED"
            | "REQUEUED"
            | "RESIZING"
            | "SIGNALING"
            | "STAGE_OUT"
            | "REQUEUE_HOLD"
            | "REQUEUE_FED"
    )
}

/// Follows job array `job` of `plan` until none of its tasks is pending or running,
/// telling `obs` the tiles' progress; polls every `every`.
pub fn wait_slurm(
    survey: &Survey,
    plan: &RunPlan,
    job: &str,
    every: Duration,
    obs: &dyn RunObserver,
) -> Result<SurveyProgress> {
    let mut last = None;
    loop {
        let live = match array_tasks(job)? {
            None => false,
            Some(t) => t.values().any(|s| slurm_state_live(s)),
        };
        let p = run_progress(survey, plan);
        if last != Some(p) {
            obs.progress(&p);
            last = Some(p);
        }
        if !live {
            return Ok(p);
        }
        std::thread::sleep(every);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sbatch_messages_are_one_line() {
        assert_eq!(
            one_line(
                "sbatch: error: invalid partition specified: nope\n\
                 sbatch: error: Batch job submission failed: Invalid partition name specified\n",
                ""
            ),
            "invalid partition specified: nope; Batch job submission failed: Invalid \
             partition name specified"
        );
        assert_eq!(one_line("", ""), "no message");
    }

    #[test]
    fn words_are_quoted_for_the_shell() {
        assert_eq!(shell_quote("/a/b-c_d.e"), "/a/b-c_d.e");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn live_states() {
        assert!(slurm_state_live("RUNNING") && slurm_state_live("PENDING"));
        assert!(!slurm_state_live("CANCELLED") && !slurm_state_live("COMPLETED"));
        assert!(!slurm_state_live("FAILED") && !slurm_state_live("TIMEOUT"));
    }
}
