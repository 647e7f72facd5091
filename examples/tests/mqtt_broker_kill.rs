//! Mosquitto is SIGKILLed (no save on the way out) four times while readings
//! flow, with the persistence settings of examples/mosquitto.conf. The
//! engine must get what a plain persistent QoS 1 subscriber of the same
//! stream got, but for what the broker itself loses in a kill (its
//! autosave window): when the counts are equal, an output equal to the
//! `--input` run of the readings that subscriber received.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

mod common;
use common::*;
use rivulet_agent::seed::publish::reading_message;
use rumqttc::v5::mqttbytes::v5::{Packet, PublishProperties};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{Client, Event, MqttOptions};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A persistent-session client (MQTT 5) that keeps polling through broker
/// restarts; returns it and the thread's PUBACK count.
fn persistent(port: u16, id: &str, got: Option<Arc<Mutex<BTreeSet<usize>>>>) -> (Client, Arc<AtomicUsize>) {
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_clean_start(false).set_session_expiry_interval(Some(3600)).set_outgoing_inflight_upper_limit(1000);
    let (client, mut conn) = Client::new(o, 10_000);
    let acks = Arc::new(AtomicUsize::new(0));
    let a = acks.clone();
    std::thread::spawn(move || loop {
        match conn.recv() {
            Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => {
                a.fetch_add(1, Ordering::AcqRel);
            }
            Ok(Ok(Event::Incoming(Packet::Publish(p)))) => {
                let id = p.properties.as_ref().and_then(|pr| {
                    pr.user_properties.iter().find(|(k, _)| k == "rivulet-msg-id").and_then(|(_, v)| v.parse().ok())
                });
                if let (Some(g), Some(id)) = (&got, id) {
                    g.lock().unwrap().insert(id);
                }
            }
            Ok(Ok(_)) => {}
            Ok(Err(_)) => std::thread::sleep(Duration::from_millis(50)),
            Err(_) => break,
        }
    });
    (client, acks)
}

// Guards issue 12 §7: after each broker restart the engine stayed offline
// for seconds (backoff doubling to 5 s) and got 39,484 of the 59,995
// readings a plain subscriber got.
#[test]
fn broker_sigkills_lose_only_what_the_broker_lost() {
    let dir = tempfile::tempdir().unwrap();
    let bdir = dir.path().join("broker");
    let Some(mut m) = Mosquitto::start(&bdir) else { return };
    let data = dataset(20_000, 40);
    let url = m.url();
    let got = Arc::new(Mutex::new(BTreeSet::new()));
    let (sub, _) = persistent(m.port, "plain-sub", Some(got.clone()));
    sub.subscribe("sensors/+/temp", QoS::AtLeastOnce).unwrap();
    let child = engine(&url, dir.path(), "eng", &["--stop-after-idle", "4s"]).spawn().unwrap();
    wait_subscribed(&m, &bdir, &["eng", "plain-sub"]);
    let pubr = {
        let (port, data) = (m.port, data.clone());
        std::thread::spawn(move || {
            let (p, acks) = persistent(port, "pub-kill9", None);
            let t0 = Instant::now();
            for (i, r) in data.iter().enumerate() {
                while t0.elapsed().as_secs_f64() * 4000.0 < i as f64 {
                    std::thread::sleep(Duration::from_millis(1));
                }
                let (t, pl) = reading_message(r);
                let props = PublishProperties {
                    user_properties: vec![("rivulet-msg-id".into(), i.to_string())],
                    ..Default::default()
                };
                p.publish_with_properties(t, QoS::AtLeastOnce, false, pl, props).unwrap();
                // Acks awaited every 500 messages keep resends after a
                // reconnect in the data set's order (see common::publish).
                if (i + 1) % 500 == 0 || i + 1 == data.len() {
                    let until = Instant::now() + Duration::from_secs(60);
                    while acks.load(Ordering::Acquire) <= i {
                        assert!(Instant::now() < until, "publishes unacknowledged");
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
            }
        })
    };
    for delay in [900u64, 1100, 700, 1300] {
        std::thread::sleep(Duration::from_millis(delay));
        m.kill_and_restart();
    }
    pubr.join().unwrap();
    let (ok, err) = finish(child, Duration::from_secs(90));
    assert!(ok, "engine failed: {err}");
    let got = got.lock().unwrap().clone();
    eprintln!("the plain subscriber got {} of {} readings", got.len(), data.len());
    assert!(!got.is_empty());
    // Both lose only what the broker acknowledged to the publisher and lost
    // in a kill before sending it on: with autosave every 100 changes
    // (examples/mosquitto.conf), what was still queued for a client since
    // the last save. The engine acks only after an fsync, so more waits
    // for it than for the plain subscriber: a kill can leave it a few
    // readings behind (seen: 1 of 20,000) or one ahead, never more than
    // the 100 changes per kill behind. Before issue 12 §7 it was 10,000s.
    let records_in: usize = err
        .split_whitespace()
        .zip(err.split_whitespace().skip(1))
        .find_map(|(n, w)| (w == "records").then(|| n.parse().ok()).flatten())
        .unwrap_or_else(|| panic!("no record count: {err}"));
    assert!(
        records_in + 4 * 100 >= got.len(),
        "the engine got {records_in} readings, the plain subscriber {}: more than 4 kills' autosave windows behind",
        got.len()
    );
    if records_in == got.len() {
        let received: Vec<_> = got.iter().map(|&i| data[i].clone()).collect();
        let expected = oracle(dir.path(), &received);
        assert_eq!(sorted_rows(&dir.path().join("eng.csv")), expected, "the engine got what the subscriber got");
    }
}
