//! Messages carrying many readings: JSON arrays and JSON lines are read
//! reading by reading; malformed readings inside a batch are counted and
//! dead-lettered one by one while the rest of their message counts; an
//! empty payload, an empty array and a blank payload are one malformed
//! message each; a batch over the 256 KiB limit is one malformed message,
//! dead-lettered as its first 1 KiB. The output equals the `--input` run of
//! exactly the good readings.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

mod common;
use common::*;
use rivulet_agent::seed::publish::reading_message;
use rumqttc::v5::mqttbytes::QoS;
use std::time::Duration;

#[test]
fn batched_payloads_give_exact_records_and_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let bdir = dir.path().join("broker");
    let Some(m) = Mosquitto::start(&bdir) else { return };
    // 60 messages of 50 readings from 10 sensors.
    let (mut msgs, mut read) = batched(&dataset(3_000, 10), 50, 10);
    assert_eq!(msgs.len(), 60);
    // Odd messages as JSON lines instead of an array.
    for (k, (_, pl)) in msgs.iter_mut().enumerate().filter(|(k, _)| k % 2 == 1) {
        let lines: Vec<Vec<u8>> = read[k * 50..(k + 1) * 50].iter().map(|r| reading_message(r).1).collect();
        *pl = lines.join(&b"\n"[..]);
    }
    // Message 7 (an array): readings 3 and 40 malformed, one broken JSON,
    // one without `temp_f`; the other 48 count.
    let bad_syntax = r#"{"ts_ms": 1700000000000, "temp_f": }"#;
    let bad_field = r#"{"ts_ms": 1700000000000}"#;
    let mut items: Vec<String> =
        read[350..400].iter().map(|r| String::from_utf8(reading_message(r).1).unwrap()).collect();
    items[3] = bad_syntax.to_string();
    items[40] = bad_field.to_string();
    msgs[7].1 = format!("[{}]", items.join(",")).into_bytes();
    read.remove(390);
    read.remove(353);
    // Message 8 (JSON lines): one line that is not JSON.
    let mut lines: Vec<String> =
        read[398..448].iter().map(|r| String::from_utf8(reading_message(r).1).unwrap()).collect();
    lines.insert(10, "oops".to_string());
    msgs[8].1 = lines.join("\n").into_bytes();
    let expected = oracle(dir.path(), &read);

    // A valid array over the 256 KiB limit.
    let big = {
        let mut b = b"[".to_vec();
        let r = reading_message(&read[0]).1;
        while b.len() <= 256 * 1024 {
            b.extend_from_slice(&r);
            b.push(b',');
        }
        b.extend_from_slice(&r);
        b.push(b']');
        b
    };
    let topic = msgs[0].0.clone();
    let extra: Vec<(String, Vec<u8>)> = vec![
        (topic.clone(), Vec::new()),
        (topic.clone(), b"[]".to_vec()),
        (topic.clone(), b" \n\n ".to_vec()),
        (topic.clone(), big.clone()),
    ];

    let url = m.url();
    let dead = Collector::start(m.port, "dead-reader", "dead/letters");
    let child =
        engine(&url, dir.path(), "eng", &["--stop-after-idle", "2s", "--dead-letter", "dead/letters"]).spawn().unwrap();
    wait_subscribed(&m, &bdir, &["eng"]);
    // A client of its own: no outgoing limit below the big message.
    let (client, acks) = v5_publisher(m.port, "pub-batches");
    for (k, (t, pl)) in msgs.iter().enumerate() {
        client.publish(t.clone(), QoS::AtLeastOnce, false, pl.clone()).unwrap();
        if k % 15 == 14 {
            let (t, pl) = &extra[k / 15];
            client.publish(t.clone(), QoS::AtLeastOnce, false, pl.clone()).unwrap();
        }
    }
    let until = std::time::Instant::now() + Duration::from_secs(30);
    while acks.load(std::sync::atomic::Ordering::Acquire) < msgs.len() + extra.len() {
        assert!(std::time::Instant::now() < until, "publishes unacknowledged");
        std::thread::sleep(Duration::from_millis(10));
    }
    let (ok, err) = finish(child, Duration::from_secs(60));
    assert!(ok, "engine failed: {err}");
    assert_eq!(read.len(), 2_998);
    assert!(err.contains(&format!("{} records in", read.len())), "{err}");
    // 2 in message 7, 1 in message 8, 4 whole messages.
    assert!(err.contains(" 7 malformed"), "{err}");
    assert_eq!(sorted_rows(&dir.path().join("eng.csv")), expected);

    let mut got: Vec<Vec<u8>> =
        dead.wait(7, Duration::from_secs(10)).into_iter().map(|(_, p, _)| p.into_bytes()).collect();
    got.sort();
    let mut want: Vec<Vec<u8>> = vec![
        bad_syntax.into(),
        bad_field.into(),
        b"oops".to_vec(),
        Vec::new(),
        b"[]".to_vec(),
        b" \n\n ".to_vec(),
        big[..1024].to_vec(),
    ];
    want.sort();
    assert_eq!(got, want);
}

/// `rivulet simulate --batch 50`: each message is a JSON array of one
/// sensor's next 50 readings, and every reading is published once.
#[test]
fn the_simulator_publishes_batches() {
    use rivulet_agent::seed::publish::{simulate, Simulation};
    let dir = tempfile::tempdir().unwrap();
    let Some(m) = Mosquitto::start(&dir.path().join("broker")) else { return };
    let sub = Collector::start(m.port, "batch-reader", "sensors/+/temp");
    let sim = Simulation {
        url: m.url(),
        v311: false,
        sensors: 10,
        rate: 100_000.0,
        count: Some(1_010),
        late_fraction: 0.0,
        malformed_fraction: 0.0,
        batch: 50,
    };
    let stop = std::sync::atomic::AtomicBool::new(false);
    assert_eq!(simulate(&sim, &stop).unwrap(), 1_010);
    // Two rounds of 10 full messages, then 10 readings: one per sensor.
    let got = sub.wait(30, Duration::from_secs(10));
    assert_eq!(got.len(), 30);
    let mut seqs = Vec::new();
    for (k, (topic, payload, _)) in got.iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(payload).unwrap();
        let readings: Vec<serde_json::Value> = match v {
            serde_json::Value::Array(a) => a,
            one => vec![one],
        };
        assert_eq!(readings.len(), if k < 20 { 50 } else { 1 }, "message {k}: {payload}");
        assert_eq!(topic, &format!("sensors/s{:04}/temp", k % 10));
        for r in readings {
            let seq = r["seq"].as_u64().unwrap();
            assert_eq!(seq % 10, k as u64 % 10, "reading {seq} belongs to its topic's sensor");
            seqs.push(seq);
        }
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (0..1_010).collect::<Vec<u64>>());
}
