//! The broker is down for a while (longer than the reconnect backoff cap):
//! the engine keeps retrying, reconnects to its persistent session and
//! receives what was published while it was away; the result equals the
//! `--input` run.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

mod common;
use common::*;
use std::time::Duration;

#[test]
fn reconnects_after_a_long_outage() {
    let dir = tempfile::tempdir().unwrap();
    let bdir = dir.path().join("broker");
    let Some(mut m) = Mosquitto::start(&bdir) else { return };
    let data = dataset(6_000, 20);
    let expected = oracle(dir.path(), &data);
    let url = m.url();
    let child = engine(&url, dir.path(), "eng", &["--stop-after-idle", "3s"]).spawn().unwrap();
    wait_subscribed(&m, &bdir, &["eng"]);
    let (first, second) = data.split_at(data.len() / 2);
    publish(&url, "pub-a", first, 20_000.0);
    m.stop();
    std::thread::sleep(Duration::from_secs(8));
    m.restart();
    publish(&url, "pub-b", second, 20_000.0);
    let (ok, err) = finish(child, Duration::from_secs(60));
    assert!(ok, "engine failed: {err}");
    assert_eq!(sorted_rows(&dir.path().join("eng.csv")), expected);
}
