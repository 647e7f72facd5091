//! The seed job on a cluster reading a real Mosquitto: a coordinator and
//! three worker slots. The worker running the MQTT source is killed (-9)
//! mid-stream and its state directory wiped before it starts again: what
//! it had acknowledged to the broker was mirrored in the checkpoint store
//! first, so the output still equals the same data read with `--input`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

mod common;
use common::*;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn latest_exists(store: &Path) -> bool {
    store.join("sensor-average/latest").exists()
}

#[test]
fn three_workers_on_mosquitto_lose_nothing_when_the_source_worker_loses_its_disk() {
    let dir = tempfile::tempdir().unwrap();
    let broker = dir.path().join("broker");
    let Some(m) = Mosquitto::start(&broker) else { return };
    let data = dataset(20_000, 40);
    let expected = oracle(dir.path(), &data);
    let url = m.url();
    let port = free_port();
    let store = dir.path().join("store");
    std::fs::create_dir_all(&store).unwrap();
    let out = dir.path().join("eng.csv");
    let coordinator = Command::new(BIN)
        .arg("coordinator")
        .args(["--listen", &format!("127.0.0.1:{port}"), "--workers", "3"])
        .arg("--checkpoint-store")
        .arg(format!("file://{}", store.display()))
        .args(["--mqtt", &url, "--topic", "sensors/{sensor_id}/temp", "--client-id", "eng"])
        .args(["--stop-after-idle", "3s", "--parallelism", "3", "--checkpoint-interval", "200ms"])
        .arg("--output")
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let worker = |slot: u16| -> Child {
        Command::new(BIN)
            .arg("worker")
            .args(["--coordinator", &format!("127.0.0.1:{port}"), "--slot", &slot.to_string()])
            .arg("--state-dir")
            .arg(dir.path().join(format!("w{slot}")))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut workers: Vec<Child> = (0..3).map(worker).collect();
    wait_subscribed(&m, &broker, &["eng"]);
    let pubr = {
        let (url, data) = (url.clone(), data.clone());
        std::thread::spawn(move || publish(&url, "pub-cluster", &data, 4000.0))
    };
    let start = Instant::now();
    while !latest_exists(&store) {
        assert!(start.elapsed() < Duration::from_secs(60), "no checkpoint committed");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(1500));
    // Slot 0 runs the source: its disk, ingest log included, is gone.
    workers[0].kill().unwrap();
    workers[0].wait().unwrap();
    std::fs::remove_dir_all(dir.path().join("w0")).unwrap();
    workers[0] = worker(0);
    pubr.join().unwrap();
    let (ok, err) = finish(coordinator, Duration::from_secs(120));
    assert!(ok, "coordinator: {err}");
    for w in workers {
        let (ok, err) = finish(w, Duration::from_secs(30));
        assert!(ok, "worker: {err}");
    }
    assert_eq!(sorted_rows(&out), expected);
}
