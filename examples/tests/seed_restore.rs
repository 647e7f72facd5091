//! Retained checkpoints end to end: a finished run keeps its last few
//! complete checkpoints; restoring an older one brings the state, the
//! input position and `out.csv` back to that epoch, and the job running on
//! from there ends with exactly the rows of an uninterrupted run (a file
//! not cut back would hold the rows fired after the epoch twice; state not
//! restored would produce none of them).
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

mod seed;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_sensor-average");

fn job(input: &Path, output: &Path, state: Option<&Path>, extra: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.arg("--input").arg(input).arg("--output").arg(output);
    c.args(["--checkpoint-interval", "20ms"]).args(extra);
    if let Some(s) = state {
        c.arg("--state-dir").arg(s);
    }
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

fn ok(c: &mut Command) -> Output {
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out
}

/// `sensor-average --list-checkpoints`: (epoch, line) per retained checkpoint.
fn list(state: &Path) -> Vec<(u64, String)> {
    let out = ok(Command::new(BIN).arg("--list-checkpoints").arg("--state-dir").arg(state));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let n = l.strip_prefix("epoch")?.split_whitespace().next()?.parse().ok()?;
            Some((n, l.to_string()))
        })
        .collect()
}

struct Setup {
    _dir: tempfile::TempDir,
    input: std::path::PathBuf,
    out: std::path::PathBuf,
    state: std::path::PathBuf,
    expected: Vec<String>,
}

fn finished_run(retain: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    seed::write_csv(&input, &seed::synthetic(600_000, 500, 11, 9_000, 997));
    let expected_out = dir.path().join("expected.csv");
    ok(&mut job(&input, &expected_out, None, &[]));
    let expected = seed::sorted_rows(&expected_out);
    assert!(expected.len() > 1000);
    let out = dir.path().join("out.csv");
    let state = dir.path().join("state");
    ok(&mut job(&input, &out, Some(&state), &["--retain-checkpoints", retain]));
    assert_eq!(seed::sorted_rows(&out), expected);
    Setup { _dir: dir, input, out, state, expected }
}

#[test]
fn restoring_an_older_checkpoint_runs_on_to_the_same_output() {
    let s = finished_run("4");
    let listed = list(&s.state);
    let epochs: Vec<u64> = listed.iter().map(|(e, _)| *e).collect();
    assert_eq!(epochs.len(), 4, "{listed:?}");
    assert!(epochs.windows(2).all(|w| w[1] == w[0] + 1), "{listed:?}");
    assert!(listed[3].1.contains("last complete, job finished"), "{listed:?}");
    assert!(listed[0].1.contains(" UTC"), "{listed:?}");

    let t = epochs[0];
    let run = ok(&mut job(&s.input, &s.out, Some(&s.state), &["--restore-checkpoint", &t.to_string()]));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains(&format!("resumed from epoch {t}")), "{stderr}");
    assert_eq!(seed::sorted_rows(&s.out), s.expected, "output after restoring epoch {t}");

    // A checkpoint that is not retained: refused, listing the retained
    // ones, exit 3, nothing changed.
    let before = (std::fs::read(&s.out).unwrap(), list(&s.state));
    let retained: Vec<String> = before.1.iter().map(|(e, _)| e.to_string()).collect();
    let bad = job(&s.input, &s.out, Some(&s.state), &["--restore-checkpoint", "1"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!("checkpoint 1 is not retained (retained checkpoints: {})", retained.join(", "))),
        "{stderr}"
    );
    assert_eq!((std::fs::read(&s.out).unwrap(), list(&s.state)), before);

    let zero = job(&s.input, &s.out, Some(&s.state), &["--retain-checkpoints", "0"]).output().unwrap();
    assert_eq!(zero.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&zero.stderr).contains("--retain-checkpoints"));
}

#[test]
fn sigkill_during_a_restore_still_ends_exactly_once() {
    let s = finished_run("8");
    let t = list(&s.state)[0].0;
    // Killed before, during or after the rollback, or while running on
    // from it; the next start finishes what was begun.
    for ms in [0u64, 2, 5, 10, 20, 40] {
        let mut child = job(&s.input, &s.out, Some(&s.state), &["--restore-checkpoint", &t.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(ms));
        let _ = child.kill(); // SIGKILL
        child.wait().unwrap();
    }
    ok(&mut job(&s.input, &s.out, Some(&s.state), &[]));
    assert_eq!(seed::sorted_rows(&s.out), s.expected);
}
