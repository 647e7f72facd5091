//! The seed job's file edges, run as a real process: outputs that would
//! overwrite an input or the state directory are refused untouched, dead
//! letters survive `kill -9` exactly once, over-long lines and timestamps
//! out of range are counted and dead-lettered, and an output changed outside
//! the job is refused as it is.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

mod seed;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_sensor-average");

fn run(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut c = Command::new(BIN);
    for a in args {
        c.arg(a);
    }
    c.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Guards issue 12 §1: an output or dead letter that is the input (also
/// through a symlink or a hard link), or that lies inside the state
/// directory, is refused with exit 2 naming both flags, and nothing is
/// written or created.
#[test]
fn outputs_over_inputs_or_state_are_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = d.join("x.csv");
    seed::write_csv(&input, &seed::synthetic(2_000, 5, 3, 0, 0));
    let before = std::fs::read(&input).unwrap();
    let link = d.join("link.csv");
    std::os::unix::fs::symlink(&input, &link).unwrap();
    let hard = d.join("hard.csv");
    std::fs::hard_link(&input, &hard).unwrap();
    let state = d.join("state");
    let o = d.join("o.csv");
    let in_state = state.join("o.csv");
    let cases: Vec<(Vec<&dyn AsRef<std::ffi::OsStr>>, &str, &str)> = vec![
        (vec![&"--input", &input, &"--output", &input], "--output", "--input"),
        (vec![&"--input", &input, &"--output", &input, &"--state-dir", &state], "--output", "--input"),
        (vec![&"--input", &input, &"--output", &link], "--output", "--input"),
        (vec![&"--input", &link, &"--output", &hard], "--output", "--input"),
        (vec![&"--input", &input, &"--output", &o, &"--dead-letter", &link], "--dead-letter", "--input"),
        (vec![&"--input", &input, &"--output", &o, &"--dead-letter", &o], "--dead-letter", "--output"),
        (vec![&"--input", &input, &"--output", &in_state, &"--state-dir", &state], "--output", "--state-dir"),
    ];
    for (args, flag, other) in cases {
        let r = run(&args);
        let e = stderr(&r);
        assert_eq!(r.status.code(), Some(2), "{e}");
        assert!(e.contains(&format!("invalid {flag}:")) && e.contains(other), "{e}");
        assert_eq!(std::fs::read(&input).unwrap(), before, "the input is untouched: {e}");
        assert!(!d.join("o.csv").exists() && !state.exists(), "nothing was created: {e}");
    }
}

fn with_bad_lines(n: usize) -> Vec<u8> {
    let mut text = String::new();
    for (i, l) in seed::synthetic(n, 50, 11, 0, 0).iter().enumerate() {
        text.push_str(&format!("{},{},{}\n", l.id, l.ts, l.temp_f));
        match i % 4 {
            0 => text.push_str(&format!("s{i},notanumber{i},70\n")),
            2 => text.push('\n'),
            _ => {}
        }
    }
    text.into_bytes()
}

fn job(input: &Path, out: &Path, dl: &Path, state: Option<&Path>) -> Command {
    let mut c = Command::new(BIN);
    c.arg("--input").arg(input).arg("--output").arg(out).arg("--dead-letter").arg(dl);
    c.args(["--checkpoint-interval", "20ms"]);
    if let Some(s) = state {
        c.arg("--state-dir").arg(s);
    }
    c.stdout(Stdio::null()).stderr(Stdio::piped());
    c
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// Guards issue 12 §5: runs killed with `kill -9` while dead-lettering and
/// resumed leave the same dead-letter file (and output) as an
/// uninterrupted run, each entry once; the final run proves it resumed.
#[test]
fn dead_letters_are_exactly_once_after_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = d.join("in.csv");
    std::fs::write(&input, with_bad_lines(300_000)).unwrap();
    let (want_out, want_dl) = (d.join("want.csv"), d.join("want-dead.txt"));
    let r = job(&input, &want_out, &want_dl, None).output().unwrap();
    assert!(r.status.success(), "{}", stderr(&r));
    let want = std::fs::read(&want_dl).unwrap();
    assert_eq!(String::from_utf8_lossy(&want).lines().count(), 150_000);

    let (out, dl, state) = (d.join("out.csv"), d.join("dead.txt"), d.join("state"));
    let mut kills = 0;
    for _ in 0..2 {
        let start_len = file_len(&dl);
        let mut child = job(&input, &out, &dl, Some(&state)).spawn().unwrap();
        // Kill once the run has dead-lettered well past where it started
        // (several 20 ms checkpoints in), so entries after the last
        // checkpoint are on disk when it dies.
        let t = Instant::now();
        while file_len(&dl) < start_len + (want.len() as u64) / 5 && t.elapsed() < Duration::from_secs(120) {
            assert!(child.try_wait().unwrap().is_none(), "the run finished before it could be killed");
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(60));
        assert!(child.try_wait().unwrap().is_none(), "the run finished before it could be killed");
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
    }
    assert!(file_len(&dl) > 0);
    let r = job(&input, &out, &dl, Some(&state)).output().unwrap();
    let e = stderr(&r);
    assert!(r.status.success(), "{e}");
    assert!(e.contains("resumed from epoch"), "the last run resumed from a checkpoint: {e}");
    let got = std::fs::read(&dl).unwrap();
    assert!(got == want, "dead letters after {kills} kills: {} bytes, want {}", got.len(), want.len());
    assert_eq!(seed::sorted_rows(&out), seed::sorted_rows(&want_out));
}

/// Guards issue 12 §9: a multi-MB line without its newline among good ones
/// is counted, dead-lettered truncated with its length, and every good
/// line is processed.
#[test]
fn an_over_long_line_is_counted_and_dead_lettered_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = seed::synthetic(3_000, 5, 4, 0, 0);
    let clean = d.join("clean.csv");
    seed::write_csv(&clean, &good);
    let mut bytes = Vec::new();
    for (i, l) in good.iter().enumerate() {
        bytes.extend_from_slice(format!("{},{},{}\n", l.id, l.ts, l.temp_f).as_bytes());
        if i == 1_000 {
            bytes.extend(std::iter::repeat_n(b'7', 5 << 20));
            bytes.push(b'\n');
        }
    }
    let input = d.join("in.csv");
    std::fs::write(&input, &bytes).unwrap();
    let (out, dl, clean_out) = (d.join("out.csv"), d.join("dead.txt"), d.join("clean-out.csv"));
    let r = run(&[&"--input", &input, &"--output", &out, &"--dead-letter", &dl]);
    assert!(r.status.success(), "{}", stderr(&r));
    assert!(stderr(&r).contains("1 malformed"), "{}", stderr(&r));
    let dead = std::fs::read_to_string(&dl).unwrap();
    assert_eq!(dead.lines().count(), 1);
    assert!(dead.contains(":1002: line of 5242880 bytes is longer than the limit of 65536"), "{dead:.200}");
    assert!(dead.len() < 2 * rivulet::source::LONG_LINE_PREFIX, "truncated: {} bytes", dead.len());
    let r = run(&[&"--input", &clean, &"--output", &clean_out]);
    assert!(r.status.success());
    assert_eq!(seed::sorted_rows(&out), seed::sorted_rows(&clean_out));
}

/// Guards issue 12 §10: timestamps outside 1970..=9999 (up to i64's
/// limits) are malformed input, not windows with wrapped ends.
#[test]
fn timestamps_out_of_range_are_malformed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = seed::synthetic(2_000, 5, 5, 0, 0);
    let clean = d.join("clean.csv");
    seed::write_csv(&clean, &good);
    let mut text = std::fs::read_to_string(&clean).unwrap();
    for ts in ["9223372036854775807", "-9223372036854775808", "-1", "253402300800000"] {
        text.push_str(&format!("s0000,{ts},70\n"));
    }
    let input = d.join("in.csv");
    std::fs::write(&input, text).unwrap();
    let (out, dl, clean_out): (PathBuf, PathBuf, PathBuf) = (d.join("out.csv"), d.join("dead.txt"), d.join("c.csv"));
    let r = run(&[&"--input", &input, &"--output", &out, &"--dead-letter", &dl]);
    assert!(r.status.success(), "{}", stderr(&r));
    assert!(stderr(&r).contains("4 malformed"), "{}", stderr(&r));
    let dead = std::fs::read_to_string(&dl).unwrap();
    assert_eq!(dead.lines().count(), 4, "{dead}");
    assert!(dead.contains("ts_ms: timestamp 9223372036854775807 ms is outside"), "{dead}");
    let r = run(&[&"--input", &clean, &"--output", &clean_out]);
    assert!(r.status.success());
    assert_eq!(seed::sorted_rows(&out), seed::sorted_rows(&clean_out));
    assert!(seed::sorted_rows(&out).iter().all(|row| !row.contains(",-")), "no negative window end");
}

/// Guards issue 12 §11: an output that is shorter than what the committed
/// checkpoints published (removed or truncated outside the job) is refused
/// with exit 3 as an output — not called a state directory — and is left
/// exactly as it was: a removed one is not created again.
#[test]
fn an_output_changed_outside_the_job_is_refused_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = d.join("in.csv");
    seed::write_csv(&input, &seed::synthetic(20_000, 50, 7, 9_000, 997));
    let out = d.join("out.csv");
    let state = d.join("state");
    let job = || run(&[&"--input", &input, &"--output", &out, &"--state-dir", &state]);
    let first = job();
    assert!(first.status.success(), "{}", stderr(&first));
    let full = std::fs::read(&out).unwrap();
    assert!(!full.is_empty());

    std::fs::write(&out, &full[..full.len() / 2]).unwrap();
    let r = job();
    let e = stderr(&r);
    assert_eq!(r.status.code(), Some(3), "{e}");
    assert!(e.contains("refused") && e.contains("outside the job") && !e.contains("state directory"), "{e}");
    assert_eq!(std::fs::read(&out).unwrap(), &full[..full.len() / 2], "a refused output is left as it is");

    std::fs::remove_file(&out).unwrap();
    let r = job();
    let e = stderr(&r);
    assert_eq!(r.status.code(), Some(3), "{e}");
    assert!(!out.exists(), "a refused output is not created again: {e}");
}
