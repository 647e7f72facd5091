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

/// A window Top-N: the three warmest sensors of each 1 s window (ties on
/// the average broken by the sensor id), over `input` into `output`.
pub(crate) fn top_n_job(input: &Path, output: &Path) -> String {
    format!(
        "-- the three warmest sensors per 1 s window
CREATE TABLE readings (
  sensor_id STRING,
  ts_ms BIGINT,
  temp_f DOUBLE,
  ts AS TO_TIMESTAMP_LTZ(ts_ms, 3),
  WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');

CREATE TABLE warmest (
  window_end TIMESTAMP(3),
  sensor_id STRING,
  avg_f DOUBLE,
  place BIGINT
) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');

INSERT INTO warmest
SELECT window_end, sensor_id, avg_f, place FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY avg_f DESC, sensor_id) AS place
  FROM (
    SELECT window_start, window_end, sensor_id, AVG(temp_f) AS avg_f
    FROM TABLE(TUMBLE(TABLE readings, DESCRIPTOR(ts), INTERVAL '1' SECOND))
    GROUP BY window_start, window_end, sensor_id
  )
) WHERE place <= 3;
",
        input.display(),
        output.display()
    )
}
