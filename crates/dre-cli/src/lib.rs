//! What the DRE binaries share: one command-line shell ([`main`], the exit status, the
//! thread pool), terminal output ([`Reporter`]: progress bars on a terminal, plain lines in
//! logs, one-line errors) and the flags and values common to several tools ([`args`]). The
//! work itself is in the `dre` library.
//!
//! A binary is its arguments (a clap `Parser`) implementing [`Tool`], and
//! `fn main() -> ExitCode { dre_cli::main::<Args>() }`.

pub mod args;
mod parallel;
mod reporter;
mod shell;

pub use parallel::{each_in_parallel, run_items, ItemRun};
pub use reporter::{Position, Reporter};
pub use shell::{
    exit_status, init_threads, main, single_dash_longs, Failure, Outcome, Tool, EXIT_FAILED,
    EXIT_OK, EXIT_USAGE,
};

/// A mutex's value, also after a thread panicked holding it: what the binaries guard
/// (progress text, counters, bars) stays usable, and a report is better than a second panic.
pub fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
