//! `--output-mode eager`: results are published before their checkpoint
//! completes. SIGKILL the engine several times while data flows: the replay
//! after each restart publishes the same results with the same message ids,
//! so a consumer dropping repeated ids sees exactly the rows of the
//! `--input` run, and OUT.csv (cut back to its checkpoint and rewritten)
//! equals them too.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

mod common;
use common::*;
use std::collections::BTreeMap;
use std::time::Duration;

#[test]
fn eager_results_repeat_with_the_same_ids_after_kills() {
    let dir = tempfile::tempdir().unwrap();
    let bdir = dir.path().join("broker");
    let Some(m) = Mosquitto::start(&bdir) else { return };
    let data = dataset(20_000, 40);
    // Short windows: results flow all the time, so kills land among them.
    let window = ["--window", "250ms"];
    let expected = oracle_with(dir.path(), &data, &window);
    let results = Collector::start(m.port, "results-reader", "averages/#");
    let args =
        [&["--stop-after-idle", "3s", "--output-mode", "eager", "--publish", "averages/{sensor_id}"][..], &window]
            .concat();
    publish_with_kills(&m, &bdir, dir.path(), &args, &data, "pub-eager");
    assert_eq!(sorted_rows(&dir.path().join("eng.csv")), expected);

    let got = results.wait(expected.len(), Duration::from_secs(10));
    let mut by_id: BTreeMap<String, String> = BTreeMap::new();
    for (topic, payload, id) in &got {
        let v: serde_json::Value = serde_json::from_str(payload).unwrap();
        let sensor = v["sensor_id"].as_str().unwrap().to_string();
        assert_eq!(topic, &format!("averages/{sensor}"));
        let row = format!("{sensor},{},{},{}", v["window_end_ms"], v["avg_c"].as_f64().unwrap(), v["count"]);
        let id = id.clone().expect("a msg id");
        if let Some(before) = by_id.insert(id.clone(), row.clone()) {
            assert_eq!(before, row, "id {id} was published with two different results");
        }
    }
    eprintln!("{} results published, {} distinct ids", got.len(), by_id.len());
    let mut once: Vec<String> = by_id.into_values().collect();
    once.sort();
    assert_eq!(once, expected, "results, each id once, are the rows of the file run");
}
