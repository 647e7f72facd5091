//! Window queries run in-process on small CSV files, their rows checked
//! against values worked out by hand.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

use std::path::Path;

fn run(dir: &Path, input: &str, ddl_in: &str, ddl_out: &str, query: &str) -> Vec<String> {
    let inp = dir.join("in.csv");
    let out = dir.join("out.csv");
    std::fs::write(&inp, input).unwrap();
    let sql = format!(
        "CREATE TABLE src ({ddl_in}) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');\n\
         CREATE TABLE dst ({ddl_out}) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');\n{query}",
        inp.display(),
        out.display()
    );
    let job = rivulet_sql::plan(&sql).unwrap_or_else(|e| panic!("{e}\n{sql}"));
    job.build(rivulet::JobConfig::new("t")).unwrap().execute().unwrap();
    let mut rows: Vec<String> = std::fs::read_to_string(&out).unwrap().lines().map(String::from).collect();
    rows.sort();
    rows
}

const READINGS: &str = "id STRING, ts_ms BIGINT, v INT, ts AS TO_TIMESTAMP_LTZ(ts_ms, 3), \
                        WATERMARK FOR ts AS ts - INTERVAL '2' SECOND";

// Guards the watermark rule of issue 15: Flink SQL's watermark is
// `max - delay`, one millisecond ahead of the DataStream API's. After
// 11999 the watermark is 9999, so window [5000, 10000) has fired and the
// row at 9000 is late (dropped); with `max - delay - 1` it would count.
#[test]
fn the_watermark_is_max_minus_delay() {
    let dir = tempfile::tempdir().unwrap();
    let input = "a,1000,1\na,6000,2\na,11999,3\na,9000,4\nb,9001,5\n";
    let rows = run(
        dir.path(),
        input,
        READINGS,
        "id STRING, window_end TIMESTAMP(3), n BIGINT, s INT",
        "INSERT INTO dst SELECT id, window_end, COUNT(*), SUM(v) \
         FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '5' SECOND)) \
         GROUP BY window_start, window_end, id",
    );
    assert_eq!(
        rows,
        ["a,\"1970-01-01 00:00:05\",1,1", "a,\"1970-01-01 00:00:10\",1,2", "a,\"1970-01-01 00:00:15\",1,3"]
    );
}

#[test]
fn expressions_where_having_and_every_aggregate() {
    let dir = tempfile::tempdir().unwrap();
    let input = "a,100,4\na,200,-3\nb,300,10\na,5100,7\nb,5200,1\nb,5300,2\nc,5400,0\nc,12000,9\n";
    let rows = run(
        dir.path(),
        input,
        READINGS,
        "id STRING, ws TIMESTAMP(3), n BIGINT, s INT, a INT, mn INT, mx INT, d DOUBLE, label STRING",
        "INSERT INTO dst SELECT id, window_start, COUNT(v), SUM(v), AVG(v), MIN(v), MAX(v), \
           AVG(CAST(v AS DOUBLE)) * 2, CASE WHEN MAX(v) > 5 THEN 'hot' ELSE 'cold' END \
         FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '5' SECOND)) \
         WHERE v <> 2 AND id <> 'z' \
         GROUP BY window_start, window_end, id HAVING COUNT(*) >= 1 AND SUM(v) < 100",
    );
    assert_eq!(
        rows,
        [
            "a,\"1970-01-01 00:00:00\",2,1,0,-3,4,1.0,cold",
            "a,\"1970-01-01 00:00:05\",1,7,7,7,7,14.0,hot",
            "b,\"1970-01-01 00:00:00\",1,10,10,10,10,20.0,hot",
            "b,\"1970-01-01 00:00:05\",1,1,1,1,1,2.0,cold",
            "c,\"1970-01-01 00:00:05\",1,0,0,0,0,0.0,cold",
            "c,\"1970-01-01 00:00:10\",1,9,9,9,9,18.0,hot",
        ]
    );
}

#[test]
fn hop_windows_and_a_global_group() {
    let dir = tempfile::tempdir().unwrap();
    let input = "a,1000,1\nb,3000,2\na,6000,4\n";
    let rows = run(
        dir.path(),
        input,
        READINGS,
        "ws TIMESTAMP(3), we TIMESTAMP(3), n BIGINT, s BIGINT",
        "INSERT INTO dst SELECT window_start, window_end, COUNT(*), SUM(v) \
         FROM TABLE(HOP(TABLE src, DESCRIPTOR(ts), INTERVAL '2' SECOND, INTERVAL '4' SECOND)) \
         GROUP BY window_start, window_end",
    );
    // Windows of 4 s every 2 s: 1000 is in [-2000,2000) and [0,4000); 3000
    // in [0,4000) and [2000,6000); 6000 in [4000,8000) and [6000,10000).
    assert_eq!(
        rows,
        [
            "\"1969-12-31 23:59:58\",\"1970-01-01 00:00:02\",1,1",
            "\"1970-01-01 00:00:00\",\"1970-01-01 00:00:04\",2,3",
            "\"1970-01-01 00:00:02\",\"1970-01-01 00:00:06\",1,2",
            "\"1970-01-01 00:00:04\",\"1970-01-01 00:00:08\",1,4",
            "\"1970-01-01 00:00:06\",\"1970-01-01 00:00:10\",1,4",
        ]
    );
}

#[test]
fn row_by_row_projection_with_nulls_and_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    // `x` is not an INT and the third line has two fields: both are
    // malformed input, skipped and counted.
    let input = "a,1000,5\nb,2000,\nc,3000\nd,4000,x\ne,5000,-1\n";
    let rows = run(
        dir.path(),
        input,
        READINGS,
        "id STRING, t TIMESTAMP_LTZ(3), w INT, pos BOOLEAN",
        "INSERT INTO dst SELECT UPPER(id), ts + INTERVAL '1' SECOND, COALESCE(v * 10, CAST(-1 AS INT)), v > 0 FROM src WHERE ts_ms > 1500 OR v IS NOT NULL",
    );
    assert_eq!(
        rows,
        [
            "A,\"1970-01-01 00:00:02Z\",50,true",
            "B,\"1970-01-01 00:00:03Z\",-1,",
            "E,\"1970-01-01 00:00:06Z\",-10,false"
        ]
    );
}

// `WATERMARK FOR ts AS ts`: the watermark is the largest timestamp itself,
// so after 5000 the row at 4999 is late.
#[test]
fn a_watermark_without_delay() {
    let dir = tempfile::tempdir().unwrap();
    let rows = run(
        dir.path(),
        "a,1000,1\na,5000,2\na,4999,3\n",
        "id STRING, ts_ms BIGINT, v INT, ts AS TO_TIMESTAMP_LTZ(ts_ms, 3), WATERMARK FOR ts AS ts",
        "we TIMESTAMP(3), n BIGINT",
        "INSERT INTO dst SELECT window_end, COUNT(*) FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '5' SECOND)) \
         GROUP BY window_start, window_end",
    );
    assert_eq!(rows, ["\"1970-01-01 00:00:05\",1", "\"1970-01-01 00:00:10\",1"]);
}

// COUNT(DISTINCT), FIRST_VALUE and LAST_VALUE as Flink computes them:
// NULLs are left out, first and last follow the order rows arrive in.
#[test]
fn count_distinct_first_and_last_value() {
    let dir = tempfile::tempdir().unwrap();
    let input = "a,100,4\na,200,\na,300,4\na,400,7\nb,500,\nb,600,3\nb,700,3\na,5100,1\nc,9000,\n";
    let rows = run(
        dir.path(),
        input,
        READINGS,
        "id STRING, ws TIMESTAMP(3), n BIGINT, d BIGINT, f INT, l INT",
        "INSERT INTO dst SELECT id, window_start, COUNT(*), COUNT(DISTINCT v), FIRST_VALUE(v), LAST_VALUE(v) \
         FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '5' SECOND)) \
         GROUP BY window_start, window_end, id",
    );
    assert_eq!(
        rows,
        [
            "a,\"1970-01-01 00:00:00\",4,2,4,7",
            "a,\"1970-01-01 00:00:05\",1,1,1,1",
            "b,\"1970-01-01 00:00:00\",3,1,3,3",
            "c,\"1970-01-01 00:00:05\",1,0,,",
        ]
    );
}

// In HOP windows the same aggregates over overlapping panes.
#[test]
fn count_distinct_over_hopping_windows() {
    let dir = tempfile::tempdir().unwrap();
    let input = "a,1000,1\na,3000,2\na,6000,1\na,8000,3\n";
    let rows = run(
        dir.path(),
        input,
        READINGS,
        "id STRING, we TIMESTAMP(3), d BIGINT, f INT, l INT",
        "INSERT INTO dst SELECT id, window_end, COUNT(DISTINCT v), FIRST_VALUE(v), LAST_VALUE(v) \
         FROM TABLE(HOP(TABLE src, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '10' SECOND)) \
         GROUP BY window_start, window_end, id",
    );
    assert_eq!(
        rows,
        ["a,\"1970-01-01 00:00:05\",2,1,2", "a,\"1970-01-01 00:00:10\",3,1,3", "a,\"1970-01-01 00:00:15\",2,1,3"]
    );
}

// JSON lines in and out of files: missing keys and nulls are NULL, a line
// that is not an object is malformed (skipped); the blackhole sink takes
// the same rows and writes nothing.
#[test]
fn json_lines_files_and_the_blackhole_sink() {
    let dir = tempfile::tempdir().unwrap();
    let inp = dir.path().join("in.jsonl");
    let out = dir.path().join("out.jsonl");
    std::fs::write(
        &inp,
        "{\"id\":\"a\",\"ts_ms\":100,\"v\":4}\n{\"id\":\"a\",\"ts_ms\":200}\nnot json\n\
         {\"id\":\"b\",\"ts_ms\":300,\"v\":null,\"extra\":true}\n{\"id\":\"a\",\"ts_ms\":400,\"v\":\"6\"}\n",
    )
    .unwrap();
    let job = |sink: String| {
        format!(
            "CREATE TABLE src ({READINGS}) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');\n\
             CREATE TABLE dst (id STRING, we TIMESTAMP(3), n BIGINT, s INT) WITH ({sink});\n\
             INSERT INTO dst SELECT id, window_end, COUNT(*), SUM(v) \
             FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '5' SECOND)) GROUP BY window_start, window_end, id",
            inp.display()
        )
    };
    let sql = job(format!("'connector' = 'filesystem', 'path' = '{}', 'format' = 'json'", out.display()));
    let done = rivulet_sql::plan(&sql).unwrap().build(rivulet::JobConfig::new("t")).unwrap().execute().unwrap();
    assert_eq!(done.metrics.bad_input, 1, "the line that is not JSON");
    let mut rows: Vec<String> = std::fs::read_to_string(&out).unwrap().lines().map(String::from).collect();
    rows.sort();
    assert_eq!(
        rows,
        [
            r#"{"id":"a","we":"1970-01-01 00:00:05","n":3,"s":10}"#,
            r#"{"id":"b","we":"1970-01-01 00:00:05","n":1,"s":null}"#,
        ]
    );
    let hole = rivulet_sql::plan(&job("'connector' = 'blackhole'".into())).unwrap();
    assert!(hole.explain().contains("sink dst: blackhole"), "{}", hole.explain());
    let done = hole.build(rivulet::JobConfig::new("t")).unwrap().execute().unwrap();
    assert_eq!((done.metrics.records_in, done.metrics.records_out), (4, 2));
}

// DOUBLE arithmetic inside aggregates runs on plain numbers: a NULL
// operand (an empty field, or an INT widened to DOUBLE) makes the value
// NULL, which SUM, AVG and MIN skip, and a group with no value left gets
// NULL.
#[test]
fn double_arithmetic_in_aggregates_skips_nulls() {
    let dir = tempfile::tempdir().unwrap();
    let input = "a,100,50.0,1\na,200,,2\na,300,86.0,\nb,400,,3\n";
    let rows = run(
        dir.path(),
        input,
        "id STRING, ts_ms BIGINT, t DOUBLE, v INT, ts AS TO_TIMESTAMP_LTZ(ts_ms, 3), \
         WATERMARK FOR ts AS ts - INTERVAL '2' SECOND",
        "id STRING, n BIGINT, nt BIGINT, c DOUBLE, a DOUBLE, m DOUBLE, k DOUBLE",
        "INSERT INTO dst SELECT id, COUNT(*), COUNT(t), SUM((t - 32) * 5 / 9), AVG(t * 2 + v), MIN(t / 2), \
           AVG(1 - t) \
         FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '5' SECOND)) \
         GROUP BY window_start, window_end, id",
    );
    assert_eq!(rows, ["a,3,2,40.0,101.0,25.0,-67.0", "b,1,0,,,,"]);
}
