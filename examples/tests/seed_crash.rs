//! `kill -9` of a running `sensor-average` at several moments, restarted
//! with the same command each time: the final output holds exactly the rows
//! of an uninterrupted run, and a run after completion changes nothing.
//! Each kill lands after the run committed a checkpoint of its own (read
//! from the state directory's `RIVULET.epoch`), so every restart resumes
//! from a checkpoint, whatever the machine's speed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

mod seed;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_sensor-average");

fn command(input: &Path, output: &Path, state: Option<&Path>, p: usize, extra: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.arg("--input").arg(input).arg("--output").arg(output);
    c.args(["--parallelism", &p.to_string(), "--checkpoint-interval", "30ms"]);
    c.args(extra);
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

fn crash_and_resume(p: usize, lines: &[seed::Line], extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    seed::write_csv(&input, lines);
    let expected_out = dir.path().join("expected.csv");
    let st = command(&input, &expected_out, None, p, &[]).status().unwrap();
    assert!(st.success());
    let expected = seed::sorted_rows(&expected_out);
    assert!(expected.len() > 1000);

    let out = dir.path().join("out.csv");
    let state = dir.path().join("state");
    let mut kills = 0;
    // Each run is killed at a varied moment after its own first checkpoint:
    // at once, mid-epoch, and later.
    for ms in [0u64, 7, 40, 150] {
        let before = committed(&state);
        let mut child = command(&input, &out, Some(&state), p, extra).spawn().unwrap();
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
    let run = command(&input, &out, Some(&state), p, extra).output().unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(kills >= 2, "the job finished before it could be killed; make the input larger");
    // Regression (issue 12): kills at fixed delays could all land before the
    // first checkpoint and never test a resume.
    let resumed: u64 = stderr
        .split("resumed from epoch ")
        .nth(1)
        .and_then(|t| t.split(')').next())
        .and_then(|e| e.parse().ok())
        .unwrap_or_else(|| panic!("the last run did not resume from a checkpoint: {stderr}"));
    assert!(resumed >= last && resumed >= 1, "resumed from epoch {resumed}, {last} was committed");
    assert_eq!(seed::sorted_rows(&out), expected, "exactly-once output after {kills} kills");

    // A finished job leaves its output as it is.
    let before = std::fs::read(&out).unwrap();
    let again = command(&input, &out, Some(&state), p, extra).output().unwrap();
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already finished"));
    assert_eq!(std::fs::read(&out).unwrap(), before);
}

#[test]
fn sigkill_at_any_moment_is_exactly_once() {
    crash_and_resume(1, &seed::synthetic(1_500_000, 500, 7, 9_000, 997), &[]);
}

#[test]
fn sigkill_with_parallel_windows_is_exactly_once() {
    crash_and_resume(3, &seed::synthetic(1_500_000, 500, 7, 9_000, 997), &[]);
}

/// 20,000 sensors each reading every 2.5 s, so every 5 s window holds all
/// of them, with a cache that holds a few hundred typed entries: kills land
/// while state lives in the typed map, the packed tier and on disk at
/// once, with dirty entries in each.
#[test]
fn sigkill_with_state_beyond_the_cache_is_exactly_once() {
    let keys = 20_000usize;
    let lines: Vec<seed::Line> = (0..240_000usize)
        .map(|i| seed::Line {
            id: format!("s{:05}", i % keys),
            ts: 1_700_000_000_000 + (i / keys) as i64 * 2_500 - (i % 7) as i64 * 100,
            temp_f: (i % 1_000) as f64 / 10.0,
        })
        .collect();
    crash_and_resume(2, &lines, &["--state-cache", "256KiB"]);
}
