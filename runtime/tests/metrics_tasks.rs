//! Per-task counters: what each task reports adds up to the job's totals,
//! for time and count windows, and the results tap keeps the rows the sink
//! received.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

use rivulet::aggregate::Count;
use rivulet::source::Generator;
use rivulet::window::Tumbling;
use rivulet::{Env, JobConfig, Sink, Watermarks, Windowed};
use std::time::Duration;

fn run(count_window: bool) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = JobConfig::new("metrics-tasks");
    cfg.parallelism = 2;
    let env = Env::new(cfg).unwrap();
    let metrics = env.metrics();
    metrics.results.enable();
    // (key, ts): 5 keys, one record per 10 ms each.
    let src = Generator::new(Some(10_000), |i| ((i % 5) as u32, (i / 5 * 10) as i64));
    let keyed = env
        .source(src, Watermarks::bounded_out_of_orderness(Duration::ZERO, |r: &(u32, i64)| r.1))
        .key_by(|r: &(u32, i64)| r.0);
    let windowed = if count_window {
        keyed.window(rivulet::window::Count(100))
    } else {
        keyed.window(Tumbling::of(Duration::from_secs(1)).unwrap())
    };
    windowed.aggregate(Count).sink(Sink::file(
        dir.path().join("out.csv"),
        |w: &Windowed<u32, u64>, b: &mut Vec<u8>| {
            b.extend_from_slice(format!("{},{},{}\n", w.key, w.window.end, w.value).as_bytes())
        },
    ));
    let out = env.execute().unwrap();
    let tasks = metrics.tasks();
    let sum = |prefix: &str, f: fn(&rivulet::metrics::TaskSnapshot) -> u64| -> u64 {
        tasks.iter().filter(|t| t.operator.starts_with(prefix)).map(f).sum()
    };
    assert_eq!(out.metrics.records_in, 10_000);
    assert_eq!(sum("source-", |t| t.records_out), 10_000);
    assert_eq!(sum("window-", |t| t.records_in), 10_000);
    assert_eq!(tasks.iter().filter(|t| t.operator.starts_with("window-")).count(), 2, "{tasks:?}");
    assert!(out.metrics.records_out > 0);
    assert_eq!(sum("window-", |t| t.records_out), out.metrics.records_out, "{tasks:?}");
    assert_eq!(sum("sink-", |t| t.records_in), out.metrics.records_out);
    assert_eq!(sum("sink-", |t| t.records_out), out.metrics.records_out);
    let (rows, seen) = metrics.results.rows();
    assert_eq!(seen, out.metrics.records_out);
    assert_eq!(rows.len() as u64, seen.min(rivulet::metrics::RESULTS_CAPACITY as u64));
}

#[test]
fn time_window_tasks_add_up() {
    run(false);
}

#[test]
fn count_window_tasks_add_up() {
    run(true);
}
