//! What the DRE binaries share: one command-line shell ([`main`], the exit status, the
//! thread pool), terminal output ([`Reporter`]: progress bars on a terminal, plain lines in
//! logs, one-line errors) and the flags and values common to several tools ([`args`]). The
//! work itself is in the `dre` library.
//!
//! A binary is its arguments (a clap `Parser`) implementing [`Tool`], and
//! `fn main() -> ExitCode { dre_cli::main::<Args>() }`.

pub mod args;
mod reporter;
mod shell;

pub use reporter::Reporter;
pub use shell::{
    exit_status, init_threads, main, single_dash_longs, Failure, Outcome, Tool, EXIT_FAILED,
    EXIT_OK, EXIT_USAGE,
};

/// Where the default model cube is kept: `$DRE_CACHE_DIR`, else `$XDG_CACHE_HOME/dre`, else
/// `~/.cache/dre`.
pub fn cache_dir() -> std::path::PathBuf {
    use std::path::PathBuf;
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    env("DRE_CACHE_DIR")
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("dre")))
        .or_else(|| env("HOME").map(|h| h.join(".cache/dre")))
        .unwrap_or_else(|| PathBuf::from(".dre-cache"))
}
