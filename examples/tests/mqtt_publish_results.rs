//! `--publish averages/{sensor_id}`: every committed window result is
//! published once per epoch commit, QoS 1, as JSON on its sensor's topic,
//! with a deterministic `rivulet-msg-id`; the published set equals OUT.csv.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

mod common;
use common::*;
use std::collections::BTreeSet;
use std::time::Duration;

#[test]
fn committed_results_are_published_with_ids() {
    let dir = tempfile::tempdir().unwrap();
    let bdir = dir.path().join("broker");
    let Some(m) = Mosquitto::start(&bdir) else { return };
    let data = dataset(3_000, 10);
    let url = m.url();
    let results = Collector::start(m.port, "results-reader", "averages/#");
    let child = engine(&url, dir.path(), "eng", &["--stop-after-idle", "2s", "--publish", "averages/{sensor_id}"])
        .spawn()
        .unwrap();
    wait_subscribed(&m, &bdir, &["eng"]);
    publish(&url, "pub-results", &data, 20_000.0);
    let (ok, err) = finish(child, Duration::from_secs(60));
    assert!(ok, "engine failed: {err}");
    let rows = sorted_rows(&dir.path().join("eng.csv"));
    assert!(!rows.is_empty());
    let got = results.wait(rows.len(), Duration::from_secs(10));
    let ids: BTreeSet<_> = got.iter().map(|(_, _, id)| id.clone().expect("a msg id")).collect();
    assert_eq!(ids.len(), got.len(), "ids are unique");
    let mut published: Vec<String> = got
        .iter()
        .map(|(topic, payload, _)| {
            let v: serde_json::Value = serde_json::from_str(payload).unwrap();
            let id = v["sensor_id"].as_str().unwrap().to_string();
            assert_eq!(topic, &format!("averages/{id}"));
            format!("{id},{},{},{}", v["window_end_ms"], v["avg_c"].as_f64().unwrap(), v["count"])
        })
        .collect();
    published.sort();
    assert_eq!(published, rows);
}
