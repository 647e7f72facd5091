//! SIGKILL the engine several times while a publisher sends a data set;
//! the final output equals the `--input` run of the same data: nothing
//! lost (manual acks after the ingest log) and nothing twice (checkpointed
//! log position, duplicate filter).

mod common;
use common::*;
use std::time::Duration;

#[test]
fn kill_and_restart_matches_file_run() {
    let dir = tempfile::tempdir().unwrap();
    let Some(m) = Mosquitto::start(&dir.path().join("broker")) else { return };
    let data = dataset(20_000, 40);
    let expected = oracle(dir.path(), &data);
    let url = m.url();
    let args = ["--stop-after-idle", "3s"];
    let mut child = engine(&url, dir.path(), "eng", &args).spawn().unwrap();
    wait_subscribed(&m, &dir.path().join("broker"), &["eng"]);
    let pubr = {
        let (url, data) = (url.clone(), data.clone());
        std::thread::spawn(move || publish(&url, "pub-kill", &data, 4000.0))
    };
    for delay in [700u64, 1100, 900, 1300] {
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        child = engine(&url, dir.path(), "eng", &args).spawn().unwrap();
    }
    pubr.join().unwrap();
    let (ok, err) = finish(child, Duration::from_secs(60));
    assert!(ok, "final run failed: {err}");
    assert_eq!(sorted_rows(&dir.path().join("eng.csv")), expected);
}
