//! The MQTT metrics of a running `sensor-average --mqtt` (a real
//! Mosquitto): connected while subscribed, dead letters and redeliveries
//! counted, and the exposition valid per `promtool check metrics`.
#![cfg(feature = "http")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

mod common;
#[path = "../../agent/tests/support/http.rs"]
mod http;

use common::*;
use http::{wait_for, Job};
use rivulet_agent::seed::publish::{reading_message, Publisher};
use std::time::Duration;

/// The value of the sample of `name` (any labels) in Prometheus text.
fn labelled(text: &str, name: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(&format!("{name}{{")))?.rsplit(' ').next()?.parse().ok()
}

#[test]
fn mqtt_source_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let bdir = dir.path().join("broker");
    let Some(m) = Mosquitto::start(&bdir) else { return };
    let url = m.url();
    let data = dataset(2_000, 10);
    let cmd = engine(
        &url,
        dir.path(),
        "eng",
        &["--stop-after-idle", "3s", "--dead-letter", "dead/letters", "--http", "127.0.0.1:0", "--http-linger", "10m"],
    );
    let mut job = Job::start(cmd);
    wait_subscribed(&m, &bdir, &["eng"]);
    wait_for("rivulet_mqtt_connected 1", Duration::from_secs(30), || {
        (labelled(&job.get("/metrics").1, "rivulet_mqtt_connected") == Some(1.0)).then_some(())
    });
    let mut p = Publisher::connect(&url, "pub", false).unwrap();
    for (i, r) in data.iter().enumerate() {
        let (t, pl) = reading_message(r);
        p.send(&t, pl).unwrap();
        if i % 100 == 0 {
            p.send("sensors/s0000/temp", format!("not json {i}").into_bytes()).unwrap();
        }
    }
    p.wait_acked(Duration::from_secs(30)).unwrap();
    wait_for("the job to finish", Duration::from_secs(120), || {
        job.get("/api/v1/job").1.contains("\"state\":\"finished\"").then_some(())
    });
    let (_, text) = job.get("/metrics");
    let n_bad = data.len().div_ceil(100) as f64;
    assert_eq!(labelled(&text, "rivulet_mqtt_dead_letters_total"), Some(n_bad), "{text}");
    assert_eq!(labelled(&text, "rivulet_mqtt_redeliveries_total"), Some(0.0), "{text}");
    assert_eq!(labelled(&text, "rivulet_mqtt_reconnects_total"), Some(0.0), "{text}");
    assert!(labelled(&text, "rivulet_mqtt_inflight_messages").is_some(), "{text}");
    assert_eq!(http::sample(&text, "rivulet_malformed_records_total"), Some(n_bad), "{text}");
    assert_eq!(http::sample(&text, "rivulet_job_records_in_total"), Some(data.len() as f64), "{text}");
    let out = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("promtool is not installed ({e}): `apt-get install -y prometheus`"))
        .unwrap();
    let mut out = out;
    std::io::Write::write_all(&mut out.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let out = out.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(job.terminate().success());
}
