//! Tiles worked on at once: the pipeline tools (`sex_dre`, `psfex_dre`, `make_cuts`) run one
//! tile per worker thread of the one thread pool (`--cpu N`), so that the work inside a tile
//! (make_cuts' compression) shares the same threads instead of adding to them.

use crate::{lock, Reporter};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// What [`run_items`] calls the items of a run, and how it treats them.
pub struct ItemRun<'a> {
    /// The tool, for the progress bar and the `--resume` summary line.
    pub tool: &'a str,
    /// One item and several, as the lines say them ("tile", "tiles").
    pub item: &'a str,
    pub items: &'a str,
    /// Items asked for by name and not found (already reported): failures too.
    pub missing: usize,
    /// `--resume`: items `done_before` says are complete are skipped.
    pub resume: bool,
}

impl<'a> ItemRun<'a> {
    /// A run over tiles (`make_cuts`, `psfex_dre`).
    pub fn tiles(tool: &'a str, missing: usize, resume: bool) -> Self {
        ItemRun {
            tool,
            item: "tile",
            items: "tiles",
            missing,
            resume,
        }
    }
}

/// Runs `work(item, "i/n")` for every item in parallel ([`each_in_parallel`]) with a progress
/// bar, skipping (with a line) the items `done_before` accepts under `--resume`; an item's
/// error is reported on its line and the others go on. Ends with the count of failures and,
/// under `--resume`, of the items skipped. Returns whether every item (and none missing)
/// succeeded.
pub fn run_items<T: Sync>(
    out: &Reporter,
    run: &ItemRun<'_>,
    items: &[T],
    name: impl Fn(&T) -> &str + Sync,
    done_before: impl Fn(&T) -> bool + Sync,
    work: impl Fn(&T, &str) -> dre::Result<()> + Sync,
) -> bool {
    let total = items.len();
    out.start_bar(total as u64, run.tool.into());
    let failed = AtomicUsize::new(0);
    let skipped = AtomicUsize::new(0);
    let label = |i: usize| format!("{} {} ({}/{total})", run.item, name(&items[i]), i + 1);
    each_in_parallel(
        total,
        |i| out.working_on(label(i)),
        |i| {
            let item = &items[i];
            let at = format!("{}/{total}", i + 1);
            if run.resume && done_before(item) {
                out.info(format!(
                    "({at}) {}: done before, skipped (--resume)",
                    name(item)
                ));
                skipped.fetch_add(1, Ordering::Relaxed);
            } else if let Err(e) = work(item, &at) {
                failed.fetch_add(1, Ordering::Relaxed);
                out.error(e);
            }
            out.done_with(label(i));
            out.advance(1);
        },
    );
    let failed = failed.into_inner() + run.missing;
    let ok = out.finish_run(failed, total + run.missing, run.items);
    if run.resume {
        out.info(format!(
            "{}: {total} {}, {} skipped as done before",
            run.tool,
            run.items,
            skipped.into_inner()
        ));
    }
    ok
}

/// Runs `work(i)` for every `i` in `0..n` on the global thread pool, as many at once as the
/// pool has threads, started in the order of `i`. `start(i)` is called as item `i` is taken,
/// under the lock that hands out the items: whatever it records (where the run is, for the
/// line of a run stopped by a signal) is in the order of the items.
pub fn each_in_parallel(n: usize, start: impl Fn(usize) + Sync, work: impl Fn(usize) + Sync) {
    let next = Mutex::new(0usize);
    let take = || {
        let mut k = lock(&next);
        let i = *k;
        *k += 1;
        start(i);
        i
    };
    // One job per item, each taking the next item when it starts: a worker waiting inside an
    // item (make_cuts' compression) that picks up another job takes on one item, not a queue.
    rayon::scope(|s| {
        for _ in 0..n {
            s.spawn(|_| work(take()));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::each_in_parallel;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    #[test]
    fn every_item_runs_once_started_in_order() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        let started = Mutex::new(Vec::new());
        let done = Mutex::new(Vec::new());
        let busy = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        pool.install(|| {
            each_in_parallel(
                40,
                |i| started.lock().unwrap().push(i),
                |i| {
                    let now = busy.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(2));
                    busy.fetch_sub(1, Ordering::SeqCst);
                    done.lock().unwrap().push(i);
                },
            )
        });
        assert_eq!(*started.lock().unwrap(), (0..40).collect::<Vec<_>>());
        let mut done = done.into_inner().unwrap();
        done.sort_unstable();
        assert_eq!(done, (0..40).collect::<Vec<_>>());
        let most = most.load(Ordering::SeqCst);
        assert!((1..=3).contains(&most), "{most} items at once on 3 threads");
    }
}
