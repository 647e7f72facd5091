//! `kill -9` of a running `rivulet sql` job with a state directory at
//! several moments, restarted with the same command each time: the final
//! output holds exactly the rows of an uninterrupted run. Each kill lands
//! after the run committed a checkpoint of its own (read from the state
//! directory's `RIVULET.epoch`), so every restart resumes from one.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

mod sql;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_rivulet");

fn command(job: &Path, state: Option<&Path>) -> Command {
    let mut c = Command::new(BIN);
    c.arg("sql").arg("-f").arg(job).args(["--checkpoint-interval", "30ms"]);
    if let Some(s) = state {
        c.arg("--state-dir").arg(s);
    }
    c.stdout(Stdio::null()).stderr(Stdio::piped());
    c
}

/// The last committed epoch recorded in `RIVULET.epoch` (read only).
fn committed(state: &Path) -> u64 {
    let text = std::fs::read_to_string(state.join("RIVULET.epoch")).unwrap_or_default();
    text.split_whitespace().nth(1).and_then(|e| e.parse().ok()).unwrap_or(0)
}

#[test]
fn kill_9_and_restart_is_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    rivulet_agent::dataset::write_csv(std::fs::File::create(&input).unwrap(), 1_000_000, 300).unwrap();
    let (state, job, out) = kill_and_restart(dir.path(), &input, 1000, |i, o| sql::seed_job(i, o, "'2' SECOND"));

    // A finished job leaves its output as it is; another query on the
    // same state directory is refused (exit 3).
    let bytes = std::fs::read(&out).unwrap();
    let again = command(&job, Some(&state)).output().unwrap();
    assert!(again.status.success());
    assert_eq!(std::fs::read(&out).unwrap(), bytes);
    std::fs::write(&job, sql::seed_job(&input, &out, "'3' SECOND")).unwrap();
    let other = command(&job, Some(&state)).output().unwrap();
    assert_eq!(other.status.code(), Some(3), "{}", String::from_utf8_lossy(&other.stderr));
}

// A Top-N keeps its ranked rows and timers in keyed state: they come back
// from each checkpoint, so no window's ranking is lost or doubled.
#[test]
fn a_top_n_killed_and_restarted_is_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    rivulet_agent::dataset::write_csv(std::fs::File::create(&input).unwrap(), 1_000_000, 300).unwrap();
    let (_, _, out) = kill_and_restart(dir.path(), &input, 60, sql::top_n_job);
    let rows = sql::sorted_rows(&out);
    assert_eq!(rows.iter().filter(|r| r.ends_with(",1")).count() * 3, rows.len(), "three places per window");
}

/// Runs the job `make(input, output)` without a state directory for the
/// expected rows (at least `min_rows`), then with one, killed with SIGKILL at several moments
/// after a checkpoint and restarted each time; asserts the last run
/// resumed and the output equals the expected rows. Returns the state
/// directory, the job file and the output.
fn kill_and_restart(
    dir: &Path,
    input: &Path,
    min_rows: usize,
    make: impl Fn(&Path, &Path) -> String,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let expected_out = dir.join("expected.csv");
    let expected_job = dir.join("expected.sql");
    std::fs::write(&expected_job, make(input, &expected_out)).unwrap();
    let st = command(&expected_job, None).status().unwrap();
    assert!(st.success());
    let expected = sql::sorted_rows(&expected_out);
    assert!(expected.len() >= min_rows, "{} rows", expected.len());

    let out = dir.join("out.csv");
    let job = dir.join("job.sql");
    std::fs::write(&job, make(input, &out)).unwrap();
    let state = dir.join("state");
    let mut kills = 0;
    for ms in [0u64, 7, 40, 150] {
        let before = committed(&state);
        let mut child = command(&job, Some(&state)).spawn().unwrap();
        let start = Instant::now();
        while committed(&state) <= before && child.try_wait().unwrap().is_none() {
            assert!(start.elapsed() < Duration::from_secs(120), "no checkpoint after 120 s");
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(ms));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        child.wait().unwrap();
    }
    let last = committed(&state);
    let run = command(&job, Some(&state)).output().unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(kills >= 2, "the job finished before it could be killed; make the input larger");
    let resumed: u64 = stderr
        .split("resumed from epoch ")
        .nth(1)
        .and_then(|t| t.split(')').next())
        .and_then(|e| e.parse().ok())
        .unwrap_or_else(|| panic!("the last run did not resume from a checkpoint: {stderr}"));
    assert!(resumed >= last && resumed >= 1, "resumed from epoch {resumed}, {last} was committed");
    assert_eq!(sql::sorted_rows(&out), expected, "exactly-once output after {kills} kills");
    (state, job, out)
}
