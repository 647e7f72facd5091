//! The cluster's view over HTTP: a coordinator and two worker slots of
//! `sensor-average` on 127.0.0.1. The coordinator's `--http` lists both
//! workers (slot, address, heartbeat, generation) and every subtask with
//! the slot it runs on; its `/metrics` passes `promtool check metrics`, as
//! does a worker's own; `rivulet status --url` prints workers alive and the
//! last complete checkpoint. A worker serving on every interface needs a
//! token (refused without one; its requests need it). A worker killed with
//! `kill -9` shows as down (API, metrics, status, the page in headless
//! Chromium, a phone-sized screenshot kept in the target directory) until
//! it is started again and the job finishes; the job's totals never step
//! back.
#![cfg(feature = "http")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

#[path = "../../agent/tests/support/http.rs"]
mod http;

use http::{dump_dom, get, phone_screenshot, promtool_check, sample, wait_for, Job};
use serde_json::Value;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_sensor-average");
const LIMIT: Duration = Duration::from_secs(180);

/// The `rivulet` binary, built beside this package's binaries by the
/// workspace.
fn rivulet() -> std::path::PathBuf {
    let p = std::path::Path::new(BIN).with_file_name(format!("rivulet{}", std::env::consts::EXE_SUFFIX));
    assert!(p.exists(), "{} is missing: build it first (`cargo build -p rivulet-agent`)", p.display());
    p
}

fn status(addr: SocketAddr) -> (i32, String) {
    let out = Command::new(rivulet()).args(["status", "--url", &format!("http://{addr}/")]).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

fn json(addr: SocketAddr, path: &str) -> Value {
    let (code, body) = get(addr, path, None);
    assert_eq!(code, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path} is not JSON ({e}): {body}"))
}

/// The worker nodes of `/api/v1/nodes`, by slot.
fn workers(addr: SocketAddr) -> Vec<Value> {
    let nodes = json(addr, "/api/v1/nodes");
    let mut w: Vec<Value> =
        nodes["nodes"].as_array().unwrap().iter().filter(|n| n["role"] == "worker").cloned().collect();
    w.sort_by_key(|n| n["slot"].as_u64());
    w
}

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
fn the_coordinator_serves_the_whole_job() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    rivulet_agent::dataset::write_csv(std::fs::File::create(&input).unwrap(), 3_000_000, 100).unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir_all(&store).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let mut cmd = Command::new(BIN);
    cmd.arg("coordinator")
        .args(["--listen", &listen, "--workers", "2", "--worker-timeout", "10m"])
        .arg("--checkpoint-store")
        .arg(format!("file://{}", store.display()))
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(dir.path().join("out.csv"))
        .args(["--parallelism", "2", "--checkpoint-interval", "100ms"])
        .args(["--http", "127.0.0.1:0", "--http-linger", "10m"]);
    let coord = Job::start(cmd);
    let addr = coord.addr;
    let token = dir.path().join("http-token");
    std::fs::write(&token, "w-token-27\n").unwrap();
    let worker_cmd = |slot: u16, http: &[&str]| {
        let mut c = Command::new(BIN);
        c.arg("worker").args(["--coordinator", &listen, "--slot", &slot.to_string()]);
        c.arg("--state-dir").arg(dir.path().join(format!("w{slot}")));
        c.args(http).env_remove("RIVULET_HTTP_TOKEN");
        c
    };
    let worker =
        |slot: u16, http: &[&str]| worker_cmd(slot, http).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    // A worker serving on every interface needs a token: refused before it
    // joins.
    let out = worker_cmd(1, &["--http", "0.0.0.0:0"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--http-token"), "{stderr}");
    let public = ["--http", "0.0.0.0:0", "--http-token", token.to_str().unwrap()];
    let mut procs = Procs(vec![worker(0, &["--http", "127.0.0.1:0"]), worker(1, &public)]);

    // Both workers up, deployed, and reporting their tasks.
    let w = wait_for("both workers to report", LIMIT, || {
        let w = workers(addr);
        let ready = w.len() == 2
            && w.iter().all(|n| n["state"] == "up" && n["generation"].as_u64() >= Some(1) && n["tasks"].is_array());
        ready.then_some(w)
    });
    for (slot, n) in w.iter().enumerate() {
        assert_eq!(n["slot"], slot as u64, "{n}");
        assert!(n["address"].as_str().is_some_and(|a| a.starts_with("127.0.0.1:")), "{n}");
        assert!(n["last_heartbeat_age_seconds"].as_f64().is_some_and(|a| a < 30.0), "{n}");
        assert!(n["rss_bytes"].as_u64().is_some_and(|b| b > 0), "{n}");
    }
    let job = json(addr, "/api/v1/job");
    assert_eq!(job["role"], "coordinator", "{job}");
    assert_eq!(job["state"], "running", "the job ended before the test could look at it: {job}");
    assert_eq!(job["cluster"]["workers_alive"], 2, "{job}");
    let ops = job["operators"].as_array().unwrap();
    let slots: std::collections::BTreeSet<u64> = ops.iter().filter_map(|o| o["slot"].as_u64()).collect();
    assert_eq!(slots.into_iter().collect::<Vec<_>>(), [0, 1], "subtasks on both workers: {job}");
    let windows = ops.iter().filter(|o| o["operator"] == "window-3").count();
    assert_eq!(windows, 2, "both window subtasks listed once: {job}");
    for key in ["backpressure_seconds", "state_cache_hits", "state_cache_misses"] {
        assert!(ops.iter().all(|o| o[key].is_number()), "{key} missing: {job}");
    }
    let edges = job["edges"].as_array().unwrap();
    assert!(edges.iter().any(|e| e["from"] == "source-1" && e["to"] == "window-3"), "{job}");
    assert!(edges.iter().any(|e| e["from"] == "window-3" && e["to"] == "sink-4"), "{job}");

    // The coordinator's metrics and a worker's own.
    let (_, text) = coord.get("/metrics");
    promtool_check(&text);
    for name in [
        "rivulet_worker_up{slot=\"0\"} 1",
        "rivulet_worker_up{slot=\"1\"} 1",
        "rivulet_backpressure_seconds_total{operator=\"source-1\",subtask=\"0\",slot=\"0\"}",
        "rivulet_records_in_total{operator=\"window-3\",subtask=\"1\",slot=\"1\"}",
        "rivulet_state_cache_hits_total{",
        "rivulet_worker_state_disk_bytes{slot=\"1\"}",
    ] {
        assert!(text.contains(name), "`{name}` missing from:\n{text}");
    }
    assert_eq!(sample(&text, "rivulet_workers_alive"), Some(2.0));
    let whttp = w[0]["http"].as_str().expect("worker 0 tells the coordinator where it serves").to_string();
    let waddr: SocketAddr = whttp.trim_start_matches("http://").trim_end_matches('/').parse().unwrap();
    let (code, wtext) = get(waddr, "/metrics", None);
    assert_eq!(code, 200);
    promtool_check(&wtext);
    assert!(wtext.contains("rivulet_state_disk_bytes "), "a worker's state on disk:\n{wtext}");
    assert!(wtext.contains("rivulet_records_in_total{operator=\"source-1\",subtask=\"0\",slot=\"0\"}"), "{wtext}");
    // Worker 1 serves on every interface behind its token; the coordinator
    // lists it at the address its control link comes from.
    let whttp = w[1]["http"].as_str().expect("worker 1 tells the coordinator where it serves").to_string();
    assert!(whttp.starts_with("http://127.0.0.1:"), "{whttp}");
    let waddr: SocketAddr = whttp.trim_start_matches("http://").trim_end_matches('/').parse().unwrap();
    assert_eq!(get(waddr, "/metrics", None).0, 401, "a public worker endpoint without the token");
    assert_eq!(get(waddr, "/metrics", Some("w-token-26")).0, 401, "with another token");
    let (code, wtext) = get(waddr, "/metrics", Some("w-token-27"));
    assert_eq!(code, 200, "{wtext}");
    promtool_check(&wtext);

    wait_for("a complete checkpoint", LIMIT, || (json(addr, "/api/v1/checkpoints")["completed"] != 0).then_some(()));
    let (code, text) = status(addr);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("workers: 2 of 2 alive"), "{text}");
    assert!(text.contains("last complete "), "{text}");
    assert!(text.contains("/s)"), "events per second: {text}");

    // A worker killed shows as down; the coordinator waits for it.
    let running = json(addr, "/api/v1/job");
    assert_eq!(running["state"], "running", "the job ended before the kill: {running}");
    let (_, text) = coord.get("/metrics");
    let before = sample(&text, "rivulet_job_records_in_total").unwrap();
    let mut gone = procs.0.remove(1);
    gone.kill().unwrap();
    gone.wait().unwrap();
    let down = wait_for("worker 1 to show as down", LIMIT, || {
        let w = workers(addr);
        (w.len() == 2 && w[1]["state"] == "down" && w[0]["state"] == "up").then_some(w)
    });
    assert!(down[1]["lost_ms"].as_i64().is_some(), "{}", down[1]);
    let (_, text) = coord.get("/metrics");
    promtool_check(&text);
    assert!(text.contains("rivulet_worker_up{slot=\"1\"} 0"), "{text}");
    assert_eq!(sample(&text, "rivulet_workers_alive"), Some(1.0));
    let (code, text) = status(addr);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("workers: 1 of 2 alive"), "{text}");
    // The page: both workers, one down; the graph with each subtask.
    let dom = dump_dom(&format!("http://{addr}/"), &dir.path().join("profile"));
    assert!(dom.contains("data-slot=\"0\" data-state=\"up\""), "worker 0 up on the page:\n{dom}");
    assert!(dom.contains("data-slot=\"1\" data-state=\"down\""), "worker 1 down on the page:\n{dom}");
    assert!(dom.contains("Workers (1 of 2 up)"), "{dom}");
    assert!(dom.contains("data-operator=\"window-3\""), "{dom}");
    assert!(dom.contains("data-to=\"window-3\""), "the source's edge to the window:\n{dom}");
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("rivulet-cluster-page.png");
    phone_screenshot(&format!("http://{addr}/"), &dir.path().join("profile"), &shot);

    // Back again: a new generation, and the job runs to its end.
    procs.0.push(worker(1, &[]));
    let done = wait_for("the job to finish", LIMIT, || {
        let j = json(addr, "/api/v1/job");
        (j["state"] == "finished").then_some(j)
    });
    assert!(done["cluster"]["generation"].as_u64() >= Some(2), "a recovery bumps the generation: {done}");
    // The job's totals add the restarted worker's counts to its earlier
    // process's: they never step back.
    let (_, text) = coord.get("/metrics");
    let after = sample(&text, "rivulet_job_records_in_total").unwrap();
    assert!(after >= before, "rivulet_job_records_in_total stepped back from {before} to {after}");
    let results = json(addr, "/api/v1/results");
    assert!(!results["rows"].as_array().unwrap().is_empty(), "the coordinator taps what it publishes: {results}");
    let history = json(addr, "/api/v1/checkpoints");
    assert!(history["bytes_total"].as_u64() > Some(0), "checkpoint bytes: {history}");
}
