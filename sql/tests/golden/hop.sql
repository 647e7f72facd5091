-- Hopping windows (6 s every 2 s) per room: a late row still counts in
-- the windows of its slice that have not fired. A window's DOUBLE sum adds
-- up its 2 s slices in an order of Flink's own: the last digits of
-- AVG(temp_f) may differ (the test compares DOUBLEs to 1e-12).
CREATE TABLE readings (
  sensor_id STRING,
  room STRING,
  ts_ms BIGINT,
  temp_f DOUBLE,
  level INT,
  ts AS TO_TIMESTAMP_LTZ(ts_ms, 3),
  WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{input}', 'format' = 'csv');

CREATE TABLE results (room STRING, window_end TIMESTAMP(3), n BIGINT, avg_f DOUBLE, max_level INT)
  WITH ('connector' = 'filesystem', 'path' = '{output}', 'format' = 'csv');

INSERT INTO results
SELECT room, window_end, COUNT(*), AVG(temp_f), MAX(level)
FROM TABLE(HOP(TABLE readings, DESCRIPTOR(ts), INTERVAL '2' SECOND, INTERVAL '6' SECOND))
GROUP BY window_start, window_end, room;
