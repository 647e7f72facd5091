//! Quick-start smoke test: `rivulet run` with the embedded broker, the
//! simulator and the seed job, bounded by `--events`, ends cleanly and shows
//! closed windows.
#![cfg(feature = "embedded-broker")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

use std::process::Command;

#[test]
fn quick_start_runs_the_whole_path() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rivulet"))
        .args(["run", "--events", "6000", "--rate", "3000", "--sensors", "10"])
        .arg("--output")
        .arg(dir.path().join("avg.csv"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("embedded broker"), "{stdout}");
    assert!(stdout.contains("sent 6000 readings"), "{stdout}");
    let rows = std::fs::read_to_string(dir.path().join("avg.csv")).unwrap();
    assert!(rows.lines().count() >= 10, "window results: {rows}");
}
