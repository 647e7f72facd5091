//! Retained messages: a reading published with the retain flag while the
//! engine is subscribed counts once, like any other; the stored copy the
//! broker sends when a subscription is made (a reading from before the job
//! subscribed, or one it already received) is skipped, not counted again.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

mod common;
use common::*;
use rivulet_agent::seed::publish::reading_message;
use rumqttc::v5::mqttbytes::QoS;
use std::time::Duration;

// Guards issue 12 (siblings of §2): retained copies were counted as new
// readings at every (re-)subscription.
#[test]
fn retained_copies_are_not_counted_twice() {
    let dir = tempfile::tempdir().unwrap();
    let bdir = dir.path().join("broker");
    let Some(m) = Mosquitto::start(&bdir) else { return };
    let data = dataset(1_000, 10);
    let expected = oracle(dir.path(), &data);
    let (client, acks) = v5_publisher(m.port, "pub-retain");
    let wait_acks = |n: usize| {
        let until = std::time::Instant::now() + Duration::from_secs(30);
        while acks.load(std::sync::atomic::Ordering::Acquire) < n {
            assert!(std::time::Instant::now() < until, "publishes unacknowledged");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    // Before the engine subscribes: retained on its sensor's topic.
    let (t, pl) = reading_message(&data[0]);
    client.publish(t, QoS::AtLeastOnce, true, pl).unwrap();
    wait_acks(1);
    let url = m.url();
    let child = engine(&url, dir.path(), "eng", &["--stop-after-idle", "2s"]).spawn().unwrap();
    wait_subscribed(&m, &bdir, &["eng"]);
    for (i, r) in data.iter().enumerate() {
        let (t, pl) = reading_message(r);
        client.publish(t, QoS::AtLeastOnce, i % 10 == 0, pl).unwrap();
    }
    wait_acks(data.len() + 1);
    let (ok, err) = finish(child, Duration::from_secs(60));
    assert!(ok, "engine failed: {err}");
    assert!(err.contains(&format!("{} records in", data.len())), "{err}");
    assert_eq!(sorted_rows(&dir.path().join("eng.csv")), expected);
}
