//! SIGKILL the engine several times while a publisher sends readings 50 to
//! a message (JSON arrays); the final output equals the `--input` run of
//! the same readings: a message is acked only once all its readings are in
//! the ingest log, a redelivered message is dropped as a whole, and replay
//! hands out every reading of a message again.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

mod common;
use common::*;

#[test]
fn kill_and_restart_with_batched_messages_matches_file_run() {
    let dir = tempfile::tempdir().unwrap();
    let Some(m) = Mosquitto::start(&dir.path().join("broker")) else { return };
    // 400 messages of 50 readings from 40 sensors, sent over about 4 s.
    let (msgs, read) = batched(&dataset(20_000, 40), 50, 40);
    assert_eq!(msgs.len(), 400);
    // Short windows close every 250 ms, each committing a checkpoint, so
    // the kills land among many short epochs.
    let expected = oracle_with(dir.path(), &read, &["--window", "250ms"]);
    let args = ["--stop-after-idle", "3s", "--output-mode", "commit-on-output", "--window", "250ms"];
    publish_messages_with_kills(&m, &dir.path().join("broker"), dir.path(), &args, &msgs, 100.0, "pub-batch-kill");
    assert_eq!(sorted_rows(&dir.path().join("eng.csv")), expected);
}
