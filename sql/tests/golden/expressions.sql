-- Row by row: a filter and expressions (CASE, COALESCE, CAST, strings, ABS).
CREATE TABLE readings (
  sensor_id STRING,
  room STRING,
  ts_ms BIGINT,
  temp_f DOUBLE,
  level INT,
  ts AS TO_TIMESTAMP_LTZ(ts_ms, 3),
  WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{input}', 'format' = 'csv');

CREATE TABLE results (sensor_id STRING, ts_ms BIGINT, label STRING, temp DOUBLE, quarter DOUBLE, tag STRING, mag INT)
  WITH ('connector' = 'filesystem', 'path' = '{output}', 'format' = 'csv');

INSERT INTO results
SELECT sensor_id, ts_ms,
  CASE WHEN temp_f > 80 THEN 'hot' ELSE 'ok' END,
  COALESCE(temp_f, -1.0), CAST(level AS DOUBLE) / 4, UPPER(room) || '-' || sensor_id, ABS(level)
FROM readings
WHERE level > 40 OR temp_f < 61;
