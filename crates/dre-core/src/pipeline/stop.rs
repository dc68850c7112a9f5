//! Stopping a run from a signal handler: what the library leaves to clean up when the
//! process is about to exit in the middle of a tile. The caller prints and exits; the
//! library only cleans up.

use crate::io::atomic::remove_live_temporaries;
use crate::prep::external::kill_children;

/// What [`clean_up_for_exit`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cleanup {
    /// Child processes (SExtractor, PSFEx) killed.
    pub children: usize,
    /// Temporary files and scratch folders removed.
    pub temporaries: usize,
}

/// Cleans up for an exit in the middle of a run (on SIGINT, SIGTERM, SIGHUP): kills the
/// child processes this process started (and waits until they are gone, so they write no
/// more), removes every temporary file and scratch folder not yet committed, and refuses
/// new ones and new children from then on. Committed outputs are left as they are. Call it
/// once, right before the process exits.
pub fn clean_up_for_exit() -> Cleanup {
    let children = kill_children();
    let temporaries = remove_live_temporaries();
    Cleanup {
        children,
        temporaries,
    }
}
