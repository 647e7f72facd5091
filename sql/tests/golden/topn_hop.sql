-- Window Top-N over hopping windows: the busiest sensor-room pair of each
-- 6 s window (every 2 s), ranked by a count and then by the highest
-- level. The outer SELECT leaves the row number out.
CREATE TABLE readings (
  sensor_id STRING,
  room STRING,
  ts_ms BIGINT,
  temp_f DOUBLE,
  level INT,
  ts AS TO_TIMESTAMP_LTZ(ts_ms, 3),
  WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{input}', 'format' = 'csv');

CREATE TABLE results (window_end TIMESTAMP(3), sensor_id STRING, room STRING, n BIGINT, top_level INT)
  WITH ('connector' = 'filesystem', 'path' = '{output}', 'format' = 'csv');

INSERT INTO results
SELECT window_end, sensor_id, room, n, top_level FROM (
  SELECT window_start, window_end, sensor_id, room, n, top_level,
    ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY n DESC, top_level DESC, sensor_id, room) AS r
  FROM (
    SELECT window_start, window_end, sensor_id, room, COUNT(*) AS n, MAX(level) AS top_level
    FROM TABLE(HOP(TABLE readings, DESCRIPTOR(ts), INTERVAL '2' SECOND, INTERVAL '6' SECOND))
    GROUP BY window_start, window_end, sensor_id, room
  )
) WHERE r <= 1;
