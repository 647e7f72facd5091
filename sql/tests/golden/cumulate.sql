-- Cumulating windows (every 2 s, up to 10 s) per sensor: each window
-- starts on a 10 s boundary and fires at every step end. A late row still
-- counts in the windows of its period that have not fired.
CREATE TABLE readings (
  sensor_id STRING,
  room STRING,
  ts_ms BIGINT,
  temp_f DOUBLE,
  level INT,
  ts AS TO_TIMESTAMP_LTZ(ts_ms, 3),
  WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{input}', 'format' = 'csv');

CREATE TABLE results (
  sensor_id STRING, window_start TIMESTAMP(3), window_end TIMESTAMP(3),
  n BIGINT, levels BIGINT, lowest INT, hottest DOUBLE
) WITH ('connector' = 'filesystem', 'path' = '{output}', 'format' = 'csv');

INSERT INTO results
SELECT sensor_id, window_start, window_end, COUNT(*), SUM(CAST(level AS BIGINT)), MIN(level), MAX(temp_f)
FROM TABLE(CUMULATE(TABLE readings, DESCRIPTOR(ts), INTERVAL '2' SECOND, INTERVAL '10' SECOND))
GROUP BY window_start, window_end, sensor_id;
