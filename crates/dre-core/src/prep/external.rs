//! Running the external astronomy tools (SExtractor, PSFEx): finding them on PATH, running
//! them with their output captured, and turning what they print into one-line errors.
//!
//! The children running are listed process-wide, so that a run stopped by a signal can
//! kill them ([`kill_children`]) rather than leave them writing.

use crate::error::{Error, Result};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};

/// PIDs of the children running; None once [`kill_children`] ran (no new child may start).
static CHILDREN: Mutex<Option<Vec<u32>>> = Mutex::new(Some(Vec::new()));

fn children() -> MutexGuard<'static, Option<Vec<u32>>> {
    CHILDREN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Unlists a child once it has been waited for.
struct Listed(u32);

impl Drop for Listed {
    fn drop(&mut self) {
        if let Some(c) = children().as_mut() {
            c.retain(|&p| p != self.0);
        }
    }
}

/// Kills every child process started by [`Tool::run`] that is still running, with the
/// processes it started (each child leads its own process group), waits until each is gone
/// (without reaping it: the thread that started it does), and refuses new children from
/// then on. Returns how many were killed.
pub fn kill_children() -> usize {
    let pids = children().take().unwrap_or_default();
    for &pid in &pids {
        #[cfg(unix)]
        if let Ok(p) = libc::pid_t::try_from(pid) {
            // SAFETY: plain syscalls on a child of this process; waitid with WNOWAIT leaves
            // the child to be reaped by the thread waiting for it.
            unsafe {
                libc::kill(-p, libc::SIGKILL);
                let mut info: libc::siginfo_t = std::mem::zeroed();
                libc::waitid(
                    libc::P_PID,
                    pid as libc::id_t,
                    &mut info,
                    libc::WEXITED | libc::WNOWAIT,
                );
            }
        }
    }
    pids.len()
}

/// An external program found on PATH.
#[derive(Clone, Debug)]
pub struct Tool {
    /// What users call it ("SExtractor").
    pub label: &'static str,
    pub path: PathBuf,
}

/// What a successful run printed that the user should see.
#[derive(Clone, Debug, Default)]
pub struct ToolRun {
    pub warnings: Vec<String>,
}

impl Tool {
    /// Finds the first of `names` on PATH; `install` tells the user how to get it.
    pub fn find(label: &'static str, names: &[&str], install: &str) -> Result<Tool> {
        find_on_path(names)
            .map(|path| Tool { label, path })
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "{label} not found: no {} on PATH; install it ({install})",
                    names.join(" or ")
                ))
            })
    }

    /// Runs the tool with `args` in `cwd` (stdin closed: PSFEx asks for a plot device on
    /// stdin in some configurations). Fails with the tool's own error lines when it exits
    /// with an error status or prints an error.
    pub fn run(&self, args: &[OsString], cwd: Option<&Path>) -> Result<ToolRun> {
        let mut cmd = Command::new(&self.path);
        cmd.args(args).stdin(Stdio::null());
        if let Some(dir) = cwd {
            cmd.current_dir(dir);
        }
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        // Its own process group, so that a stop kills what it started too.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let cannot =
            |e: std::io::Error| Error::Invalid(format!("cannot run {}: {e}", self.path.display()));
        let out = {
            let mut list = children();
            let Some(running) = list.as_mut() else {
                return Err(Error::Invalid(format!(
                    "{} not started: the run is stopping",
                    self.label
                )));
            };
            let child = cmd.spawn().map_err(cannot)?;
            running.push(child.id());
            let listed = Listed(child.id());
            drop(list);
            let out = child.wait_with_output().map_err(cannot)?;
            drop(listed);
            out
        };
        let text = strip_ansi(&format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
        let errors = tagged_lines(&text, "error");
        if !out.status.success() || !errors.is_empty() {
            let why = if errors.is_empty() {
                let last = text.lines().map(str::trim).rfind(|l| !l.is_empty());
                format!("{} ({})", out.status, last.unwrap_or("no message"))
            } else {
                errors.join("; ")
            };
            return Err(Error::Invalid(format!("{} failed: {why}", self.label)));
        }
        Ok(ToolRun {
            warnings: tagged_lines(&text, "warning"),
        })
    }
}

/// The first file named one of `names` in a folder of PATH that is executable.
pub fn find_on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        p.is_file()
    }
}

/// SExtractor and PSFEx draw progress with terminal escapes (`ESC[1M`, `ESC[1A`).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ parameters... final letter.
            if chars.next() == Some('[') {
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Lines the astromatic tools mark `*Error*` / `*ERROR*` or `WARNING:`, without the `> `.
fn tagged_lines(text: &str, tag: &str) -> Vec<String> {
    let star = format!("*{tag}*");
    let colon = format!("{tag}:");
    text.lines()
        .map(|l| l.trim().trim_start_matches('>').trim())
        .filter(|l| {
            let low = l.to_ascii_lowercase();
            low.starts_with(&star) || low.starts_with(&colon)
        })
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_lines_come_out_clean() {
        let text = "\x1b[1M> Line: 25\n\x1b[1A> *Error*: cannot open p/bad.fits\n\n> WARNING: FLAG_IMAGE ignored\n";
        let clean = strip_ansi(text);
        assert_eq!(
            tagged_lines(&clean, "error"),
            ["*Error*: cannot open p/bad.fits"]
        );
        assert_eq!(
            tagged_lines(&clean, "warning"),
            ["WARNING: FLAG_IMAGE ignored"]
        );
    }

    #[test]
    fn missing_tool_is_one_clear_line() {
        let e = Tool::find("Nothing", &["no-such-tool-xyz"], "apt-get install nothing")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "Nothing not found: no no-such-tool-xyz on PATH; install it (apt-get install nothing)"
        );
    }
}
