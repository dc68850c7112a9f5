//! What a tool prints while it works: progress bars on a terminal, one plain line per item in
//! logs, nothing but errors and warnings with `--quiet`, every error as one line.

use crate::lock;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Prints what a tool has to say: progress bars only on a terminal, nothing but errors
/// and warnings with `--quiet`, and every error as one line `PROG: message` on stderr.
pub struct Reporter {
    prog: &'static str,
    quiet: bool,
    bar: Mutex<Option<ProgressBar>>,
    /// Where the run is, for the line of a run stopped by a signal.
    position: Mutex<Where>,
    /// Set when the run is being stopped: nothing more is printed but the last line.
    silenced: AtomicBool,
}

impl Reporter {
    pub fn new(prog: &'static str, quiet: bool) -> Self {
        Reporter {
            prog,
            quiet,
            bar: Mutex::new(None),
            position: Mutex::new(Where::default()),
            silenced: AtomicBool::new(false),
        }
    }

    /// Says the run has started `what` (`tile NAME (3/20)`): a run stopped by a signal says
    /// it stopped at it (and at every other item started and not finished: tools work on
    /// several tiles at once).
    pub fn working_on(&self, what: impl Into<String>) {
        let mut w = lock(&self.position);
        w.started += 1;
        let n = w.started;
        w.open.push((n, what.into()));
    }

    /// Says the run has finished `what` (`tile NAME (3/20)`): a run stopped by a signal
    /// while no item is open says it stopped after the item started last.
    pub fn done_with(&self, what: impl Into<String>) {
        let what = what.into();
        let mut w = lock(&self.position);
        let n = match w.open.iter().position(|(_, o)| *o == what) {
            Some(i) => w.open.remove(i).0,
            None => {
                w.started += 1;
                w.started
            }
        };
        if w.after.as_ref().is_none_or(|(m, _)| *m < n) {
            w.after = Some((n, what));
        }
    }

    /// Where the run is.
    pub fn position(&self) -> Option<Position> {
        let w = lock(&self.position);
        if !w.open.is_empty() {
            return Some(Position::At(
                w.open.iter().map(|(_, o)| o.clone()).collect(),
            ));
        }
        w.after.as_ref().map(|(_, a)| Position::After(a.clone()))
    }

    /// From now on nothing is printed but [`Reporter::stopped`]'s line.
    pub fn silence(&self) {
        self.silenced.store(true, Ordering::SeqCst);
    }

    /// The last line of a run stopped by a signal, `PROG: message` on stderr (shown with
    /// --quiet and after [`Reporter::silence`]); the bar is cleared first.
    pub fn stopped(&self, msg: &str) {
        let mut bar = lock(&self.bar);
        if let Some(b) = bar.take() {
            b.finish_and_clear();
        }
        let _ = writeln!(std::io::stderr(), "{}: {}", self.prog, one_line(msg));
    }

    /// The program's name, as messages start.
    pub fn prog(&self) -> &'static str {
        self.prog
    }

    fn show_bars(&self) -> bool {
        !self.quiet && std::io::stderr().is_terminal()
    }

    fn print(&self, line: &str, to_stderr: bool) {
        let bar = lock(&self.bar);
        if self.silenced.load(Ordering::SeqCst) {
            return;
        }
        // A closed pipe (`tool | head`) must not panic: what cannot be written is dropped.
        let out = || {
            let _ = if to_stderr {
                writeln!(std::io::stderr(), "{line}")
            } else {
                writeln!(std::io::stdout(), "{line}")
            };
        };
        match bar.as_ref() {
            Some(b) => b.suspend(out),
            None => out(),
        }
    }

    /// A one-line error, always shown (a message of several lines is joined into one).
    pub fn error(&self, msg: impl std::fmt::Display) {
        self.print(
            &format!("{}: {}", self.prog, one_line(&msg.to_string())),
            true,
        );
    }

    /// A warning, always shown.
    pub fn warn(&self, msg: impl std::fmt::Display) {
        self.print(&format!("{}: warning: {msg}", self.prog), true);
    }

    /// A line `PROG: message` on stderr that is neither an error nor a warning (what was
    /// asked for, e.g. `make_cuts --warn`), always shown.
    pub fn note(&self, msg: impl std::fmt::Display) {
        self.print(&format!("{}: {msg}", self.prog), true);
    }

    /// A progress line on stdout, hidden with --quiet.
    pub fn info(&self, msg: impl std::fmt::Display) {
        if !self.quiet {
            self.print(&msg.to_string(), false);
        }
    }

    /// Starts a progress bar of `len` steps (drawn only on a terminal).
    pub fn start_bar(&self, len: u64, prefix: String) {
        let bar = if self.show_bars() {
            let b = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template("{prefix} [{bar:40}] {pos}/{len} (eta {eta}) {msg}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            b.set_prefix(prefix);
            Some(b)
        } else {
            None
        };
        *lock(&self.bar) = bar;
    }

    /// Says on the bar what is being worked on (a tile's name).
    pub fn bar_message(&self, msg: impl Into<String>) {
        if let Some(b) = lock(&self.bar).as_ref() {
            b.set_message(msg.into());
        }
    }

    /// Advances the bar by `k` steps.
    pub fn advance(&self, k: u64) {
        if let Some(b) = lock(&self.bar).as_ref() {
            b.inc(k);
        }
    }

    /// Ends a run over `total` items of which `failed` failed: clears the bar, says how many
    /// failed, and tells whether all went well.
    pub fn finish_run(&self, failed: usize, total: usize, items: &str) -> bool {
        self.finish_bar();
        if failed > 0 {
            self.error(format!("{failed} of {total} {items} failed"));
        }
        failed == 0
    }

    /// Clears the bar.
    pub fn finish_bar(&self) {
        if let Some(b) = lock(&self.bar).take() {
            b.finish_and_clear();
        }
    }
}

/// Where a run is: at some items (working on them), or after one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Position {
    /// Working on these items, in the order they were started.
    At(Vec<String>),
    /// This item is finished, the next not started.
    After(String),
}

/// The items started and not finished, and the finished item started last, each with its
/// rank in the order of starting.
#[derive(Default)]
struct Where {
    started: u64,
    open: Vec<(u64, String)>,
    after: Option<(u64, String)>,
}

/// The non-empty lines of `msg`, trimmed and joined with "; ".
fn one_line(msg: &str) -> String {
    if !msg.contains('\n') {
        return msg.to_string();
    }
    msg.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::{one_line, Position, Reporter};

    #[test]
    fn the_position_names_every_item_open_else_the_last_started() {
        let r = Reporter::new("t", true);
        assert_eq!(r.position(), None);
        r.working_on("tile a (1/4)");
        r.working_on("tile b (2/4)");
        assert_eq!(
            r.position(),
            Some(Position::At(vec![
                "tile a (1/4)".into(),
                "tile b (2/4)".into()
            ]))
        );
        // b finishes first: a is still open.
        r.done_with("tile b (2/4)");
        assert_eq!(
            r.position(),
            Some(Position::At(vec!["tile a (1/4)".into()]))
        );
        r.done_with("tile a (1/4)");
        assert_eq!(r.position(), Some(Position::After("tile b (2/4)".into())));
        // An item finished without being started (skipped by --resume) comes after.
        r.done_with("tile c (3/4)");
        assert_eq!(r.position(), Some(Position::After("tile c (3/4)".into())));
    }

    #[test]
    fn messages_of_several_lines_become_one() {
        assert_eq!(one_line("a: b"), "a: b");
        assert_eq!(one_line("a: b\n\n  c\n"), "a: b; c");
    }
}
