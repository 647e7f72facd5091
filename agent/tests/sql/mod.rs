//! Shared pieces of the `rivulet sql` tests: the seed job written in SQL.
#![allow(dead_code)]

use std::path::Path;

/// The seed job (°F → °C, average and count per sensor per 5 s tumbling
/// window) over `input` into `output`, with the watermark `delay`
/// written as a SQL interval literal (e.g. `'2' SECOND`).
pub(crate) fn seed_job(input: &Path, output: &Path, delay: &str) -> String {
    format!(
        "-- the seed job in SQL
CREATE TABLE readings (
  sensor_id STRING,
  ts_ms BIGINT,
  temp_f DOUBLE,
  ts AS TO_TIMESTAMP_LTZ(ts_ms, 3),
  WATERMARK FOR ts AS ts - INTERVAL {delay}
) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');

CREATE TABLE averages (
  sensor_id STRING,
  window_end TIMESTAMP(3),
  avg_c DOUBLE,
  n BIGINT
) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');

INSERT INTO averages
SELECT sensor_id, window_end, AVG((temp_f - 32) * 5 / 9), COUNT(*)
FROM TABLE(TUMBLE(TABLE readings, DESCRIPTOR(ts), INTERVAL '5' SECOND))
GROUP BY window_start, window_end, sensor_id;
",
        input.display(),
        output.display()
    )
}

/// A file's lines, sorted.
pub(crate) fn sorted_rows(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut rows: Vec<String> = text.lines().map(str::to_string).collect();
    rows.sort();
    rows
}
