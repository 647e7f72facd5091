-- Session windows per sensor, closed by 1 s without a reading, over the
-- readings whose level is 47 or more (a sparse stream: sessions of one
-- reading and of many, merged as stragglers arrive). A late row opens no
-- session that has already fired.
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
  n BIGINT, levels BIGINT, hottest DOUBLE, a_room STRING
) WITH ('connector' = 'filesystem', 'path' = '{output}', 'format' = 'csv');

INSERT INTO results
SELECT sensor_id, window_start, window_end, COUNT(*), SUM(CAST(level AS BIGINT)), MAX(temp_f), MIN(room)
FROM TABLE(SESSION(TABLE readings PARTITION BY sensor_id, DESCRIPTOR(ts), INTERVAL '1' SECOND))
WHERE level >= 47
GROUP BY window_start, window_end, sensor_id;
