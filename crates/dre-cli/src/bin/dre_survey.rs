//! `dre_survey`: a survey's tiles through the four stages, on this machine or as one Slurm
//! job array, with a state record per tile and stage, resumably.

use clap::{Parser, Subcommand, ValueEnum};
use dre::{
    format_time, plan_run, run_local, run_survey_task, submit_slurm, survey_status, wait_slurm,
    ExecutorKind, RunObserver, RunRequest, Stage, StagePrograms, Survey, SurveyProgress,
    SurveyStatus, TaskIds, TaskObserver, TileSelection, TileState,
};
use dre_cli::{lock, Failure, Outcome, Reporter, Tool};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

/// Run every tile of a survey through sex_dre, psfex_dre, make_cuts and dre, on this
/// machine or on a Slurm cluster, and follow which tiles are done, running or failed.
///
/// A survey is a folder ROOT holding Tiles/NAME.fits and survey.toml (written by
/// `dre_survey init`: every option of the four tools, the model cube and how the tasks
/// run, each commented). `dre_survey run` splits the tiles into tasks of --tiles-per-task
/// tiles; each task takes its tiles, one after the other, through the four tools (found
/// beside dre_survey) with survey.toml's options, writing the tools' usual outputs in
/// ROOT (Sextracted/, PSF/, Cuts/, Chi/, Summary/).
///
///   local   (the default) --jobs tasks at a time on this machine; run waits for them
///   slurm   one job array, `sbatch --array=0-M%N` (N = --jobs, 0: no limit), with the
///           batch script ROOT/.survey/runs/NNNN/array.sh; --wait follows it to the end
///
/// Each task records, per tile and stage, its state (pending, running, done, failed with
/// the tool's one-line error), host, job and task ids and times, in
/// ROOT/.survey/state/NAME.json (written atomically); `dre_survey status` reads them.
/// `run --resume` submits only the tiles that are not done, as the tools' own --resume
/// decides (their outputs complete and made from the current inputs and options), and the
/// tools skip the stages already done. Without a [cube] file the default cube is rendered
/// once, into ROOT/.survey/cube/, before any task starts.
///
/// Exit status: 0 when everything asked for went through; 1 when a tile failed or the run
/// could not start (no Tiles folder, a bad survey.toml, Slurm not found, a refused
/// submission), each said on one line; 2 for bad arguments; 130, 143 or 129 when SIGINT,
/// SIGTERM or SIGHUP stopped it (a local run first stops its tasks, which record where
/// they stopped; `run --wait` stops following the array, which goes on).
#[derive(Parser, Debug)]
#[command(version, verbatim_doc_comment)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write ROOT/survey.toml: every option of the four stages, the cube and the executor,
    /// with their defaults, each commented
    Init {
        /// The survey folder (made if missing)
        #[arg(short = 'd', long = "dir", value_name = "ROOT", default_value = ".")]
        dir: PathBuf,
        /// Replace an existing survey.toml
        #[arg(long)]
        force: bool,
    },
    /// Run the survey's tiles (all, or with --resume those not done) through the four stages
    Run(RunArgs),
    /// Say which tiles are done, running, pending and failed (with their error lines), and
    /// the throughput of the latest run
    Status {
        /// The survey folder
        #[arg(short = 'd', long = "dir", value_name = "ROOT", default_value = ".")]
        dir: PathBuf,
        /// Print one JSON object, for scripts
        #[arg(long)]
        json: bool,
    },
    /// Run one task of a run (what each job array task, or local process, runs)
    #[command(hide = true)]
    Task {
        /// The survey folder
        #[arg(short = 'd', long = "dir", value_name = "ROOT")]
        dir: PathBuf,
        /// The run
        #[arg(long)]
        run: u32,
        /// The task's index (the array index)
        #[arg(long)]
        index: usize,
    },
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// The survey folder
    #[arg(short = 'd', long = "dir", value_name = "ROOT", default_value = ".")]
    dir: PathBuf,
    /// Where the tasks run [default: survey.toml's [run] executor, local]
    #[arg(long, value_enum, value_name = "local|slurm")]
    executor: Option<ExecutorArg>,
    /// Tasks at a time: locally, processes (0: one per core); on Slurm, the array's
    /// limit (0: none) [default: survey.toml's [run] jobs, 0]
    #[arg(long, value_name = "N")]
    jobs: Option<u32>,
    /// Tiles per task [default: survey.toml's [run] tiles-per-task, 1]
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u32).range(1..))]
    tiles_per_task: Option<u32>,
    /// Only the tiles not done (as the tools' --resume decides); the tools skip the
    /// stages done
    #[arg(long)]
    resume: bool,
    /// Slurm: follow the job array until it ends, with the tiles done and failed
    #[arg(long)]
    wait: bool,
    /// Slurm: one more sbatch argument (repeatable), e.g. --sbatch=--account=astro
    #[arg(long, value_name = "ARG", allow_hyphen_values = true)]
    sbatch: Vec<String>,
    /// Only these tiles (put it last)
    #[arg(long, value_name = "NAME", num_args = 1..)]
    tiles: Vec<String>,
    /// Only the tiles named in FILE, one per line
    #[arg(long, value_name = "FILE")]
    tile_list: Option<PathBuf>,
    /// Print nothing but errors and warnings
    #[arg(short = 'q', long)]
    quiet: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ExecutorArg {
    Local,
    Slurm,
}

impl From<ExecutorArg> for ExecutorKind {
    fn from(e: ExecutorArg) -> Self {
        match e {
            ExecutorArg::Local => ExecutorKind::Local,
            ExecutorArg::Slurm => ExecutorKind::Slurm,
        }
    }
}

/// The signal that asked this process to stop (0: none yet).
static STOP: AtomicI32 = AtomicI32::new(0);

fn main() -> ExitCode {
    // The shell's own handling would end the process at once; a task must first record
    // where it stopped, and a local run must stop its tasks.
    watch_signals();
    ExitCode::from(dre_cli::exit_status::<Args>(std::env::args_os()))
}

/// SIGINT, SIGTERM and SIGHUP set [`STOP`]: a task stops its tool and records it; a run
/// stops its tasks (local) or stops following the array (slurm).
fn watch_signals() {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    if let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) {
        std::thread::spawn(move || {
            for sig in signals.forever() {
                if STOP.swap(sig, Ordering::SeqCst) != 0 {
                    // A second signal: stop now.
                    std::process::exit(128 + sig);
                }
            }
        });
    }
}

impl Tool for Args {
    const NAME: &'static str = "dre_survey";

    fn quiet(&self) -> bool {
        matches!(&self.command, Command::Run(r) if r.quiet)
    }

    fn run(self, out: &Reporter) -> Result<Outcome, Failure> {
        match self.command {
            Command::Init { dir, force } => init(&dir, force, out),
            Command::Run(args) => run(args, out),
            Command::Status { dir, json } => status(&dir, json, out),
            Command::Task { dir, run, index } => task(&dir, run, index, out),
        }
    }
}

fn init(dir: &Path, force: bool, out: &Reporter) -> Result<Outcome, Failure> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure::Run(format!("{}: cannot make the folder: {e}", dir.display())))?;
    let file = dre::SurveyConfig::file_in(dir);
    if file.exists() && !force {
        return Err(Failure::Run(format!(
            "{}: exists; edit it, or replace it with init --force",
            file.display()
        )));
    }
    dre::SurveyConfig::parse(dre::SURVEY_TEMPLATE).map_err(|e| Failure::Run(e.to_string()))?;
    std::fs::write(&file, dre::SURVEY_TEMPLATE)
        .map_err(|e| Failure::Run(format!("{}: cannot write: {e}", file.display())))?;
    out.info(format!(
        "wrote {}: put the images in {}/Tiles/, edit the options, then dre_survey run",
        file.display(),
        dir.display()
    ));
    Ok(Outcome::AllOk)
}

fn open(dir: &Path, out: &Reporter) -> Result<Survey, Failure> {
    let survey = Survey::open(dir)?;
    if !survey.config_found {
        out.warn(format!(
            "{}: no survey.toml: the tools' defaults (dre_survey init writes one)",
            dir.display()
        ));
    }
    Ok(survey)
}

fn programs() -> Result<StagePrograms, Failure> {
    let exe = std::env::current_exe()
        .map_err(|e| Failure::Run(format!("cannot find dre_survey's own program: {e}")))?;
    Ok(StagePrograms::beside(&exe)?)
}

fn run(args: RunArgs, out: &Reporter) -> Result<Outcome, Failure> {
    let survey = open(&args.dir, out)?;
    let programs = programs()?;
    // Checking which tiles are done opens the output folders as the tools do: shared,
    // beside the tasks of another run.
    dre::share_output_locks();
    let req = RunRequest {
        executor: args.executor.map(Into::into),
        jobs: args.jobs,
        tiles_per_task: args.tiles_per_task,
        resume: args.resume,
        sbatch: args.sbatch.clone(),
        tiles: TileSelection::from_flags(&args.tiles, args.tile_list.as_deref())?,
    };
    let executor = req.executor(&survey);
    let jobs = req.jobs(&survey);
    let (mut plan, skipped) = plan_run(&survey, &req)?;
    let tiles = plan.tiles().count();
    if skipped > 0 {
        out.info(format!("{skipped} tiles done before, left out (--resume)"));
    }
    if tiles == 0 {
        out.info("every tile is done: nothing to run");
        return Ok(Outcome::AllOk);
    }
    let started = Instant::now();
    let follow = Follow::new(out, tiles, plan.run);
    let progress = match executor {
        ExecutorKind::Local => {
            out.info(format!(
                "run {}: {tiles} tiles in {} tasks, {jobs} at a time on this machine (logs in {})",
                plan.run,
                plan.tasks.len(),
                survey.run_dir(plan.run).join("logs").display()
            ));
            run_local(&survey, &plan, &programs, jobs, &STOP, &follow)?
        }
        ExecutorKind::Slurm => {
            let job = submit_slurm(&survey, &mut plan, &programs, jobs, &req.sbatch)?;
            out.info(format!(
                "run {}: submitted job array {job}: {tiles} tiles in {} tasks (script {}, logs in {})",
                plan.run,
                plan.tasks.len(),
                survey.run_dir(plan.run).join("array.sh").display(),
                survey.run_dir(plan.run).join("logs").display()
            ));
            if !args.wait {
                out.info(format!(
                    "follow it with: dre_survey status -d {}",
                    survey.root().display()
                ));
                return Ok(Outcome::AllOk);
            }
            wait_slurm(&survey, &plan, &job, Duration::from_millis(500), &follow)?
        }
    };
    follow.finish();
    let sig = STOP.load(Ordering::SeqCst);
    if sig != 0 && executor == ExecutorKind::Slurm {
        out.error(format!(
            "stopped following job array {} by {}; it goes on (dre_survey status)",
            plan.job.as_deref().unwrap_or("?"),
            dre::signal_name(sig)
        ));
        std::process::exit(128 + sig);
    }
    // The survey's view: a task that ended while it ran a tile fails that tile.
    let st = survey_status(&survey)?;
    let mine: Vec<_> = st
        .tile_status
        .iter()
        .filter(|t| t.run == Some(plan.run))
        .collect();
    for t in mine.iter().filter(|t| t.state == TileState::Failed) {
        out.error(format!(
            "{}: {}",
            t.tile,
            t.error.as_deref().unwrap_or("failed")
        ));
    }
    let done = mine.iter().filter(|t| t.state == TileState::Done).count();
    let failed = mine.iter().filter(|t| t.state == TileState::Failed).count();
    let secs = started.elapsed().as_secs_f64();
    out.info(format!(
        "run {}: {tiles} tiles, {done} done, {failed} failed, {} not finished, {:.1} s ({:.1} tiles/min)",
        plan.run,
        tiles - done - failed,
        secs,
        done as f64 * 60.0 / secs.max(1e-9),
    ));
    let _ = progress;
    if sig != 0 {
        out.error(format!(
            "stopped by {}: the tiles not finished are left for run --resume",
            dre::signal_name(sig)
        ));
        std::process::exit(128 + sig);
    }
    Ok(Outcome::all_ok_if(done == tiles))
}

/// The tiles' progress while a run is followed: a bar on a terminal, a line per change in
/// logs.
struct Follow<'a> {
    out: &'a Reporter,
    bar: bool,
    run: u32,
    last: std::cell::Cell<u64>,
}

impl<'a> Follow<'a> {
    fn new(out: &'a Reporter, tiles: usize, run: u32) -> Self {
        let bar = std::io::stderr().is_terminal();
        if bar {
            out.start_bar(tiles as u64, format!("run {run}"));
        }
        Follow {
            out,
            bar,
            run,
            last: std::cell::Cell::new(0),
        }
    }

    fn finish(&self) {
        if self.bar {
            self.out.finish_bar();
        }
    }
}

impl RunObserver for Follow<'_> {
    fn progress(&self, p: &SurveyProgress) {
        let line = format!(
            "{} done, {} failed, {} running",
            p.done, p.failed, p.running
        );
        if self.bar {
            let ended = p.ended() as u64;
            self.out.advance(ended.saturating_sub(self.last.get()));
            self.last.set(ended.max(self.last.get()));
            self.out.bar_message(line);
        } else {
            self.out.info(format!(
                "run {}: {}/{} tiles: {line}",
                self.run,
                p.ended(),
                p.total
            ));
        }
    }
}

fn status(dir: &Path, json: bool, out: &Reporter) -> Result<Outcome, Failure> {
    let survey = Survey::open(dir)?;
    let st = survey_status(&survey)?;
    if json {
        let text = serde_json::to_string_pretty(&st)
            .map_err(|e| Failure::Run(format!("cannot write the status as JSON: {e}")))?;
        // A reader that stops early (`| head`) is not an error.
        let _ = writeln!(std::io::stdout(), "{text}");
        return Ok(Outcome::AllOk);
    }
    print_status(&st, out);
    Ok(Outcome::AllOk)
}

fn print_status(st: &SurveyStatus, out: &Reporter) {
    out.info(format!(
        "survey {}: {} tiles: {} done, {} running, {} pending, {} failed",
        st.root.display(),
        st.tiles,
        st.done,
        st.running,
        st.pending,
        st.failed
    ));
    if let Some(r) = &st.last_run {
        let job = r
            .job
            .as_ref()
            .map(|j| format!(", job array {j}"))
            .unwrap_or_default();
        let rate = r
            .tiles_per_minute
            .map(|t| format!(", {t:.1} tiles/min"))
            .unwrap_or_default();
        out.info(format!(
            "last run {} ({}{job}{}): {} tiles in {} tasks, made {} UTC: {} done, {} failed{rate}",
            r.run,
            r.executor,
            if r.resume { ", --resume" } else { "" },
            r.tiles,
            r.tasks,
            format_time(r.created),
            r.done,
            r.failed
        ));
    }
    for (state, title) in [
        (TileState::Failed, "failed"),
        (TileState::Running, "running"),
    ] {
        let tiles: Vec<_> = st.in_state(state).collect();
        if tiles.is_empty() {
            continue;
        }
        out.info(format!("{title}:"));
        for t in tiles {
            let stage = t.stage.map_or("-", Stage::tool);
            let mut at = Vec::new();
            if let (Some(job), Some(task)) = (&t.job, t.task) {
                at.push(format!("job {job}_{task}"));
            } else if let Some(task) = t.task {
                at.push(format!("task {task}"));
            }
            if let Some(h) = &t.host {
                at.push(format!("on {h}"));
            }
            if let Some(s) = t.started {
                at.push(format!("from {}", format_time(s)));
            }
            if state == TileState::Failed {
                if let Some(e) = t.ended {
                    at.push(format!("to {}", format_time(e)));
                }
            }
            let error = t
                .error
                .as_ref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default();
            out.info(format!(
                "  {} {title} at {stage} ({}){error}",
                t.tile,
                at.join(" ")
            ));
        }
    }
}

/// A task's log: a line per stage, and what the tools print.
struct TaskLog<'a> {
    out: &'a Reporter,
    started: std::sync::Mutex<Instant>,
}

impl TaskObserver for TaskLog<'_> {
    fn stage_started(&self, tile: &str, stage: Stage) {
        *lock(&self.started) = Instant::now();
        self.out.info(format!("{tile}: {} ...", stage.tool()));
    }

    fn stage_ended(&self, tile: &str, stage: Stage, state: TileState, error: Option<&str>) {
        let secs = lock(&self.started).elapsed().as_secs_f64();
        match state {
            TileState::Done => self
                .out
                .info(format!("{tile}: {} done ({secs:.1} s)", stage.tool())),
            _ => self.out.error(format!(
                "{tile}: {} failed: {}",
                stage.tool(),
                error.unwrap_or("?")
            )),
        }
    }

    fn tool_line(&self, line: &str) {
        eprintln!("  {line}");
    }
}

fn task(dir: &Path, run: u32, index: usize, out: &Reporter) -> Result<Outcome, Failure> {
    let survey = Survey::open(dir)?;
    let programs = programs()?;
    let ids = TaskIds {
        job: std::env::var("SLURM_ARRAY_JOB_ID").ok(),
        index,
    };
    let log = TaskLog {
        out,
        started: std::sync::Mutex::new(Instant::now()),
    };
    let r = run_survey_task(&survey, run, &ids, &programs, &STOP, &log)?;
    out.info(format!(
        "task {index} of run {run}: {} tiles done, {} failed",
        r.done, r.failed
    ));
    if let Some(sig) = r.stopped_by {
        out.error(format!(
            "task {index} of run {run}: stopped by {}",
            dre::signal_name(sig)
        ));
        std::process::exit(128 + sig);
    }
    Ok(Outcome::all_ok_if(r.failed == 0))
}
