//! A payload over the engine's 256 KiB limit is malformed input: counted,
//! dead-lettered as its first 1 KiB, acknowledged (so the broker stops
//! sending it), and the readings around it go on — over MQTT 5 (where an
//! announced packet limit would make the broker drop it silently) and over
//! MQTT 3.1.1 (where a packet over the client's limit broke the connection
//! on every redelivery).
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

mod common;
use common::*;
use rivulet_agent::seed::publish::reading_message;
use rumqttc::v5::mqttbytes::QoS;
use std::time::Duration;

// Guards issue 12 §6 (MQTT 5: a 1 MiB message vanished uncounted).
#[test]
fn an_oversized_payload_is_dead_lettered_over_mqtt5() {
    oversized(&[], 1 << 20);
}

// Guards issue 12 §8 (MQTT 3.1.1: one 1.1 MB QoS 1 message made the engine
// reconnect forever and the stream stall).
#[test]
fn a_poison_message_does_not_stop_the_stream_over_mqtt311() {
    oversized(&["--mqtt-v311"], 1_100_000);
}

fn oversized(flags: &[&str], size: usize) {
    let dir = tempfile::tempdir().unwrap();
    let bdir = dir.path().join("broker");
    let Some(m) = Mosquitto::start(&bdir) else { return };
    let data = dataset(2_000, 10);
    let expected = oracle(dir.path(), &data);
    let url = m.url();
    let dead = Collector::start(m.port, "dead-reader", "dead/letters");
    let args = [&["--stop-after-idle", "2s", "--dead-letter", "dead/letters"][..], flags].concat();
    let child = engine(&url, dir.path(), "eng", &args).spawn().unwrap();
    wait_subscribed(&m, &bdir, &["eng"]);
    // A client of its own: no outgoing limit below the big message.
    let (client, acks) = v5_publisher(m.port, "pub-big");
    let big = {
        let mut b = br#"{"ts_ms":1700000000000,"temp_f":70.0,"pad":""#.to_vec();
        b.resize(size - 2, b'x');
        b.extend_from_slice(b"\"}");
        b
    };
    for (i, r) in data.iter().enumerate() {
        let (t, pl) = reading_message(r);
        client.publish(t, QoS::AtLeastOnce, false, pl).unwrap();
        if i == data.len() / 2 {
            client.publish("sensors/s0000/temp", QoS::AtLeastOnce, false, big.clone()).unwrap();
        }
    }
    let until = std::time::Instant::now() + Duration::from_secs(30);
    while acks.load(std::sync::atomic::Ordering::Acquire) < data.len() + 1 {
        assert!(std::time::Instant::now() < until, "publishes unacknowledged");
        std::thread::sleep(Duration::from_millis(10));
    }
    let (ok, err) = finish(child, Duration::from_secs(60));
    assert!(ok, "engine failed: {err}");
    assert!(err.contains(&format!("{} records in", data.len())), "{err}");
    assert!(err.contains(" 1 malformed"), "the big message is counted as malformed: {err}");
    assert!(!err.contains("mqtt connection lost"), "the big message broke the connection: {err}");
    assert_eq!(sorted_rows(&dir.path().join("eng.csv")), expected);
    let got = dead.wait(1, Duration::from_secs(10));
    assert_eq!(got.len(), 1, "one dead letter");
    assert_eq!(got[0].1.len(), 1024, "dead-lettered as its first 1 KiB");
    assert!(big.starts_with(got[0].1.as_bytes()));
}
