//! What the DRE binaries share: terminal output (progress bars on a terminal, plain lines in
//! logs, one-line errors) and the thread pool. The work itself is in the `dre` library.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::ffi::OsString;
use std::io::IsTerminal;
use std::sync::Mutex;

/// Prints what a tool has to say: progress bars only on a terminal, nothing but errors
/// with `--quiet`, and every error as one line `PROG: message` on stderr.
pub struct Reporter {
    prog: &'static str,
    quiet: bool,
    bar: Mutex<Option<ProgressBar>>,
}

impl Reporter {
    pub fn new(prog: &'static str, quiet: bool) -> Self {
        Reporter {
            prog,
            quiet,
            bar: Mutex::new(None),
        }
    }

    fn show_bars(&self) -> bool {
        !self.quiet && std::io::stderr().is_terminal()
    }

    fn print(&self, line: &str, to_stderr: bool) {
        let bar = self.bar.lock().unwrap_or_else(|e| e.into_inner());
        let out = || {
            if to_stderr {
                eprintln!("{line}")
            } else {
                println!("{line}")
            }
        };
        match bar.as_ref() {
            Some(b) => b.suspend(out),
            None => out(),
        }
    }

    /// A one-line error, always shown.
    pub fn error(&self, msg: impl std::fmt::Display) {
        self.print(&format!("{}: {msg}", self.prog), true);
    }

    /// A warning, always shown.
    pub fn warn(&self, msg: impl std::fmt::Display) {
        self.print(&format!("{}: warning: {msg}", self.prog), true);
    }

    /// A progress line, hidden with --quiet.
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
                ProgressStyle::with_template("{prefix} [{bar:40}] {pos}/{len} (eta {eta})")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            b.set_prefix(prefix);
            Some(b)
        } else {
            None
        };
        *self.bar.lock().unwrap_or_else(|e| e.into_inner()) = bar;
    }

    pub fn advance(&self, k: u64) {
        if let Some(b) = self.bar.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
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

    pub fn finish_bar(&self) {
        if let Some(b) = self.bar.lock().unwrap_or_else(|e| e.into_inner()).take() {
            b.finish_and_clear();
        }
    }
}

/// Sets the number of worker threads (`--cpu N`; default: every core).
pub fn init_threads(cpu: Option<usize>) -> Result<(), String> {
    let mut b = rayon::ThreadPoolBuilder::new();
    if let Some(n) = cpu {
        if n == 0 {
            return Err("--cpu must be at least 1".into());
        }
        b = b.num_threads(n);
    }
    b.build_global().map_err(|e| e.to_string())
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
            if rest {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
