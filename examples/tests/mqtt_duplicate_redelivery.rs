//! Repeated content is data, a repeated publisher id is a redelivery.
//! A sensor that reports the same payload several times in a row has every
//! reading counted (the output equals the `--input` run of the same lines);
//! a message carrying a `rivulet-msg-id` seen before counts once.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

mod common;
use common::*;
use rivulet_agent::seed::publish::reading_message;
use rumqttc::v5::mqttbytes::{v5::PublishProperties, QoS};
use std::time::Duration;

// Guards issue 12 §2: deduplication by topic and payload dropped genuine
// repeated readings (stuck or coarse sensors).
#[test]
fn a_sensor_repeating_its_payload_has_every_reading_counted() {
    let dir = tempfile::tempdir().unwrap();
    let bdir = dir.path().join("broker");
    let Some(m) = Mosquitto::start(&bdir) else { return };
    // Every 10th reading is sent three more times, identical: four lines.
    let mut data = Vec::new();
    for (i, r) in dataset(3_000, 10).into_iter().enumerate() {
        let n = if i % 10 == 0 { 4 } else { 1 };
        data.extend(std::iter::repeat_n(r, n));
    }
    assert!(repeated_lines(&data) >= 900, "the data set repeats lines");
    let expected = oracle(dir.path(), &data);
    let url = m.url();
    let child = engine(&url, dir.path(), "eng", &["--stop-after-idle", "2s"]).spawn().unwrap();
    wait_subscribed(&m, &bdir, &["eng"]);
    publish(&url, "pub-repeat", &data, 20_000.0);
    let (ok, err) = finish(child, Duration::from_secs(60));
    assert!(ok, "engine failed: {err}");
    assert!(err.contains(&format!("{} records in", data.len())), "every reading counted: {err}");
    assert_eq!(sorted_rows(&dir.path().join("eng.csv")), expected);
}

// Guards the other half of issue 12 §2: what the publisher marks as the same
// message (its `rivulet-msg-id`) is still dropped, whatever the packet.
#[test]
fn a_repeated_publisher_message_id_counts_once() {
    let dir = tempfile::tempdir().unwrap();
    let bdir = dir.path().join("broker");
    let Some(m) = Mosquitto::start(&bdir) else { return };
    let data = dataset(2_000, 10);
    let expected = oracle(dir.path(), &data);
    let url = m.url();
    let child = engine(&url, dir.path(), "eng", &["--stop-after-idle", "2s"]).spawn().unwrap();
    wait_subscribed(&m, &bdir, &["eng"]);
    let (client, acks) = v5_publisher(m.port, "pub-ids");
    let mut sent = 0;
    let send = |i: usize, sent: &mut usize| {
        let (t, pl) = reading_message(&data[i]);
        let props = PublishProperties {
            user_properties: vec![("rivulet-msg-id".into(), format!("p:{i}"))],
            ..Default::default()
        };
        client.publish_with_properties(t, QoS::AtLeastOnce, false, pl, props).unwrap();
        *sent += 1;
    };
    for i in 0..data.len() {
        send(i, &mut sent);
        if i % 7 == 0 {
            send(i, &mut sent); // the same message id again, at once
        }
        if i >= 10 && i % 11 == 0 {
            send(i - 10, &mut sent); // and 10 messages later
        }
    }
    let until = std::time::Instant::now() + Duration::from_secs(30);
    while acks.load(std::sync::atomic::Ordering::Acquire) < sent {
        assert!(std::time::Instant::now() < until, "publishes unacknowledged");
        std::thread::sleep(Duration::from_millis(10));
    }
    let (ok, err) = finish(child, Duration::from_secs(60));
    assert!(ok, "engine failed: {err}");
    assert!(err.contains(&format!("{} records in", data.len())), "{err}");
    assert_eq!(sorted_rows(&dir.path().join("eng.csv")), expected);
}
