//! The seed job on a cluster reading a real Mosquitto: a coordinator and
//! three worker slots. The worker running the MQTT source is killed (-9)
//! mid-stream and its state directory wiped before it starts again: what
//! it had acknowledged to the broker was mirrored in the checkpoint store
//! first, so the output still equals the same data read with `--input`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One run of the job on a cluster of processes reading Mosquitto.
struct Job {
    dir: PathBuf,
    url: String,
    port: u16,
    store: PathBuf,
    out: PathBuf,
    workers: u16,
    /// `--stop-after-idle`.
    idle: &'static str,
}

impl Job {
    fn new(dir: &Path, url: &str, workers: u16) -> Job {
        let store = dir.join("store");
        std::fs::create_dir_all(&store).unwrap();
        Job {
            dir: dir.to_path_buf(),
            url: url.to_owned(),
            port: free_port(),
            store,
            out: dir.join("eng.csv"),
            workers,
            idle: "3s",
        }
    }

    fn coordinator(&self, extra: &[String]) -> Child {
        let n = self.workers.to_string();
        Command::new(BIN)
            .arg("coordinator")
            .args(["--listen", &format!("127.0.0.1:{}", self.port), "--workers", &n])
            .arg("--checkpoint-store")
            .arg(format!("file://{}", self.store.display()))
            .args(["--mqtt", &self.url, "--topic", "sensors/{sensor_id}/temp", "--client-id", "eng"])
            .args(["--stop-after-idle", self.idle, "--parallelism", &n, "--checkpoint-interval", "200ms"])
            .arg("--output")
            .arg(&self.out)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn worker(&self, slot: u16) -> Child {
        Command::new(BIN)
            .arg("worker")
            .args(["--coordinator", &format!("127.0.0.1:{}", self.port), "--slot", &slot.to_string()])
            .arg("--state-dir")
            .arg(self.dir.join(format!("w{slot}")))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn wait_epoch_after(&self, before: u64) {
        let start = Instant::now();
        while latest_epoch(&self.store) <= before {
            assert!(start.elapsed() < Duration::from_secs(60), "no checkpoint after epoch {before}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for the coordinator and the workers to exit successfully.
    fn finish(&self, coordinator: Child, workers: Vec<Child>) -> String {
        let (ok, err) = finish(coordinator, Duration::from_secs(120));
        assert!(ok, "coordinator: {err}");
        for w in workers {
            let (ok, werr) = finish(w, Duration::from_secs(30));
            assert!(ok, "worker: {werr}");
        }
        err
    }
}

#[test]
fn three_workers_on_mosquitto_lose_nothing_when_the_source_worker_loses_its_disk() {
    let dir = tempfile::tempdir().unwrap();
    let broker = dir.path().join("broker");
    let Some(m) = Mosquitto::start(&broker) else { return };
    let data = dataset(20_000, 40);
    let expected = oracle(dir.path(), &data);
    let job = Job::new(dir.path(), &m.url(), 3);
    let url = job.url.clone();
    let coordinator = job.coordinator(&[]);
    let mut workers: Vec<Child> = (0..3).map(|k| job.worker(k)).collect();
    wait_subscribed(&m, &broker, &["eng"]);
    let pubr = {
        let (url, data) = (url.clone(), data.clone());
        std::thread::spawn(move || publish(&url, "pub-cluster", &data, 4000.0))
    };
    job.wait_epoch_after(0);
    std::thread::sleep(Duration::from_millis(1500));
    // Slot 0 runs the source: its disk, ingest log included, is gone.
    workers[0].kill().unwrap();
    workers[0].wait().unwrap();
    std::fs::remove_dir_all(dir.path().join("w0")).unwrap();
    workers[0] = job.worker(0);
    pubr.join().unwrap();
    job.finish(coordinator, workers);
    assert_eq!(sorted_rows(&job.out), expected);
    assert!(assert_mirror_dense(&job.store) > 0, "nothing was mirrored");
}

/// A rollback with MQTT input: a savepoint mid-stream pins the source's
/// ingest log, the job runs on for a few checkpoints and then every
/// process is killed while readings keep arriving at the broker; started
/// again with `--rollback-to`, the job replays from the savepoint's
/// position what it had received since (the broker no longer holds it)
/// and then what queued meanwhile: every result equals the oracle's over
/// all readings, and results since the savepoint are published again.
#[test]
fn a_rollback_on_mosquitto_replays_every_reading_since_the_savepoint() {
    let dir = tempfile::tempdir().unwrap();
    let broker = dir.path().join("broker");
    let Some(m) = Mosquitto::start(&broker) else { return };
    // More readings after the savepoint than the source keeps for
    // recognising redeliveries (65,536), so only the pin keeps them.
    let data = dataset(120_000, 40);
    let expected = oracle(dir.path(), &data);
    let mut job = Job::new(dir.path(), &m.url(), 2);
    // The input must not look ended while the test waits for checkpoints
    // on a loaded machine (the job would finish before the kill).
    job.idle = "10s";
    let url = job.url.clone();
    let mut procs: Vec<Child> = vec![job.coordinator(&[])];
    procs.extend((0..2).map(|k| job.worker(k)));
    wait_subscribed(&m, &broker, &["eng"]);
    let (first, rest) = data.split_at(100_000);
    let pubr = {
        let (url, first) = (url.clone(), first.to_vec());
        std::thread::spawn(move || publish(&url, "pub-rollback", &first, 20_000.0))
    };
    job.wait_epoch_after(0);
    std::thread::sleep(Duration::from_millis(1500));
    let sp = take_savepoint(job.port, dir.path());
    // Everything published, read, and checkpointed a few times over:
    // without the pin, the log would now be cut past the savepoint's
    // position.
    pubr.join().unwrap();
    std::thread::sleep(Duration::from_millis(2000));
    job.wait_epoch_after(latest_epoch(&job.store) + 4);
    for p in &mut procs {
        p.kill().unwrap();
        p.wait().unwrap();
    }
    // Readings that arrive while the job is down queue at the broker.
    publish(&url, "pub-rollback", rest, 20_000.0);
    let rollback = ["--rollback-to".to_string(), sp.display().to_string()];
    let c = job.coordinator(&rollback);
    let workers: Vec<Child> = (0..2).map(|k| job.worker(k)).collect();
    let err = job.finish(c, workers);
    assert!(err.contains("to the savepoint of epoch"), "{err}");
    let rows = sorted_rows(&job.out);
    let mut unique = rows.clone();
    unique.dedup();
    assert_eq!(unique, expected, "a result differs from the oracle's");
    assert!(rows.len() > expected.len(), "no result was published again: the state did not go back");
    assert!(assert_mirror_dense(&job.store) > 0, "nothing was mirrored");
}

/// With `--pin-savepoints 0s` a savepoint pins nothing: a rollback of the
/// MQTT job to it is refused (exit 3, naming why) and the store is left
/// as it was.
#[test]
fn a_rollback_to_an_unpinned_savepoint_of_an_mqtt_job_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let broker = dir.path().join("broker");
    let Some(m) = Mosquitto::start(&broker) else { return };
    let job = Job::new(dir.path(), &m.url(), 1);
    let unpinned = ["--pin-savepoints".to_string(), "0s".to_string()];
    let mut procs = vec![job.coordinator(&unpinned), job.worker(0)];
    wait_subscribed(&m, &broker, &["eng"]);
    publish(&job.url, "pub-unpinned", &dataset(2_000, 10), 2000.0);
    job.wait_epoch_after(0);
    let sp = take_savepoint(job.port, dir.path());
    for p in &mut procs {
        p.kill().unwrap();
        p.wait().unwrap();
    }
    let latest = latest_epoch(&job.store);
    let c = job.coordinator(&["--rollback-to".to_string(), sp.display().to_string()]);
    let out = c.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("is not pinned"), "{err}");
    assert_eq!(latest_epoch(&job.store), latest, "a refused rollback committed something");
}
