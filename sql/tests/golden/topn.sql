-- Window Top-N: the two warmest rooms of each 5 s window per sensor
-- (PARTITION BY the window and a column), ranked over an aggregation with
-- a late row and stragglers. The row number is written out, and ties on
-- the average are broken by the room.
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
  window_start TIMESTAMP(3), window_end TIMESTAMP(3), sensor_id STRING, room STRING, n BIGINT, avg_f DOUBLE,
  rownum BIGINT
) WITH ('connector' = 'filesystem', 'path' = '{output}', 'format' = 'csv');

INSERT INTO results
SELECT window_start, window_end, sensor_id, room, n, avg_f, rownum FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end, sensor_id ORDER BY avg_f DESC, room) AS rownum
  FROM (
    SELECT window_start, window_end, sensor_id, room, COUNT(*) AS n, AVG(temp_f) AS avg_f
    FROM TABLE(TUMBLE(TABLE readings, DESCRIPTOR(ts), INTERVAL '5' SECOND))
    GROUP BY window_start, window_end, sensor_id, room
  )
) WHERE rownum <= 2;
