//! Malformed payloads (not JSON, a missing field, a mistyped field, not an
//! object) are counted, republished to the dead-letter topic, and the job
//! goes on: its output equals the `--input` run of the good readings.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

mod common;
use common::*;
use rivulet_agent::seed::publish::{reading_message, Publisher};
use std::time::Duration;

#[test]
fn bad_payloads_go_to_the_dead_letter_topic() {
    let dir = tempfile::tempdir().unwrap();
    let bdir = dir.path().join("broker");
    let Some(m) = Mosquitto::start(&bdir) else { return };
    let data = dataset(3_000, 10);
    let expected = oracle(dir.path(), &data);
    let url = m.url();
    let dead = Collector::start(m.port, "dead-reader", "dead/letters");
    let child =
        engine(&url, dir.path(), "eng", &["--stop-after-idle", "2s", "--dead-letter", "dead/letters"]).spawn().unwrap();
    wait_subscribed(&m, &bdir, &["eng"]);
    let bad = |i: usize| match (i / 100) % 4 {
        0 => format!("not json {i}"),
        1 => format!(r#"{{"ts_ms": {i}}}"#),
        2 => format!(r#"{{"ts_ms": "x{i}", "temp_f": 1}}"#),
        _ => format!("{i}"),
    };
    let mut p = Publisher::connect(&url, "pub-bad", false).unwrap();
    for (i, r) in data.iter().enumerate() {
        let (t, pl) = reading_message(r);
        p.send(&t, pl).unwrap();
        if i % 100 == 0 {
            p.send("sensors/s0000/temp", bad(i).into_bytes()).unwrap();
        }
    }
    p.wait_acked(Duration::from_secs(30)).unwrap();
    let n_bad = data.len().div_ceil(100);
    let (ok, err) = finish(child, Duration::from_secs(60));
    assert!(ok, "engine failed: {err}");
    assert!(err.contains(&format!("{n_bad} malformed")), "summary should count {n_bad} malformed: {err}");
    assert_eq!(sorted_rows(&dir.path().join("eng.csv")), expected);
    let got = dead.wait(n_bad, Duration::from_secs(10));
    assert_eq!(got.len(), n_bad, "dead letters: {got:?}");
    assert!(got.iter().any(|(t, p, _)| t == "dead/letters" && p == "not json 0"));
}
