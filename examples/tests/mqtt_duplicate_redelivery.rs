//! Duplicates that a broker may redeliver without the DUP flag: the same
//! message (topic and payload) sent again, and a message carrying a
//! `rivulet-msg-id` seen before. Both count once; the output equals the
//! `--input` run of the unique readings.

mod common;
use common::*;
use rivulet_agent::seed::publish::{reading_message, Publisher};
use std::time::Duration;

#[test]
fn redelivered_messages_count_once() {
    let dir = tempfile::tempdir().unwrap();
    let bdir = dir.path().join("broker");
    let Some(m) = Mosquitto::start(&bdir) else { return };
    let data = dataset(4_000, 10);
    let expected = oracle(dir.path(), &data);
    let url = m.url();
    let child = engine(&url, dir.path(), "eng", &["--stop-after-idle", "2s"]).spawn().unwrap();
    wait_subscribed(&m, &bdir, &["eng"]);
    let mut p = Publisher::connect(&url, "pub-dup", false).unwrap();
    for (i, r) in data.iter().enumerate() {
        let (t, pl) = reading_message(r);
        p.send(&t, pl.clone()).unwrap();
        if i % 7 == 0 {
            p.send(&t, pl).unwrap(); // a redelivery without DUP
        }
        if i >= 10 && i % 11 == 0 {
            // A replay of an earlier message, 10 messages later.
            let (t, pl) = reading_message(&data[i - 10]);
            p.send(&t, pl).unwrap();
        }
    }
    p.wait_acked(Duration::from_secs(30)).unwrap();
    let (ok, err) = finish(child, Duration::from_secs(60));
    assert!(ok, "engine failed: {err}");
    assert!(err.contains(&format!("{} records in", data.len())), "{err}");
    assert_eq!(sorted_rows(&dir.path().join("eng.csv")), expected);
}
