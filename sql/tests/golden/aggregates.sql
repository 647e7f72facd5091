-- Every aggregate over two keys, with WHERE and HAVING.
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
  sensor_id STRING, room STRING, window_start TIMESTAMP(3), n BIGINT, n_temp BIGINT, levels BIGINT,
  level_sum INT, level_avg INT, t_min DOUBLE, t_max DOUBLE, first_level INT, last_level INT
) WITH ('connector' = 'filesystem', 'path' = '{output}', 'format' = 'csv');

INSERT INTO results
SELECT sensor_id, room, window_start, COUNT(*), COUNT(temp_f), COUNT(DISTINCT level),
  SUM(level), AVG(level), MIN(temp_f), MAX(temp_f), FIRST_VALUE(level), LAST_VALUE(level)
FROM TABLE(TUMBLE(TABLE readings, DESCRIPTOR(ts), INTERVAL '10' SECOND))
WHERE level <> 7
GROUP BY window_start, window_end, sensor_id, room
HAVING COUNT(*) > 1;
