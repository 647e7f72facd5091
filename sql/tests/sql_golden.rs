//! Rivulet's rows equal Apache Flink's: each job in `tests/golden/` runs
//! over the committed `readings.csv` (stragglers, late rows, two keys) and
//! its rows are compared with `NAME.expected.csv`, written by Flink 2.3
//! itself through `scripts/flink-golden.sh` (PyFlink, streaming mode,
//! parallelism 1, one aggregation phase, a watermark after every row, time
//! zone UTC). Text, integers
//! and timestamps must be equal; DOUBLEs equal to a relative 1e-12 (Flink
//! adds partial sums in orders of its own where its plan splits a window:
//! with its default two-phase plan its own last digits vary from run to
//! run).
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

use std::path::Path;

/// Two CSV rows are the same: every field equal, DOUBLEs (a number with a
/// `.` or an exponent) to a relative 1e-12.
fn same_row(a: &str, b: &str) -> bool {
    let (fa, fb): (Vec<&str>, Vec<&str>) = (a.split(',').collect(), b.split(',').collect());
    fa.len() == fb.len()
        && fa.iter().zip(&fb).all(|(x, y)| {
            if x == y {
                return true;
            }
            let double = |s: &str| s.contains(['.', 'E']).then(|| s.parse::<f64>().ok()).flatten();
            match (double(x), double(y)) {
                (Some(p), Some(q)) => (p - q).abs() <= 1e-12 * p.abs().max(q.abs()),
                _ => false,
            }
        })
}

fn golden(name: &str) {
    golden_with(name, 1);
}

/// [`golden`] with `parallelism` window instances (rows cross an exchange
/// between the aggregation and a Top-N).
fn golden_with(name: &str, parallelism: usize) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.csv");
    let text = std::fs::read_to_string(root.join(format!("{name}.sql")))
        .unwrap()
        .replace("{input}", root.join("readings.csv").to_str().unwrap())
        .replace("{output}", out.to_str().unwrap());
    let job = rivulet_sql::plan(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut config = rivulet::JobConfig::new("golden");
    config.parallelism = parallelism;
    let done = job.build(config).unwrap().execute().unwrap();
    assert_eq!(done.metrics.bad_input, 0, "{name}: every line of readings.csv parses");
    let mut got: Vec<String> = std::fs::read_to_string(&out).unwrap().lines().map(String::from).collect();
    got.sort();
    let want: Vec<String> =
        std::fs::read_to_string(root.join(format!("{name}.expected.csv"))).unwrap().lines().map(String::from).collect();
    assert!(!want.is_empty(), "{name}: no golden rows");
    let differ: Vec<String> = want
        .iter()
        .zip(&got)
        .filter(|(w, g)| !same_row(w, g))
        .take(5)
        .map(|(w, g)| format!("  Flink:   {w}\n  Rivulet: {g}"))
        .collect();
    assert!(
        got.len() == want.len() && want.iter().zip(&got).all(|(w, g)| same_row(w, g)),
        "{name}: {} rows from Rivulet, {} from Flink; first differences:\n{}",
        got.len(),
        want.len(),
        differ.join("\n")
    );
}

#[test]
fn the_seed_job_equals_flink() {
    golden("seed");
}

#[test]
fn every_aggregate_over_two_keys_equals_flink() {
    golden("aggregates");
}

#[test]
fn row_by_row_expressions_equal_flink() {
    golden("expressions");
}

#[test]
fn hopping_windows_equal_flink() {
    golden("hop");
}

#[test]
fn cumulating_windows_equal_flink() {
    golden("cumulate");
}

#[test]
fn session_windows_equal_flink() {
    golden("session");
}

#[test]
fn a_window_top_n_equals_flink() {
    golden("topn");
}

#[test]
fn a_top_1_over_hopping_windows_equals_flink() {
    golden("topn_hop");
}

#[test]
fn a_window_top_n_over_two_instances_equals_flink() {
    golden_with("topn", 2);
    golden_with("topn_hop", 2);
}
