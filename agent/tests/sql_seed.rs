//! The seed job written in SQL gives the same rows as `sensor-average`
//! on generated input (issue 15).
//!
//! The two watermark rules differ by one millisecond: Flink SQL's
//! `WATERMARK FOR ts AS ts - INTERVAL 'd'` is `max - d`, the DataStream
//! API's bounded out-of-orderness `d` is `max - d - 1 ms`. So SQL with
//! `'2' SECOND` equals `sensor-average --max-out-of-orderness 1999ms`,
//! and SQL with `'2.001' SECOND` equals the default `2s`.
//!
//! The rows are compared value by value: `sensor-average` writes the
//! window end in ms and the average in Rust's shortest form, the SQL job
//! writes a TIMESTAMP(3) and Java's `Double.toString`, as Flink's CSV
//! format does. The averages must be bit-identical.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

mod sql;

use rivulet_agent::seed::sensor::{run_sensor_average, Input, SensorAverage};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_rivulet");

/// `(sensor, window end ms, avg bits, count)` from a `sensor-average` row.
fn from_sensor_average(row: &str) -> (String, i64, u64, u64) {
    let f: Vec<&str> = row.split(',').collect();
    (f[0].to_string(), f[1].parse().unwrap(), f[2].parse::<f64>().unwrap().to_bits(), f[3].parse().unwrap())
}

/// The same from a SQL row `sensor,"YYYY-MM-DD HH:MM:SS[.fff]",avg,count`
/// (a timestamp is quoted, as Flink's CSV writer quotes text with a space).
fn from_sql(row: &str) -> (String, i64, u64, u64) {
    let f: Vec<&str> = row.split(',').collect();
    let end =
        rivulet_sql::types::parse_timestamp(f[1].trim_matches('"')).unwrap_or_else(|| panic!("bad timestamp in {row}"));
    (f[0].to_string(), end, f[2].parse::<f64>().unwrap().to_bits(), f[3].parse().unwrap())
}

fn sensor_average(input: &Path, output: &Path, delay: Duration) -> u64 {
    let cfg = SensorAverage {
        input: Input::Csv(input.to_path_buf()),
        output: output.to_path_buf(),
        window: Duration::from_secs(5),
        max_out_of_orderness: delay,
        input_rate: None,
        dead_letter: None,
        publish: None,
        job: rivulet::JobConfig::new("sensor-average"),
    };
    run_sensor_average(&cfg).unwrap().metrics.late
}

fn same_rows(sql_delay: &str, datastream_delay: Duration) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    rivulet_agent::dataset::write_csv(std::fs::File::create(&input).unwrap(), 300_000, 100).unwrap();
    let expected_out = dir.path().join("expected.csv");
    let late = sensor_average(&input, &expected_out, datastream_delay);
    // The generated input has stragglers: the lateness rule is exercised.
    assert!(late > 0, "no late readings in the input");

    let out = dir.path().join("out.csv");
    let job = dir.path().join("job.sql");
    std::fs::write(&job, sql::seed_job(&input, &out, sql_delay)).unwrap();
    let run = Command::new(BIN).arg("sql").arg("-f").arg(&job).output().unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(stderr.contains(&format!(" {late} late,")), "late rows differ from sensor-average's {late}: {stderr}");

    let mut expected: Vec<_> = sql::sorted_rows(&expected_out).iter().map(|r| from_sensor_average(r)).collect();
    let mut got: Vec<_> = sql::sorted_rows(&out).iter().map(|r| from_sql(r)).collect();
    expected.sort();
    got.sort();
    assert!(expected.len() > 500, "only {} rows", expected.len());
    assert_eq!(got.len(), expected.len());
    assert_eq!(got, expected);
}

#[test]
fn sql_two_seconds_equals_datastream_1999ms() {
    same_rows("'2' SECOND", Duration::from_millis(1999));
}

#[test]
fn sql_2001ms_equals_datastream_two_seconds() {
    same_rows("'2.001' SECOND", Duration::from_secs(2));
}
