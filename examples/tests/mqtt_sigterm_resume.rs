//! SIGTERM (as Ctrl-C) stops the engine cleanly after a final checkpoint —
//! exit 143 with "stopped by SIGTERM" (told apart from a finished job),
//! windows left open, not marked finished — and the next run resumes: the
//! final output equals the `--input` run.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

mod common;
use common::*;
use std::time::Duration;

#[test]
fn sigterm_checkpoints_and_the_next_run_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let bdir = dir.path().join("broker");
    let Some(m) = Mosquitto::start(&bdir) else { return };
    let data = dataset(10_000, 20);
    let expected = oracle(dir.path(), &data);
    let url = m.url();
    // Results at periodic checkpoints only (commit on output would add
    // checkpoints for the windows that close before the stop).
    let args = ["--stop-after-idle", "3s", "--checkpoint-interval", "10s", "--output-mode", "checkpoint"];
    let child = engine(&url, dir.path(), "eng", &args).spawn().unwrap();
    wait_subscribed(&m, &bdir, &["eng"]);
    let pubr = {
        let (url, data) = (url.clone(), data.clone());
        std::thread::spawn(move || publish(&url, "pub-term", &data, 5000.0))
    };
    std::thread::sleep(Duration::from_millis(1200));
    // The checkpoint interval is 10 s: what the next run skips was
    // recorded by the stop's own checkpoint.
    let _ = std::process::Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let (ok, err) = finish(child, Duration::from_secs(20));
    assert!(!ok && err.contains("stopped by SIGTERM"), "a stopped run says so and exits 143: {err}");
    assert!(err.contains("1 checkpoints"), "one final checkpoint: {err}");
    let child = engine(&url, dir.path(), "eng", &args).spawn().unwrap();
    pubr.join().unwrap();
    let (ok, err) = finish(child, Duration::from_secs(60));
    assert!(ok, "resumed run failed: {err}");
    assert!(err.contains("resumed from epoch"), "{err}");
    assert_eq!(sorted_rows(&dir.path().join("eng.csv")), expected);
}
