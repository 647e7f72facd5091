//! The DataStream API's other paths: union, the late-data side output,
//! processing-time windows, stateless operators.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

use rivulet::aggregate::Count;
use rivulet::source::Generator;
use rivulet::window::Tumbling;
use rivulet::{Env, JobConfig, Sink, Watermarks, Windowed};
use std::time::Duration;

type Ev = (u32, i64);

fn lines(p: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_to_string(p).unwrap_or_default().lines().map(String::from).collect();
    v.sort();
    v
}

fn count_sink(path: &std::path::Path) -> Sink<Windowed<u32, u64>> {
    Sink::file(path, |w: &Windowed<u32, u64>, b: &mut Vec<u8>| {
        b.extend_from_slice(format!("{},{},{}\n", w.key, w.window.end, w.value).as_bytes())
    })
}

#[test]
fn union_map_filter_flat_map() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.csv");
    let mut cfg = JobConfig::new("union");
    cfg.parallelism = 2;
    let env = Env::new(cfg).unwrap();
    let wm = || Watermarks::bounded_out_of_orderness(Duration::from_secs(60), |e: &Ev| e.1);
    let a = env.source(Generator::new(Some(1000), |i| (0u32, i as i64)), wm());
    let b = env.source(Generator::new(Some(1000), |i| (1u32, i as i64)), wm());
    a.union(b)
        .filter(|e: &Ev| e.1 % 2 == 0) // 500 per key
        .flat_map(|e: Ev| [e, (e.0 + 10, e.1)]) // each twice, under two keys
        .map(|e: Ev| (e.0, e.1 * 2))
        .key_by(|e: &Ev| e.0)
        .window(Tumbling::of(Duration::from_secs(10)).unwrap())
        .aggregate(Count)
        .sink(count_sink(&out));
    env.execute().unwrap();
    // ts*2 spans 0..2000 ms: one 10 s window per key, 500 elements each.
    assert_eq!(lines(&out), vec!["0,10000,500", "1,10000,500", "10,10000,500", "11,10000,500"]);
}

#[test]
fn late_elements_reach_the_side_output() {
    let dir = tempfile::tempdir().unwrap();
    let (out, late) = (dir.path().join("out.csv"), dir.path().join("late.csv"));
    let env = Env::new(JobConfig::new("late")).unwrap();
    // In order, but every 10th element is 5 s behind: with a 1 s delay and
    // 1 s windows those are late unless their window is still open.
    let gen = Generator::new(Some(2000), |i| (0u32, i as i64 * 10 - if i % 10 == 9 { 5000 } else { 0 }));
    let metrics = env.metrics();
    env.source(gen, Watermarks::bounded_out_of_orderness(Duration::from_secs(1), |e: &Ev| e.1))
        .key_by(|e: &Ev| e.0)
        .window(Tumbling::of(Duration::from_secs(1)).unwrap())
        .late_output(Sink::file(&late, |e: &Ev, b: &mut Vec<u8>| b.extend_from_slice(format!("{}\n", e.1).as_bytes())))
        .aggregate(Count)
        .sink(count_sink(&out));
    let outcome = env.execute().unwrap();
    // Model: the watermark before element i is max_ts - 1001.
    let mut max_ts = i64::MIN + 1001;
    let mut expected_late = Vec::new();
    for i in 0..2000i64 {
        let ts = i * 10 - if i % 10 == 9 { 5000 } else { 0 };
        let wm = max_ts.saturating_sub(1001);
        let end = ts - ts.rem_euclid(1000) + 1000;
        if end - 1 <= wm {
            expected_late.push(ts.to_string());
        }
        max_ts = max_ts.max(ts);
    }
    expected_late.sort();
    assert!(!expected_late.is_empty());
    assert_eq!(lines(&late), expected_late);
    assert_eq!(outcome.metrics.late, expected_late.len() as u64);
    assert_eq!(metrics.snapshot().late, expected_late.len() as u64);
    let counted: u64 = lines(&out).iter().map(|l| l.rsplit(',').next().unwrap().parse::<u64>().unwrap()).sum();
    assert_eq!(counted + expected_late.len() as u64, 2000);
}

#[test]
fn processing_time_windows_count_everything() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.csv");
    let env = Env::new(JobConfig::new("proctime")).unwrap();
    let gen = Generator::new(Some(3000), |i| ((i % 3) as u32, 0)).with_rate(20_000.0);
    env.source(gen, Watermarks::processing_time())
        .key_by(|e: &Ev| e.0)
        .window(Tumbling::of(Duration::from_millis(20)).unwrap())
        .aggregate(Count)
        .sink(count_sink(&out));
    env.execute().unwrap();
    let rows = lines(&out);
    assert!(rows.len() > 3, "several processing-time windows closed: {rows:?}");
    let total: u64 = rows.iter().map(|l| l.rsplit(',').next().unwrap().parse::<u64>().unwrap()).sum();
    assert_eq!(total, 3000);
}

/// Guards window arithmetic at the limits of event time: elements at
/// `i64::MIN` and `i64::MAX` are counted as bad input, never put in a
/// window whose end wrapped to the other sign.
#[test]
fn timestamps_at_the_limits_of_i64_are_refused_not_wrapped() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.csv");
    let env = Env::new(JobConfig::new("limits")).unwrap();
    let gen = Generator::new(Some(102), |i| match i {
        0 => (0u32, i64::MIN),
        101 => (0u32, i64::MAX),
        _ => (0u32, i as i64 * 100),
    });
    let metrics = env.metrics();
    env.source(gen, Watermarks::bounded_out_of_orderness(Duration::from_secs(1), |e: &Ev| e.1))
        .key_by(|e: &Ev| e.0)
        .window(Tumbling::of(Duration::from_secs(5)).unwrap())
        .aggregate(Count)
        .sink(count_sink(&out));
    env.execute().unwrap();
    // 100..=10_000 ms: windows ending at 5000 (49), 10000 (50), 15000 (1).
    assert_eq!(lines(&out), vec!["0,10000,50", "0,15000,1", "0,5000,49"]);
    assert_eq!(metrics.snapshot().bad_input, 2);
}
