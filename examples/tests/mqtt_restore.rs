//! Restoring an older retained checkpoint of an MQTT job: the source goes
//! back to its ingest-log position at that epoch and replays the log from
//! there (the broker has long forgotten those messages), and the output
//! ends equal to the `--input` run's.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

mod common;
use common::*;
use std::process::Command;
use std::time::Duration;

#[test]
fn an_mqtt_job_restored_to_an_older_checkpoint_replays_its_ingest_log() {
    let dir = tempfile::tempdir().unwrap();
    let bdir = dir.path().join("broker");
    let Some(m) = Mosquitto::start(&bdir) else { return };
    let data = dataset(8_000, 20);
    let expected = oracle(dir.path(), &data);
    let url = m.url();
    // ~20 epochs while the data arrives, ~10 idle ones before the end: the
    // oldest of 20 retained checkpoints lies in the middle of the data.
    let args = [
        "--stop-after-idle",
        "1s",
        "--checkpoint-interval",
        "100ms",
        "--output-mode",
        "checkpoint",
        "--retain-checkpoints",
        "20",
    ];
    let child = engine(&url, dir.path(), "eng", &args).spawn().unwrap();
    wait_subscribed(&m, &bdir, &["eng"]);
    publish(&url, "pub-restore", &data, 4000.0);
    let (ok, err) = finish(child, Duration::from_secs(60));
    assert!(ok, "first run failed: {err}");
    let out = dir.path().join("eng.csv");
    assert_eq!(sorted_rows(&out), expected);

    let state = dir.path().join("eng-state");
    let list = Command::new(BIN).arg("--list-checkpoints").arg("--state-dir").arg(&state).output().unwrap();
    assert!(list.status.success());
    let list = String::from_utf8(list.stdout).unwrap();
    let oldest: u64 = list
        .lines()
        .find_map(|l| l.strip_prefix("epoch")?.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no retained checkpoint listed: {list}"));
    assert!(list.lines().count() >= 10, "{list}");

    let mut restore = args.to_vec();
    let t = oldest.to_string();
    restore.extend(["--restore-checkpoint", &t]);
    let child = engine(&url, dir.path(), "eng", &restore).spawn().unwrap();
    let (ok, err) = finish(child, Duration::from_secs(60));
    assert!(ok, "restored run failed: {err}");
    assert!(err.contains(&format!("resumed from epoch {t}")), "{err}");
    let replayed: u64 = err
        .split_whitespace()
        .zip(err.split_whitespace().skip(1))
        .find_map(|(n, w)| (w == "records").then(|| n.parse().ok()).flatten())
        .unwrap_or(0);
    assert!(replayed > 0, "the restored run replayed nothing from the ingest log: {err}");
    assert_eq!(sorted_rows(&out), expected);
}
