//! The command-line shell every tool runs in: argument parsing, the exit status, the
//! reporter, the thread pool and the signals.
//!
//! Exit status, the same for every tool:
//!
//! - 0: everything went through (and for `--help`, `--version`);
//! - 1: some input failed (each failure reported on one line, the other inputs went on), or
//!   the run could not start (a missing folder, an unreadable cube, a missing program);
//! - 2: bad arguments: every clap usage error (an unknown flag, an invalid value, a missing
//!   argument, conflicting flags) and every value the tool itself refuses before running.
//!
//! Every error, usage errors included, is one line `PROG: message` on stderr.
//!
//! On SIGINT, SIGTERM or SIGHUP a tool stops at once: the library kills its child processes
//! and removes the temporaries of the outputs not yet complete ([`dre::clean_up_for_exit`]),
//! one line says where the run stopped, and the exit status is 128 + the signal (130, 143,
//! 129), as a shell reports a process killed by it. Complete outputs stay, so a rerun with
//! `--resume` goes on where the run stopped.

use crate::{Position, Reporter};
use clap::{ArgMatches, CommandFactory, FromArgMatches};
use std::ffi::OsString;
use std::fmt::Display;
use std::process::ExitCode;

/// Exit status: everything went through.
pub const EXIT_OK: u8 = 0;
/// Exit status: some input failed, or the run could not start.
pub const EXIT_FAILED: u8 = 1;
/// Exit status: bad arguments.
pub const EXIT_USAGE: u8 = 2;

/// The signals that stop a run cleanly: SIGINT, SIGTERM, SIGHUP (exit status 128 + signal).
const STOP_SIGNALS: [i32; 3] = [
    signal_hook::consts::SIGINT,
    signal_hook::consts::SIGTERM,
    signal_hook::consts::SIGHUP,
];

/// How a run that could run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every input went through: exit status 0.
    AllOk,
    /// Some input failed, each already reported: exit status 1.
    SomeFailed,
}

impl Outcome {
    /// [`Outcome::AllOk`] when `ok`, else [`Outcome::SomeFailed`].
    pub fn all_ok_if(ok: bool) -> Outcome {
        if ok {
            Outcome::AllOk
        } else {
            Outcome::SomeFailed
        }
    }
}

/// Why a tool stopped before the end.
#[derive(Debug)]
pub enum Failure {
    /// Bad arguments, found by the tool after clap: exit status 2.
    Usage(String),
    /// The run could not start or go on: exit status 1.
    Run(String),
}

impl Failure {
    /// Bad arguments.
    pub fn usage(msg: impl Display) -> Failure {
        Failure::Usage(msg.to_string())
    }
}

impl From<dre::Error> for Failure {
    fn from(e: dre::Error) -> Self {
        Failure::Run(e.to_string())
    }
}

/// A command-line tool: its arguments (a clap `Parser`) and what it does with them.
pub trait Tool: CommandFactory + FromArgMatches + Sized {
    /// The program's name: in `--help`, `--version` and every message.
    const NAME: &'static str;

    /// The original's single-dash long options (`-sep`, `-zp`), taken as `--sep`, `--zp`.
    const SINGLE_DASH_LONGS: &'static [&'static str] = &[];

    /// The options of a pipeline tool, which give [`Tool::quiet`] and [`Tool::threads`].
    fn pipeline(&self) -> Option<&crate::args::PipelineOptions> {
        None
    }

    /// `-q/--quiet`: nothing but errors and warnings.
    fn quiet(&self) -> bool {
        self.pipeline().is_some_and(|p| p.quiet.quiet)
    }

    /// `--cpu N`: the number of worker threads (None: every core).
    fn threads(&self) -> Option<usize> {
        self.pipeline().and_then(|p| p.threads.cpu)
    }

    /// The tool takes `--resume`: a run stopped by a signal says it can go on.
    const RESUMABLE: bool = false;

    /// The tool from its parsed arguments; the default is the derived `FromArgMatches`.
    fn from_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        Self::from_arg_matches(matches)
    }

    /// Does the work, reporting through `out`.
    fn run(self, out: &Reporter) -> Result<Outcome, Failure>;
}

/// The `main` of every tool: parses the command line, sets up the reporter and the thread
/// pool, runs the tool (stopping cleanly on SIGINT, SIGTERM, SIGHUP) and turns how it ended
/// into the exit status.
pub fn main<T: Tool>() -> ExitCode {
    ExitCode::from(run_tool::<T>(std::env::args_os(), true))
}

/// [`main`] on the command line `args` (program name first), without signal handling: the
/// exit status.
pub fn exit_status<T: Tool>(args: impl IntoIterator<Item = OsString>) -> u8 {
    run_tool::<T>(args, false)
}

fn run_tool<T: Tool>(args: impl IntoIterator<Item = OsString>, signals: bool) -> u8 {
    let mut cmd = T::command().name(T::NAME).bin_name(T::NAME);
    let args = single_dash_longs(args, T::SINGLE_DASH_LONGS);
    let parsed = cmd
        .try_get_matches_from_mut(args)
        .and_then(|m| T::from_matches(&m).map_err(|e| e.format(&mut cmd)));
    let tool = match parsed {
        Ok(tool) => tool,
        Err(e) if !e.use_stderr() => {
            // --help, --version
            let _ = e.print();
            return EXIT_OK;
        }
        Err(e) => {
            eprintln!("{}: {}", T::NAME, usage_error_line(&e.to_string()));
            return EXIT_USAGE;
        }
    };
    let out = Reporter::new(T::NAME, tool.quiet());
    if let Err(e) = init_threads(tool.threads(), &out) {
        out.error(e);
        return EXIT_FAILED;
    }
    let ended = if signals {
        stopping_on_signals(&out, T::RESUMABLE, || tool.run(&out))
    } else {
        tool.run(&out)
    };
    match ended {
        Ok(Outcome::AllOk) => EXIT_OK,
        Ok(Outcome::SomeFailed) => EXIT_FAILED,
        Err(Failure::Usage(msg)) => {
            out.error(msg);
            EXIT_USAGE
        }
        Err(Failure::Run(msg)) => {
            out.error(msg);
            EXIT_FAILED
        }
    }
}

/// A clap error as one line: without `error: `, the usage and the pointer to `--help`; the
/// lines that follow the first (the arguments missing, the values possible, a tip) joined
/// to it.
fn usage_error_line(text: &str) -> String {
    let mut line = String::new();
    for l in text.lines().map(str::trim) {
        if l.starts_with("Usage:") || l.starts_with("For more information") {
            break;
        }
        if l.is_empty() {
            continue;
        }
        if line.is_empty() {
            line.push_str(l.strip_prefix("error: ").unwrap_or(l));
        } else {
            line.push_str(if l.starts_with("tip:") { "; " } else { " " });
            line.push_str(l);
        }
    }
    line
}

/// Runs `work` with a thread waiting for SIGINT, SIGTERM and SIGHUP; on the first, the run
/// is stopped (see [`stop`]) and the process exits from that thread.
fn stopping_on_signals<R>(out: &Reporter, resumable: bool, work: impl FnOnce() -> R) -> R {
    let mut signals = match signal_hook::iterator::Signals::new(STOP_SIGNALS) {
        Ok(s) => s,
        Err(e) => {
            out.warn(format!(
                "cannot handle signals ({e}): an interrupted run leaves its temporary files \
                 to the next run"
            ));
            return work();
        }
    };
    /// Ends the waiting thread however `work` ends (a panic too), so the scope can end.
    struct Close(signal_hook::iterator::Handle);
    impl Drop for Close {
        fn drop(&mut self) {
            self.0.close();
        }
    }
    let close = Close(signals.handle());
    std::thread::scope(|s| {
        s.spawn(move || {
            if let Some(sig) = signals.forever().next() {
                stop(sig, out, resumable);
            }
        });
        let r = work();
        drop(close);
        r
    })
}

/// Stops the run on signal `sig`: silences the reporter (the errors of killed children are
/// not errors of the input), cleans up, says where the run stopped and exits with 128 +
/// `sig`, without running exit handlers (the work threads may be inside HDF5 or CFITSIO).
fn stop(sig: i32, out: &Reporter, resumable: bool) -> ! {
    out.silence();
    // Where the run was before the children are killed: their death ends the tile.
    let position = out.position();
    let cleanup = dre::clean_up_for_exit();
    out.stopped(&stop_line(sig, position, cleanup, resumable));
    // SAFETY: _exit ends the process at once; nothing of it is used afterwards.
    unsafe { libc::_exit(128 + sig) }
}

fn signal_name(sig: i32) -> String {
    match sig {
        signal_hook::consts::SIGINT => "SIGINT".into(),
        signal_hook::consts::SIGTERM => "SIGTERM".into(),
        signal_hook::consts::SIGHUP => "SIGHUP".into(),
        n => format!("signal {n}"),
    }
}

/// The one line a stopped run prints.
fn stop_line(
    sig: i32,
    position: Option<Position>,
    cleanup: dre::Cleanup,
    resumable: bool,
) -> String {
    let mut line = format!("stopped by {}", signal_name(sig));
    match position {
        Some(Position::At(p)) if p.len() == 1 => line.push_str(&format!(
            " at {}: its unfinished outputs were removed",
            p[0]
        )),
        Some(Position::At(p)) => line.push_str(&format!(
            " at {}: their unfinished outputs were removed",
            and_list(&p)
        )),
        Some(Position::After(p)) => line.push_str(&format!(" after {p}: no output was unfinished")),
        None => line.push_str(": unfinished outputs were removed"),
    }
    if cleanup.children > 0 {
        let s = if cleanup.children == 1 { "" } else { "es" };
        line.push_str(&format!(", {} child process{s} killed", cleanup.children));
    }
    if resumable {
        line.push_str(
            "; the outputs finished before are complete (run again with --resume to skip them)",
        );
    }
    line
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// Sets the number of worker threads of the global pool (`--cpu N`); None leaves rayon's
/// default, every core (or `RAYON_NUM_THREADS`). More threads than the machine has cores
/// is capped with a warning (thousands of threads only slow the run down, and may not
/// start at all).
pub fn init_threads(cpu: Option<usize>, out: &Reporter) -> Result<(), String> {
    let n = match cpu {
        None => return Ok(()),
        Some(0) => return Err("--cpu must be at least 1".into()),
        Some(n) => n,
    };
    let cores = std::thread::available_parallelism().map_or(n, |c| c.get());
    let n = if n > cores {
        out.warn(format!(
            "--cpu {n}: this machine has {cores} cores; using {cores} threads"
        ));
        cores
    } else {
        n
    };
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global()
        .map_err(|e| format!("cannot start {n} worker threads: {e}"))
}

/// The original's single-dash long options (`-sep _`, `-zp 30`, `-sep=_`) rewritten as
/// `--sep _` ... for clap; everything after `--` is left alone.
pub fn single_dash_longs(
    args: impl IntoIterator<Item = OsString>,
    names: &[&str],
) -> Vec<OsString> {
    let mut rest = false;
    args.into_iter()
        .map(|a| {
            if rest || names.is_empty() {
                return a;
            }
            let Some(s) = a.to_str() else { return a };
            if s == "--" {
                rest = true;
                return a;
            }
            let long = s
                .strip_prefix('-')
                .filter(|l| !l.starts_with('-'))
                .filter(|l| names.contains(&l.split('=').next().unwrap_or("")));
            match long {
                Some(l) => format!("--{l}").into(),
                None => a,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn v(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    #[test]
    fn single_dash_longs_become_double_dash() {
        let got = single_dash_longs(
            v(&[
                "sex_dre", "-sep", ".", "-zp=30", "-fwhm", "3", "-s", "--zp", "1", "--", "-sep",
            ]),
            &["sep", "zp", "fwhm"],
        );
        assert_eq!(
            got,
            v(&[
                "sex_dre", "--sep", ".", "--zp=30", "--fwhm", "3", "-s", "--zp", "1", "--", "-sep"
            ])
        );
    }

    /// A tool that does what its arguments say.
    #[derive(Parser, Debug)]
    struct Probe {
        #[arg(long, value_parser = ["ok", "some", "usage", "run"])]
        end: String,
        #[arg(long)]
        number: Option<u32>,
        #[arg(long, conflicts_with = "number")]
        other: bool,
    }

    impl Tool for Probe {
        const NAME: &'static str = "probe";
        const SINGLE_DASH_LONGS: &'static [&'static str] = &["end"];
        fn run(self, _out: &Reporter) -> Result<Outcome, Failure> {
            match self.end.as_str() {
                "ok" => Ok(Outcome::AllOk),
                "some" => Ok(Outcome::SomeFailed),
                "usage" => Err(Failure::usage("bad")),
                _ => Err(Failure::Run("broken".into())),
            }
        }
    }

    fn status(args: &[&str]) -> u8 {
        let mut all = vec!["probe"];
        all.extend_from_slice(args);
        exit_status::<Probe>(v(&all))
    }

    #[test]
    fn exit_status_says_how_the_run_ended() {
        assert_eq!(status(&["--end", "ok"]), EXIT_OK);
        assert_eq!(status(&["-end", "ok"]), EXIT_OK);
        assert_eq!(status(&["--end", "some"]), EXIT_FAILED);
        assert_eq!(status(&["--end", "run"]), EXIT_FAILED);
        assert_eq!(status(&["--end", "usage"]), EXIT_USAGE);
        // Every clap error is a usage error.
        assert_eq!(status(&[]), EXIT_USAGE);
        assert_eq!(status(&["--end", "x"]), EXIT_USAGE);
        assert_eq!(status(&["--end", "ok", "--number", "x"]), EXIT_USAGE);
        assert_eq!(status(&["--end", "ok", "--bogus"]), EXIT_USAGE);
        assert_eq!(
            status(&["--end", "ok", "--number", "1", "--other"]),
            EXIT_USAGE
        );
    }

    fn clap_line(args: &[&str]) -> String {
        let mut all = vec!["probe"];
        all.extend_from_slice(args);
        let e = Probe::command()
            .name("probe")
            .try_get_matches_from(all)
            .unwrap_err();
        usage_error_line(&e.to_string())
    }

    #[test]
    fn a_stopped_run_says_where_in_one_line() {
        let c = |children| dre::Cleanup {
            children,
            temporaries: 1,
        };
        assert_eq!(
            stop_line(
                15,
                Some(Position::At(vec!["tile b (2/20)".into()])),
                c(0),
                true
            ),
            "stopped by SIGTERM at tile b (2/20): its unfinished outputs were removed; the \
             outputs finished before are complete (run again with --resume to skip them)"
        );
        assert_eq!(
            stop_line(
                2,
                Some(Position::At(vec![
                    "image a (1/3)".into(),
                    "image b (2/3)".into(),
                    "image c (3/3)".into()
                ])),
                c(3),
                false
            ),
            "stopped by SIGINT at image a (1/3), image b (2/3) and image c (3/3): their \
             unfinished outputs were removed, 3 child processes killed"
        );
        assert_eq!(
            stop_line(2, None, c(1), false),
            "stopped by SIGINT: unfinished outputs were removed, 1 child process killed"
        );
        assert_eq!(
            stop_line(1, Some(Position::After("tile a (1/2)".into())), c(2), false),
            "stopped by SIGHUP after tile a (1/2): no output was unfinished, 2 child processes \
             killed"
        );
    }

    #[test]
    fn usage_errors_are_one_line() {
        assert_eq!(
            clap_line(&["--end", "ok", "--number", "x"]),
            "invalid value 'x' for '--number <NUMBER>': invalid digit found in string"
        );
        assert_eq!(
            clap_line(&[]),
            "the following required arguments were not provided: --end <END>"
        );
        let l = clap_line(&["--end", "ok", "--numbe", "1"]);
        assert!(
            l.starts_with("unexpected argument '--numbe' found; tip: "),
            "{l}"
        );
        let l = clap_line(&["--end", "xx"]);
        assert!(!l.contains('\n') && l.contains("[possible values: "), "{l}");
    }
}
