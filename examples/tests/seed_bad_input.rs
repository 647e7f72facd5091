//! Malformed lines are counted, reported with their line numbers, written to
//! the dead-letter file, and skipped; damaged or foreign state directories
//! are refused with a message naming them, and nothing in them is touched.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

mod seed;

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_sensor-average");

fn listing(dir: &Path) -> Vec<(String, u64)> {
    let mut v = Vec::new();
    for e in walk(dir) {
        let m = std::fs::metadata(&e).unwrap();
        v.push((e.strip_prefix(dir).unwrap().display().to_string(), m.len()));
    }
    v.sort();
    v
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn malformed_lines_are_counted_and_dead_lettered() {
    let dir = tempfile::tempdir().unwrap();
    let good = seed::synthetic(2_000, 5, 3, 0, 0);
    let mut text = String::new();
    for (i, l) in good.iter().enumerate() {
        text.push_str(&format!("{},{},{}\n", l.id, l.ts, l.temp_f));
        match i {
            10 => text.push_str("s1,notanumber,70.0\n"),
            20 => text.push_str("s1,1700000000000\n"),
            30 => text.push_str("s1,1700000000000,hot\n"),
            40 => text.push_str(",1700000000000,70\n"),
            50 => text.push_str("s1,1700000000000,NaN\n"),
            _ => {}
        }
    }
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(b"s\xff1,1700000000000,70\n");
    let input = dir.path().join("in.csv");
    std::fs::write(&input, bytes).unwrap();
    let clean = dir.path().join("clean.csv");
    seed::write_csv(&clean, &good);

    let out = dir.path().join("out.csv");
    let dl = dir.path().join("dead.txt");
    let r = Command::new(BIN)
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(&out)
        .arg("--dead-letter")
        .arg(&dl)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(r.status.success(), "{stderr}");
    assert!(stderr.contains("6 malformed"), "{stderr}");
    assert!(stderr.contains("line=12"), "first bad line is reported with its number: {stderr}");
    let dead = String::from_utf8_lossy(&std::fs::read(&dl).unwrap()).into_owned();
    assert_eq!(dead.lines().count(), 6, "{dead}");
    assert!(dead.contains(":12: ts_ms `notanumber` is not an integer: s1,notanumber,70.0"), "{dead}");

    let clean_out = dir.path().join("clean-out.csv");
    let r = Command::new(BIN).arg("--input").arg(&clean).arg("--output").arg(&clean_out).output().unwrap();
    assert!(r.status.success());
    assert_eq!(seed::sorted_rows(&out), seed::sorted_rows(&clean_out));
}

fn run_with_state(dir: &Path, state: &Path) -> std::process::Output {
    let input = dir.join("in.csv");
    if !input.exists() {
        seed::write_csv(&input, &seed::synthetic(50_000, 20, 9, 0, 0));
    }
    Command::new(BIN)
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(dir.join("out.csv"))
        .arg("--state-dir")
        .arg(state)
        .output()
        .unwrap()
}

#[test]
fn a_foreign_directory_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("photos");
    std::fs::create_dir(&state).unwrap();
    std::fs::write(state.join("cat.jpg"), b"meow").unwrap();
    let r = run_with_state(dir.path(), &state);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains(&state.display().to_string()), "{stderr}");
    assert!(stderr.contains("not a Rivulet state directory"), "{stderr}");
    assert_eq!(listing(&state), vec![("cat.jpg".to_string(), 4)]);
}

#[test]
fn a_damaged_state_directory_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    assert!(run_with_state(dir.path(), &state).status.success());
    // Damage: the database folder is replaced by garbage.
    let db = state.join("db");
    std::fs::remove_dir_all(&db).unwrap();
    std::fs::write(&db, b"garbage").unwrap();
    let before = listing(&state);
    let r = run_with_state(dir.path(), &state);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("refused"), "{stderr}");
    assert_eq!(listing(&state), before, "nothing was changed");
}

#[test]
fn a_corrupted_journal_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    assert!(run_with_state(dir.path(), &state).status.success());
    // Flip bytes in every file of the database.
    for f in walk(&state.join("db")) {
        let mut b = std::fs::read(&f).unwrap();
        if b.len() > 16 {
            for x in b.iter_mut().skip(8).step_by(7) {
                *x ^= 0x5a;
            }
            std::fs::write(&f, b).unwrap();
        }
    }
    let before = listing(&state);
    let r = run_with_state(dir.path(), &state);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(!r.status.success(), "a corrupted store must not be used: {stderr}");
    assert!(stderr.contains(&state.display().to_string()), "{stderr}");
    assert_eq!(listing(&state), before, "nothing was changed");
}

#[test]
fn a_state_directory_of_another_job_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(state.join("db")).unwrap();
    std::fs::write(state.join("RIVULET"), "rivulet-state format=1 job=other\n").unwrap();
    let r = run_with_state(dir.path(), &state);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("job=other"), "{stderr}");
}
