//! SIGKILL the engine several times while a publisher sends a data set;
//! the final output equals the `--input` run of the same data: nothing
//! lost (manual acks after the ingest log) and nothing twice (checkpointed
//! log position, duplicate filter).
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

mod common;
use common::*;

// Results committed by a checkpoint started for them (the default with
// --mqtt). 250 ms windows close about every 250 ms here, each starting a
// checkpoint, so the kills land among many short epochs.
#[test]
fn kill_and_restart_matches_file_run_commit_on_output() {
    kill_and_restart(&["--output-mode", "commit-on-output", "--window", "250ms"]);
}

// Results wait for the periodic checkpoint.
#[test]
fn kill_and_restart_matches_file_run_at_checkpoints() {
    kill_and_restart(&["--output-mode", "checkpoint"]);
}

fn kill_and_restart(mode: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let Some(m) = Mosquitto::start(&dir.path().join("broker")) else { return };
    let data = dataset(20_000, 40);
    let window: Vec<&str> = mode.iter().skip_while(|a| **a != "--window").take(2).copied().collect();
    let expected = oracle_with(dir.path(), &data, &window);
    let args = [&["--stop-after-idle", "3s"][..], mode].concat();
    publish_with_kills(&m, &dir.path().join("broker"), dir.path(), &args, &data, "pub-kill");
    assert_eq!(sorted_rows(&dir.path().join("eng.csv")), expected);
}
