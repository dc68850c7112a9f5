//! `dre_survey --executor slurm` on a real single-node Slurm cluster
//! (scripts/slurm-local.sh, started and stopped by scripts/test.sh in CI; or started here
//! when the tests run as root, and then stopped when this test binary exits): the outputs
//! of a job array equal, bit for bit in their data, those of the local executor and of the
//! four tools run by hand; an array task cancelled mid-run and a corrupted tile are named
//! by `status` with their error lines, and after the tile is replaced `run --resume` re-runs
//! exactly those two, to a clean run's outputs; a refused submission is one line. Each
//! test says `skipped: ...` and passes where Slurm cannot be installed or started.

use crate::common::{output, stderr};
use crate::survey::{
    by_hand, copy_tiles, names, no_temporaries, plan, plan_tiles, record, runs, same_outputs,
    simulate, status_json, survey, survey_folder, tiles_in,
};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Whether the cluster takes jobs; started with scripts/slurm-local.sh when it does not
/// and this runs as root. Err: why not.
fn cluster() -> Result<(), String> {
    static UP: OnceLock<Result<(), String>> = OnceLock::new();
    UP.get_or_init(|| {
        if node_ready() {
            return Ok(());
        }
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("no Slurm cluster, and not root to start one \
                        (sudo scripts/slurm-local.sh start)"
                .into());
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/slurm-local.sh");
        let o = output(Command::new(&script).arg("start"));
        if !o.status.success() {
            return Err(format!(
                "Slurm could not be installed or started: {}",
                stderr(&o).trim().replace('\n', "; ")
            ));
        }
        stop_when_this_process_exits(&script);
        if node_ready() {
            Ok(())
        } else {
            Err("scripts/slurm-local.sh started, but no node takes jobs".into())
        }
    })
    .clone()
}

/// Stops the cluster these tests started once the test binary has exited, however it
/// exits: libtest has no hook after the last test, so a detached watcher waits for this
/// process to end.
fn stop_when_this_process_exits(script: &Path) {
    let watch = format!(
        "while kill -0 {} 2>/dev/null; do sleep 1; done; exec \"$0\" stop",
        std::process::id()
    );
    // Not waited for: it must outlive this process.
    let spawned = Command::new("setsid")
        .args(["sh", "-c", &watch])
        .arg(script)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Err(e) = spawned {
        eprintln!("survey_slurm: cannot watch this process to stop Slurm after it: {e}");
    }
}

fn node_ready() -> bool {
    let Ok(o) = Command::new("sinfo")
        .args(["-h", "-N", "-o", "%T"])
        .output()
    else {
        return false;
    };
    let s = String::from_utf8_lossy(&o.stdout);
    o.status.success()
        && ["idle", "mixed", "allocated", "completing"]
            .iter()
            .any(|st| s.trim_start().starts_with(st))
}

macro_rules! require_cluster {
    () => {
        if let Err(why) = cluster() {
            eprintln!("skipped: {why}");
            return;
        }
    };
}

/// Waits until no task of job array `job` is pending or running.
fn wait_for_array(job: &str) {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let o = Command::new("squeue")
            .args([
                "-h",
                "-r",
                "-j",
                job,
                "-t",
                "PENDING,RUNNING,CONFIGURING,COMPLETING",
            ])
            .args(["-o", "%K"])
            .output()
            .unwrap();
        let live = String::from_utf8_lossy(&o.stdout).trim().to_string();
        if !o.status.success() || live.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "job array {job} still runs: {live}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The job array of run `run`.
fn job_of(dir: &Path, run: u32) -> String {
    plan(dir, run)["job"].as_str().unwrap().to_string()
}

/// A job array over 8 tiles (4 tasks at a time) gives what the local executor and the four
/// tools by hand give; each tile's record names the job, its task and the host.
#[test]
fn slurm_survey_equals_local_and_hand_runs() {
    require_cluster!();
    let dir = survey_folder(8, 4);
    let d = dir.path();
    let o = survey(d, &["run", "-d", ".", "--executor", "slurm", "--wait"]);
    assert!(o.status.success(), "run: {}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("submitted job array"), "{out}");
    assert!(out.contains("8 tiles, 8 done, 0 failed"), "{out}");
    let job = job_of(d, 1);
    let script = std::fs::read_to_string(d.join(".survey/runs/0001/array.sh")).unwrap();
    assert!(script.contains("#SBATCH --cpus-per-task=1"), "{script}");
    assert!(script.contains("task -d"), "{script}");
    for (i, t) in names(8).iter().enumerate() {
        let r = record(d, t);
        assert_eq!(r["job"], job.as_str(), "{t}");
        assert_eq!(r["task"], i, "{t}");
        assert_eq!(r["executor"], "slurm");
        assert!(r["host"].as_str().is_some());
        assert!(d
            .join(format!(".survey/runs/0001/logs/task-{i}.log"))
            .is_file());
    }
    let st = status_json(d);
    assert_eq!(st["done"], 8, "{st}");
    assert_eq!(st["last_run"]["job"], job.as_str());

    let local = copy_tiles(d);
    crate::survey::configure(local.path(), 2);
    let o = survey(local.path(), &["run", "-d", "."]);
    assert!(o.status.success(), "local: {}", stderr(&o));
    let hand = copy_tiles(d);
    by_hand(hand.path());
    let n = same_outputs(d, local.path(), &names(8));
    assert_eq!(same_outputs(d, hand.path(), &names(8)), n);
    assert!(n >= 16, "{n} objects");
    no_temporaries(d);
}

/// One array task cancelled (scancel) while it runs, one tile corrupted: status names
/// both, failed, with their error lines; once the tile is replaced, run --resume runs
/// those two tiles only, and every output equals a clean run's.
#[test]
fn slurm_cancelled_task_and_corrupt_tile_are_named_and_resumed() {
    require_cluster!();
    let dir = survey_folder(6, 2);
    let d = dir.path();
    // t07: a large tile (the one cancelled while it runs); t03: corrupted (half its bytes).
    simulate(
        d,
        "t07",
        7,
        &["--size", "2000", "--galaxies", "200", "--stars", "30"],
    );
    let t03 = d.join("Tiles/t03.fits");
    let good = std::fs::read(&t03).unwrap();
    std::fs::write(&t03, &good[..good.len() / 2]).unwrap();
    let clean = copy_tiles(d);
    std::fs::write(clean.path().join("Tiles/t03.fits"), &good).unwrap();

    let o = survey(d, &["run", "-d", ".", "--executor", "slurm"]);
    assert!(o.status.success(), "run: {}", stderr(&o));
    let job = job_of(d, 1);
    // A second run while this one runs is refused: both would take the same tiles.
    let o = survey(d, &["run", "-d", ".", "--executor", "slurm"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let lines = crate::survey::error_lines(&o);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains(&format!("run 1 still runs (job array {job})")),
        "{lines:?}"
    );
    assert_eq!(runs(d).len(), 1);
    // t07 is task 6: cancel it once it runs.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let started = std::fs::read(d.join(".survey/state/t07.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .is_some_and(|r| r["stages"][0]["state"] != "pending");
        if started {
            break;
        }
        assert!(Instant::now() < deadline, "t07 never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    let o = output(Command::new("scancel").arg(format!("{job}_6")));
    assert!(o.status.success(), "scancel: {}", stderr(&o));
    wait_for_array(&job);

    let st = status_json(d);
    let failed = tiles_in(&st, "failed");
    assert_eq!(
        failed,
        BTreeSet::from(["t03".to_string(), "t07".to_string()]),
        "{st}"
    );
    assert_eq!(tiles_in(&st, "done").len(), 5, "{st}");
    let tile = |name: &str| {
        st["tile_status"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["tile"] == name)
            .unwrap()
            .clone()
    };
    let t03s = tile("t03");
    assert_eq!(t03s["stage"], "sex_dre");
    let e03 = t03s["error"].as_str().unwrap();
    assert!(
        e03.starts_with("sex_dre: ") && e03.contains("Tiles/t03.fits"),
        "{e03}"
    );
    let t07s = tile("t07");
    let e07 = t07s["error"].as_str().unwrap();
    assert!(
        e07.contains("SIGTERM") || e07.contains("CANCELLED"),
        "t07's error says it was stopped: {e07}"
    );
    assert_eq!(t07s["job"], job.as_str());
    assert_eq!(t07s["task"], 6);
    // The text says the same, a line each.
    let text = survey(d, &["status", "-d", "."]);
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(
        text.contains("7 tiles: 5 done, 0 running, 0 pending, 2 failed"),
        "{text}"
    );
    let line = |t: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(t))
            .unwrap()
            .to_string()
    };
    assert!(line("t03").contains(e03), "{text}");
    assert!(line("t07").contains(&format!("job {job}_6")), "{text}");
    assert!(line("t07").contains(e07), "{text}");

    // The tile replaced, --resume runs exactly those two.
    let before: Vec<_> = ["t01", "t02", "t04", "t05", "t06"]
        .iter()
        .map(|t| record(d, t))
        .collect();
    std::fs::write(&t03, &good).unwrap();
    let o = survey(
        d,
        &[
            "run",
            "-d",
            ".",
            "--executor",
            "slurm",
            "--wait",
            "--resume",
        ],
    );
    assert!(o.status.success(), "resume: {}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("5 tiles done before"), "{out}");
    assert_eq!(runs(d).len(), 2);
    assert_eq!(
        plan_tiles(&plan(d, 2)),
        BTreeSet::from(["t03".to_string(), "t07".to_string()])
    );
    for (t, r) in ["t01", "t02", "t04", "t05", "t06"].iter().zip(&before) {
        assert_eq!(&record(d, t), r, "{t}'s record untouched");
    }
    let st = status_json(d);
    assert_eq!(st["done"], 7, "{st}");

    let mut all = names(6);
    all.push("t07".into());
    crate::survey::configure(clean.path(), 2);
    let o = survey(clean.path(), &["run", "-d", "."]);
    assert!(o.status.success(), "clean: {}", stderr(&o));
    same_outputs(d, clean.path(), &all);
    no_temporaries(d);
}

/// The cluster refusing the array (no such partition) is one line, and no run is left.
#[test]
fn slurm_refused_submission_is_one_line() {
    require_cluster!();
    let dir = crate::survey::scratch();
    let d = dir.path();
    crate::survey::simulate_tile(d, "t01", 1);
    crate::survey::configure(d, 1);
    let o = survey(
        d,
        &[
            "run",
            "-d",
            ".",
            "--executor",
            "slurm",
            "--sbatch=--partition=nosuch",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let lines = crate::survey::error_lines(&o);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("dre_survey: sbatch refused the job array: ")
            && lines[0].contains("Invalid partition name specified"),
        "{lines:?}"
    );
    assert!(runs(d).is_empty());
}
