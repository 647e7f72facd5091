//! An SQL job on a cluster: `rivulet sql coordinator` and two
//! `rivulet sql worker` slots on 127.0.0.1 run the seed job written in SQL
//! (the workers get its text from the coordinator), one worker is killed
//! with `kill -9` after the first results and started again, and the rows
//! equal those of `rivulet sql` in one process. The same for a window
//! Top-N, whose ranking state lives on the workers.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

mod sql;

use sql::{seed_job, sorted_rows, top_n_job};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_rivulet");

struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn a_sql_job_on_two_workers_survives_a_kill_and_equals_one_process() {
    two_workers_and_a_kill(1000, |i, o| seed_job(i, o, "'2' SECOND"));
}

#[test]
fn a_top_n_on_two_workers_survives_a_kill_and_equals_one_process() {
    two_workers_and_a_kill(60, top_n_job);
}

/// Runs the job `make(input, output)` in one process (at least `min_rows`
/// rows) and on a coordinator with two workers, one of them killed with
/// `kill -9` after the first committed results and started again: the
/// rows are equal.
fn two_workers_and_a_kill(min_rows: usize, make: impl Fn(&Path, &Path) -> String) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    rivulet_agent::dataset::write_csv(std::fs::File::create(&input).unwrap(), 2_000_000, 200).unwrap();

    // One process.
    let single_out = dir.path().join("single.csv");
    let single_sql = dir.path().join("single.sql");
    std::fs::write(&single_sql, make(&input, &single_out)).unwrap();
    let out = Command::new(BIN).args(["sql", "-f"]).arg(&single_sql).args(["--parallelism", "2"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let want = sorted_rows(&single_out);
    assert!(want.len() >= min_rows, "too few rows: {}", want.len());

    // The cluster.
    let out_path = dir.path().join("cluster.csv");
    let job = dir.path().join("cluster.sql");
    std::fs::write(&job, make(&input, &out_path)).unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir_all(&store).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let coord = Command::new(BIN)
        .args(["sql", "coordinator", "--listen", &listen, "--workers", "2", "--worker-timeout", "10m"])
        .arg("--checkpoint-store")
        .arg(format!("file://{}", store.display()))
        .arg("-f")
        .arg(&job)
        .args(["--parallelism", "2", "--checkpoint-interval", "100ms"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let worker = |slot: u16| {
        Command::new(BIN)
            .args(["sql", "worker", "--coordinator", &listen, "--slot", &slot.to_string()])
            .arg("--state-dir")
            .arg(dir.path().join(format!("w{slot}")))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut procs = Procs(vec![worker(0), worker(1)]);

    // Kill worker 1 once results were committed, then start it again.
    let started = Instant::now();
    while std::fs::metadata(&out_path).map_or(0, |m| m.len()) == 0 {
        assert!(started.elapsed() < Duration::from_secs(120), "no results committed in time");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut gone = procs.0.remove(1);
    gone.kill().unwrap();
    gone.wait().unwrap();
    procs.0.push(worker(1));

    let mut coord = coord;
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(st) = coord.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "the coordinator did not finish");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(coord.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(status.success(), "coordinator: {err}");
    assert!(err.contains("generation(s)"), "{err}");
    assert!(!err.contains("in 1 generation(s)"), "the kill did not start a new generation: {err}");
    assert_eq!(sorted_rows(&out_path), want, "the cluster's rows differ from one process's");
}
