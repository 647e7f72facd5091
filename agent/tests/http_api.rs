//! The JSON API of a running job: every endpoint against its documented
//! shape (README, "HTTP endpoint"), and `rivulet status` against a running
//! job and against none (exit 4).
#![cfg(feature = "http")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

mod support;

use serde_json::Value;
use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;
use support::http::{wait_for, Job};

const BIN: &str = env!("CARGO_BIN_EXE_rivulet");

/// `rivulet run --generated` long enough to be looked at, with checkpoints.
pub(crate) fn generated_job(dir: &std::path::Path, extra: &[&str]) -> Job {
    let mut cmd = Command::new(BIN);
    cmd.args(["run", "--generated", "--events", "100000000000", "--sensors", "20", "--checkpoint-interval", "100ms"])
        .arg("--output")
        .arg(dir.join("out.csv"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .args(extra);
    Job::start(cmd)
}

fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object().unwrap_or_else(|| panic!("not an object: {v}")).keys().map(String::as_str).collect()
}

fn set<'a>(k: &[&'a str]) -> BTreeSet<&'a str> {
    k.iter().copied().collect()
}

fn int(v: &Value) -> bool {
    v.is_u64() || v.is_i64()
}

fn int_or_null(v: &Value) -> bool {
    int(v) || v.is_null()
}

fn num_or_null(v: &Value) -> bool {
    v.is_number() || v.is_null()
}

fn json(job: &Job, path: &str) -> Value {
    let (status, body) = job.get(path);
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

fn check_job(j: &Value) {
    assert_eq!(
        keys(j),
        set(&[
            "name",
            "state",
            "started_ms",
            "uptime_seconds",
            "events",
            "rates",
            "watermark_ms",
            "watermark_lag_seconds",
            "checkpoints",
            "operators",
            "edges",
            "role",
            "cluster"
        ])
    );
    assert_eq!(j["name"], "sensor-average-demo");
    assert_eq!(j["role"], "single-process");
    assert!(j["cluster"].is_null(), "only a coordinator has a cluster: {j}");
    let edges = j["edges"].as_array().unwrap();
    for e in edges {
        assert_eq!(keys(e), set(&["from", "to"]));
    }
    assert!(edges.iter().any(|e| e["from"] == "source-1" && e["to"].as_str().unwrap().starts_with("window-")), "{j}");
    assert!(edges.iter().any(|e| e["to"].as_str().unwrap().starts_with("sink-")), "{j}");
    assert!(["running", "finished", "failed"].contains(&j["state"].as_str().unwrap()));
    assert!(int(&j["started_ms"]) && j["uptime_seconds"].is_number());
    assert_eq!(keys(&j["events"]), set(&["in", "out", "late", "malformed"]));
    assert!(j["events"].as_object().unwrap().values().all(int));
    assert_eq!(keys(&j["rates"]), set(&["in_per_second", "out_per_second"]));
    assert!(j["rates"].as_object().unwrap().values().all(Value::is_number));
    assert!(int_or_null(&j["watermark_ms"]) && num_or_null(&j["watermark_lag_seconds"]));
    assert_eq!(keys(&j["checkpoints"]), set(&["completed", "failed", "last_complete_ms"]));
    assert!(int(&j["checkpoints"]["completed"]) && int(&j["checkpoints"]["failed"]));
    assert!(int_or_null(&j["checkpoints"]["last_complete_ms"]));
    let ops = j["operators"].as_array().unwrap();
    for o in ops {
        assert_eq!(
            keys(o),
            set(&[
                "operator",
                "subtask",
                "task",
                "records_in",
                "records_out",
                "in_per_second",
                "out_per_second",
                "watermark_ms",
                "watermark_lag_seconds",
                "state_cache_bytes",
                "state_cache_hits",
                "state_cache_misses",
                "state_cache_hit_ratio",
                "spilled_entries",
                "backpressure_seconds",
                "backpressure_ratio",
                "slot",
                "mqtt"
            ])
        );
        assert!(o["slot"].is_null(), "a single process has no slots: {o}");
        assert!(o["backpressure_seconds"].is_number() && o["backpressure_ratio"].is_number(), "{o}");
        assert!(num_or_null(&o["state_cache_hit_ratio"]), "{o}");
        assert!(o["operator"].is_string() && o["task"].is_string() && int(&o["subtask"]));
        for k in [
            "records_in",
            "records_out",
            "state_cache_bytes",
            "spilled_entries",
            "state_cache_hits",
            "state_cache_misses",
        ] {
            assert!(int(&o[k]), "{k}: {o}");
        }
        assert!(o["in_per_second"].is_number() && o["out_per_second"].is_number());
        assert!(int_or_null(&o["watermark_ms"]) && num_or_null(&o["watermark_lag_seconds"]));
        assert!(o["mqtt"].is_null(), "a generated source has no broker: {o}");
    }
    // source → window ×2 (rivulet run's parallelism) → sink, in data-flow order.
    let names: Vec<&str> = ops.iter().map(|o| o["operator"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 4, "{names:?}");
    assert!(names[0].starts_with("source-") && names[3].starts_with("sink-"), "{names:?}");
    assert!(names[1].starts_with("window-") && names[1] == names[2], "{names:?}");
}

#[test]
fn every_endpoint_has_its_documented_shape() {
    let dir = tempfile::tempdir().unwrap();
    let job = generated_job(dir.path(), &["--http", "127.0.0.1:0"]);
    // Wait for results, a completed checkpoint and a rate sample.
    let j = wait_for("results and a checkpoint", Duration::from_secs(120), || {
        let j = json(&job, "/api/v1/job");
        let ready = j["events"]["out"].as_u64()? > 0
            && j["checkpoints"]["completed"].as_u64()? > 0
            && j["rates"]["in_per_second"].as_f64()? > 0.0;
        ready.then_some(j)
    });
    check_job(&j);
    assert_eq!(j["state"], "running");

    let c = json(&job, "/api/v1/checkpoints");
    assert_eq!(
        keys(&c),
        set(&["completed", "failed", "duration_seconds_total", "bytes_total", "last_complete_ms", "history"])
    );
    let history = c["history"].as_array().unwrap();
    assert!(!history.is_empty());
    for h in history {
        assert_eq!(keys(h), set(&["epoch", "status", "triggered_ms", "duration_seconds", "entries", "bytes"]));
        assert!(["in_progress", "complete", "failed"].contains(&h["status"].as_str().unwrap()));
        assert!(int(&h["epoch"]) && int(&h["triggered_ms"]) && int(&h["entries"]) && int(&h["bytes"]));
        assert!(num_or_null(&h["duration_seconds"]));
    }
    assert!(history.iter().any(|h| h["status"] == "complete" && h["duration_seconds"].is_number()));

    let r = json(&job, "/api/v1/results");
    assert_eq!(keys(&r), set(&["columns", "capacity", "seen", "rows"]));
    assert_eq!(r["columns"], serde_json::json!(["sensor_id", "window_end_ms", "avg_c", "count"]));
    let rows = r["rows"].as_array().unwrap();
    assert!(!rows.is_empty() && rows.len() as u64 <= r["capacity"].as_u64().unwrap());
    for row in rows {
        assert_eq!(keys(row), set(&["sensor_id", "window_end_ms", "avg_c", "count"]));
        assert!(row["sensor_id"].is_string() && int(&row["window_end_ms"]) && int(&row["count"]));
        assert!(row["avg_c"].is_number());
    }

    let n = json(&job, "/api/v1/nodes");
    assert_eq!(keys(&n), set(&["nodes"]));
    let nodes = n["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1);
    assert_eq!(
        keys(&nodes[0]),
        set(&[
            "id",
            "host",
            "pid",
            "role",
            "state",
            "started_ms",
            "uptime_seconds",
            "rss_bytes",
            "cpu_seconds",
            "tasks"
        ])
    );
    assert_eq!(nodes[0]["pid"].as_u64(), Some(u64::from(job.child.id())));
    assert_eq!(nodes[0]["tasks"].as_u64(), Some(4));

    let (status, body) = job.get("/nope");
    assert_eq!(status, 404, "{body}");

    // `rivulet status` reads the same job.
    let out = Command::new(BIN).args(["status", "--http", &job.addr.to_string()]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with("job sensor-average-demo: running, up "), "{stdout}");
    assert!(stdout.contains("events: ") && stdout.contains("checkpoints: "), "{stdout}");
    assert!(stdout.contains("source-1") && stdout.contains("window-"), "{stdout}");
    let out = Command::new(BIN).args(["status", "--json", "--http", &job.addr.to_string()]).output().unwrap();
    check_job(&serde_json::from_slice(&out.stdout).unwrap());
}

#[test]
fn status_without_a_job_says_so_and_exits_4() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let out = Command::new(BIN).args(["status", "--http", &addr]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains(&format!("no job is serving at {addr}")), "{stderr}");
    assert!(out.stdout.is_empty());
}
