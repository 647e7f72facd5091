//! Mosquitto (persistence on) is restarted mid-stream: the publisher and
//! the engine reconnect, the persistent session kept what was queued, and
//! the output equals the `--input` run.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

mod common;
use common::*;
use std::time::Duration;

#[test]
fn broker_restart_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let bdir = dir.path().join("broker");
    let Some(mut m) = Mosquitto::start(&bdir) else { return };
    let data = dataset(12_000, 30);
    let expected = oracle(dir.path(), &data);
    let url = m.url();
    let child = engine(&url, dir.path(), "eng", &["--stop-after-idle", "4s"]).spawn().unwrap();
    wait_subscribed(&m, &bdir, &["eng"]);
    let pubr = {
        let (url, data) = (url.clone(), data.clone());
        std::thread::spawn(move || publish(&url, "pub-restart", &data, 4000.0))
    };
    std::thread::sleep(Duration::from_millis(1500));
    m.restart();
    std::thread::sleep(Duration::from_millis(800));
    m.restart();
    pubr.join().unwrap();
    let (ok, err) = finish(child, Duration::from_secs(60));
    assert!(ok, "engine failed: {err}");
    assert_eq!(sorted_rows(&dir.path().join("eng.csv")), expected);
}
