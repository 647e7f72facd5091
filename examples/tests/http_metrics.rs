//! `/metrics` of a running `sensor-average`: valid per `promtool check
//! metrics` (Debian's `prometheus` package), and once the job has ended
//! (served during `--http-linger`) its counters equal the job's own summary.
#![cfg(feature = "http")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

#[path = "../../agent/tests/support/http.rs"]
mod http;

use http::{promtool_check, sample, wait_for, Job};
use std::io::Write;
use std::process::Command;
use std::time::Duration;

#[test]
fn metrics_are_valid_and_match_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    rivulet_agent::dataset::write_csv(std::fs::File::create(&input).unwrap(), 200_000, 50).unwrap();
    // A few malformed lines, so that counter is not zero.
    let mut f = std::fs::OpenOptions::new().append(true).open(&input).unwrap();
    f.write_all(b"not,a,reading\ns1,12,\n").unwrap();
    drop(f);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sensor-average"));
    cmd.arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(dir.path().join("out.csv"))
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .args(["--checkpoint-interval", "50ms", "--http", "127.0.0.1:0", "--http-linger", "10m"]);
    let mut job = Job::start(cmd);

    // While it runs (or already ended: the exposition is the same shape).
    let (status, text) = job.get("/metrics");
    assert_eq!(status, 200);
    promtool_check(&text);

    wait_for("the job to finish", Duration::from_secs(120), || {
        job.get("/api/v1/job").1.contains("\"state\":\"finished\"").then_some(())
    });
    let (_, text) = job.get("/metrics");
    promtool_check(&text);
    for name in [
        "rivulet_records_in_total{operator=\"source-1\",subtask=\"0\"}",
        "rivulet_state_cache_bytes{",
        "rivulet_watermark_lag_seconds{",
        "rivulet_checkpoint_duration_seconds_total",
        "rivulet_checkpoint_last_complete_age_seconds",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
    ] {
        assert!(text.contains(name), "`{name}` missing from:\n{text}");
    }
    let status = job.terminate();
    assert!(status.success(), "a signal during the linger keeps the job's exit code 0: {status:?}");
    let stderr = job.stderr();
    // sensor-average: N records in, M rows out, L late, B malformed, C checkpoints in ...
    let line =
        stderr.lines().find(|l| l.contains(" records in, ")).unwrap_or_else(|| panic!("no summary in:\n{stderr}"));
    let nums: Vec<f64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .take(5)
        .map(|s| s.parse().unwrap())
        .collect();
    let got = |n: &str| sample(&text, n).unwrap_or_else(|| panic!("no sample {n} in:\n{text}"));
    assert_eq!(got("rivulet_job_records_in_total"), nums[0], "{line}");
    assert_eq!(got("rivulet_job_records_out_total"), nums[1], "{line}");
    assert_eq!(got("rivulet_late_records_total"), nums[2], "{line}");
    assert_eq!(got("rivulet_malformed_records_total"), nums[3], "{line}");
    assert_eq!(got("rivulet_checkpoints_total"), nums[4], "{line}");
    assert_eq!(nums[0], 200_000.0);
    assert_eq!(nums[3], 2.0);
    assert!(nums[4] >= 1.0, "{line}");
    // The per-operator counters add up to the job's.
    let per_task = |prefix: &str| -> f64 {
        text.lines().filter(|l| l.starts_with(prefix)).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
    };
    assert_eq!(per_task("rivulet_records_in_total{operator=\"source-"), nums[0]);
    assert_eq!(per_task("rivulet_records_in_total{operator=\"sink-"), nums[1]);
}
