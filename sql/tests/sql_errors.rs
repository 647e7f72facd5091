//! Guards issue 15's promise for bad jobs: every error names the line and
//! column and says what is wrong; nothing outside the supported subset is
//! planned into something else.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

const SOURCE: &str = "CREATE TABLE r (
  id STRING,
  ts_ms BIGINT,
  temp DOUBLE,
  ts AS TO_TIMESTAMP_LTZ(ts_ms, 3),
  WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
) WITH ('connector' = 'filesystem', 'path' = 'in.csv', 'format' = 'csv');
CREATE TABLE o (id STRING, avg_t DOUBLE) WITH ('connector' = 'print');
";

fn err(job: &str) -> String {
    match rivulet_sql::plan(job) {
        Ok(_) => panic!("planned a bad job:\n{job}"),
        Err(e) => e.to_string(),
    }
}

fn window(select: &str, tail: &str) -> String {
    format!("{SOURCE}INSERT INTO o SELECT {select}\nFROM TABLE(TUMBLE(TABLE r, DESCRIPTOR(ts), INTERVAL '5' SECOND))\n{tail}")
}

const GROUP: &str = "GROUP BY window_start, window_end, id";

#[test]
fn bad_jobs_and_their_messages() {
    let cases: Vec<(String, &str)> = vec![
        // syntax
        (window("id AVG(temp)", GROUP), "line 9, column 28: syntax error: Expected: end of statement (;), found: ("),
        (format!("{SOURCE}INSERT INTO o SELEC id"), "line 9, column 15: syntax error: Expected: SELECT, VALUES, or a subquery in the query body, found: SELEC"),
        // unknown names
        (window("id, AVG(tmp)", GROUP), "line 9, column 30: unknown column `tmp` in r (columns: id, ts_ms, temp, ts)"),
        (window("ID, AVG(temp)", GROUP), "line 9, column 22: unknown column `ID` in r (columns: id, ts_ms, temp, ts) (names are case-sensitive: did you mean `id`?)"),
        (format!("{SOURCE}INSERT INTO nowhere SELECT id, temp FROM r"), "line 9, column 13: unknown table nowhere (declared: r, o)"),
        (window("id, temp", GROUP), "line 9, column 26: column `temp` is neither grouped nor aggregated: add it to GROUP BY or use it in an aggregate"),
        // types
        (window("id, window_end", GROUP), "line 9, column 26: type mismatch: column 2 of the query (`window_end`) is TIMESTAMP(3), but column `avg_t` of o is DOUBLE"),
        (window("id, AVG(id)", GROUP), "line 9, column 26: type mismatch: AVG needs a number, not STRING"),
        (window("id, AVG(temp)", &format!("WHERE temp + 1\n{GROUP}")), "line 11, column 7: type mismatch: WHERE must be BOOLEAN, not DOUBLE"),
        (window("id, AVG(temp)", &format!("WHERE id > 3\n{GROUP}")), "line 11, column 7: type mismatch: cannot compare STRING with INT"),
        (window("id, AVG(temp)", "GROUP BY window_start, window_end, id HAVING AVG(temp) > 'x'"), "line 11, column 46: type mismatch: cannot compare DOUBLE with STRING"),
        (window("id", GROUP), "line 9, column 15: the query has 1 columns, the sink o has 2"),
        // unsupported constructs
        (format!("{SOURCE}INSERT INTO o SELECT id, AVG(temp) FROM r GROUP BY id"), "line 9, column 52: GROUP BY without a window table function (an updating aggregate) is not supported: aggregate over TABLE(TUMBLE(...)), TABLE(HOP(...)), TABLE(CUMULATE(...)) or TABLE(SESSION(...))"),
        (format!("{SOURCE}INSERT INTO o SELECT id, AVG(temp)\nFROM TABLE(SESSION(TABLE r, DESCRIPTOR(ts), INTERVAL '5' SECOND))\n{GROUP}"), "line 10, column 12: SESSION: the GROUP BY columns besides the window (id) must be its PARTITION BY columns (none): write SESSION(TABLE r PARTITION BY id, ...)"),
        (format!("{SOURCE}INSERT INTO o SELECT id, LAST_VALUE(temp)\nFROM TABLE(SESSION(TABLE r PARTITION BY id, DESCRIPTOR(ts), INTERVAL '5' SECOND))\n{GROUP}"), "line 9, column 15: LAST_VALUE(temp) over SESSION windows is not supported (merged sessions have no single first or last row)"),
        (format!("{SOURCE}INSERT INTO o SELECT id, AVG(temp)\nFROM TABLE(TUMBLE(TABLE r PARTITION BY id, DESCRIPTOR(ts), INTERVAL '5' SECOND))\n{GROUP}"), "line 10, column 25: TUMBLE: PARTITION BY is not supported (SESSION takes it)"),
        (format!("{SOURCE}INSERT INTO o SELECT id, AVG(temp)\nFROM TABLE(CUMULATE(TABLE r, DESCRIPTOR(ts), INTERVAL '2' SECOND, INTERVAL '5' SECOND))\n{GROUP}"), "line 10, column 76: CUMULATE: the size (5000 ms) must be a whole number of steps (2000 ms)"),
        (format!("{SOURCE}INSERT INTO o SELECT id, AVG(temp)\nFROM TABLE(SESSION(TABLE r PARTITION BY (id, nope), DESCRIPTOR(ts), INTERVAL '5' SECOND))\n{GROUP}"), "line 10, column 46: unknown column `nope` in r (columns: id, ts_ms, temp, ts)"),
        (window("id, AVG(DISTINCT temp)", GROUP), "line 9, column 26: AVG(DISTINCT ...) is not supported (COUNT(DISTINCT ...) is)"),
        (window("id, AVG(temp)", "GROUP BY window_start, id"), "line 11, column 10: a window aggregation must GROUP BY window_start, window_end (and any keys)"),
        (format!("{SOURCE}INSERT INTO o SELECT r.id, AVG(temp) FROM r JOIN r AS s ON r.id = s.id"), "line 9, column 15: joins are not supported"),
        (format!("{SOURCE}SELECT id FROM r"), "line 9, column 1: statement `SELECT id ...` is not supported (a job is CREATE TABLE statements and one INSERT INTO)"),
        (format!("{SOURCE}INSERT INTO o SELECT id, temp FROM r WHERE SOUNDEX(id) = 'x'"), "line 9, column 44: function SOUNDEX is not supported"),
        (window("id, AVG(temp)", "GROUP BY window_start, window_end, id;\nINSERT INTO o SELECT id, temp FROM r"), "line 12, column 1: a job runs one INSERT INTO; this is a second one"),
        // bad connector options
        ("CREATE TABLE t (a INT) WITH ('connector' = 'kafka');".into(), "line 1, column 30: connector 'kafka' is not supported (supported: filesystem, mqtt, print, blackhole)"),
        ("CREATE TABLE t (a INT) WITH ('connector' = 'filesystem', 'path' = 'x.csv', 'format' = 'avro');".into(), "line 1, column 76: format 'avro' of t is not supported (supported: csv, json)"),
        ("CREATE TABLE t (a INT) WITH ('connector' = 'filesystem', 'format' = 'csv');".into(), "line 1, column 30: connector 'filesystem' of t needs a 'path' option"),
        ("CREATE TABLE t (a INT) WITH ('connector' = 'print', 'topic' = 'x');".into(), "line 1, column 53: unknown option 'topic' for connector 'print' of t (known: connector, print-identifier)"),
        ("CREATE TABLE t (a INT) WITH ('path' = 'x.csv');".into(), "line 1, column 1: table t has no 'connector' option (supported: filesystem, mqtt, print, blackhole)"),
        // bad tables
        ("CREATE TABLE t (a DECIMAL(10, 2)) WITH ('connector' = 'print');".into(), "line 1, column 17: type DECIMAL(10,2) is not supported (supported: BOOLEAN, INT, BIGINT, DOUBLE, STRING, VARCHAR, TIMESTAMP(3), TIMESTAMP_LTZ(3))"),
        ("CREATE TABLE t (a BIGINT, WATERMARK FOR a AS a - INTERVAL '1' SECOND) WITH ('connector' = 'print');".into(), "line 1, column 41: type mismatch: the WATERMARK FOR column `a` is BIGINT; it must be TIMESTAMP(3) or TIMESTAMP_LTZ(3)"),
        ("CREATE TABLE t (a TIMESTAMP(3), WATERMARK FOR a AS a - INTERVAL '1' MONTH) WITH ('connector' = 'print');".into(), "line 1, column 65: interval unit MONTH is not supported (use SECOND, MINUTE, HOUR or DAY)"),
        ("CREATE TABLE t (a TIMESTAMP(3), WATERMARK FOR a AS a + INTERVAL '1' SECOND) WITH ('connector' = 'print');".into(), "line 1, column 52: watermark `a + INTERVAL '1' SECOND` is not supported: write `a - INTERVAL 'n' SECOND` (or `a` for no delay)"),
        ("CREATE TABLE t (a TIMESTAMP(3), WATERMARK FOR a AS a - 5) WITH ('connector' = 'print');".into(), "line 1, column 56: expected an interval like INTERVAL '5' SECOND, found `5`"),
    ];
    let mut failed = Vec::new();
    for (job, want) in &cases {
        let got = err(job);
        if got != *want {
            failed.push(format!("job:\n{job}\n  want: {want}\n  got:  {got}"));
        }
    }
    assert!(failed.is_empty(), "{} of {} messages differ:\n{}", failed.len(), cases.len(), failed.join("\n\n"));
}

#[test]
fn explain_prints_the_plan() {
    let job = rivulet_sql::plan(&format!(
        "{SOURCE}EXPLAIN INSERT INTO o SELECT id, AVG(temp)\nFROM TABLE(TUMBLE(TABLE r, DESCRIPTOR(ts), INTERVAL '5' SECOND))\nWHERE temp > 0\n{GROUP} HAVING COUNT(*) > 1"
    ))
    .unwrap();
    assert!(job.is_explain());
    assert_eq!(
        job.explain(),
        "== Rivulet plan ==
source r: filesystem csv `in.csv` (id STRING, ts_ms BIGINT, temp DOUBLE, ts TIMESTAMP_LTZ(3))
  computed ts TIMESTAMP_LTZ(3) = TO_TIMESTAMP_LTZ(ts_ms, 3)
  event time ts; watermark = max(ts) - 2000 ms (Flink SQL: no extra -1 ms); late rows are dropped
filter temp > 0
key by (id)
window TUMBLE size 5000 ms
aggregate AVG(temp), COUNT(*)
having COUNT(*) > 1
project id, AVG(temp)
sink o: print
"
    );
}

/// A Top-N over the aggregation of `SOURCE`: `over` is the OVER clause's
/// inside, `filter` the outer WHERE.
fn top_n(over: &str, filter: &str) -> String {
    format!(
        "{SOURCE}INSERT INTO o SELECT id, avg_t FROM (\n  SELECT *, ROW_NUMBER() OVER ({over}) AS rn FROM (\n    SELECT window_start, window_end, id, AVG(temp) AS avg_t\n    FROM TABLE(TUMBLE(TABLE r, DESCRIPTOR(ts), INTERVAL '5' SECOND))\n    {GROUP})\n) WHERE {filter}"
    )
}

// Guards the Top-N's refusals: only a window Top-N (ROW_NUMBER, the window
// in PARTITION BY, `rn <= N` alone) is planned; each other form is named.
#[test]
fn bad_top_n_jobs_and_their_messages() {
    const OVER: &str = "PARTITION BY window_start, window_end ORDER BY avg_t DESC";
    let cases: Vec<(String, &str)> = vec![
        (top_n(OVER, "rn <= 3"), ""),
        (top_n("PARTITION BY id ORDER BY avg_t DESC", "rn <= 3"), "line 10, column 13: a Top-N must PARTITION BY window_start, window_end (the window's columns; `window_start` is missing): a Top-N over all time updates its results and is not supported"),
        (top_n("PARTITION BY window_start, window_end", "rn <= 3"), "line 10, column 13: ROW_NUMBER() OVER (...) needs an ORDER BY"),
        (top_n(OVER, "rn <= 0"), "line 14, column 9: a Top-N's outer query filters on its row number alone: WHERE rn <= N (N from 1 to 10000)"),
        (top_n(OVER, "rn <= 3 AND id = 'a'"), "line 14, column 9: a Top-N's outer query filters on its row number alone: WHERE rn <= N (N from 1 to 10000)"),
        (top_n(OVER, "avg_t > 3"), "line 14, column 9: a Top-N's outer query filters on its row number alone: WHERE rn <= N (N from 1 to 10000)"),
        (top_n("PARTITION BY window_start, window_end ORDER BY nope", "rn <= 3"), "line 10, column 79: unknown column `nope` in the Top-N's subquery (columns: window_start, window_end, id, avg_t)"),
        (top_n(OVER, "rn <= 3").replace("ROW_NUMBER()", "RANK()"), "line 10, column 13: RANK() OVER (...) is not supported: OVER windows other than a Top-N with ROW_NUMBER() are not supported"),
        (top_n(OVER, "rn <= 3").replace("ORDER BY avg_t DESC", "ORDER BY avg_t DESC NULLS LAST"), "line 10, column 79: NULLS FIRST / NULLS LAST is not supported in a Top-N (NULLs come first ascending, last descending)"),
        (
            format!("{SOURCE}INSERT INTO o SELECT id, t FROM (SELECT id, temp AS t, ROW_NUMBER() OVER (PARTITION BY id ORDER BY t) AS rn FROM (SELECT id, temp FROM r)) WHERE rn <= 1"),
            "line 9, column 115: a Top-N ranks the rows of a window aggregation: its innermost SELECT reads TABLE(TUMBLE(...)), TABLE(HOP(...)), TABLE(CUMULATE(...)) or TABLE(SESSION(...)) with GROUP BY window_start, window_end, ... (a Top-N over all time updates its results and is not supported)",
        ),
    ];
    for (job, want) in cases {
        if want.is_empty() {
            assert!(
                rivulet_sql::plan(&job).is_ok(),
                "the well-formed Top-N plans: {:?}",
                rivulet_sql::plan(&job).err()
            );
            continue;
        }
        let got = err(&job);
        assert_eq!(got, want, "job:\n{job}");
    }
}

// Guards EXPLAIN of a Top-N: the aggregation's projection, the ranking and
// N, then the outer projection.
#[test]
fn explain_shows_a_top_n() {
    let job = rivulet_sql::plan(&top_n("PARTITION BY window_start, window_end ORDER BY avg_t DESC", "rn < 4")).unwrap();
    let plan = job.explain();
    let tail: Vec<&str> = plan.lines().skip_while(|l| !l.starts_with("aggregate")).collect();
    assert_eq!(
        tail,
        [
            "aggregate AVG(temp)",
            "project window_start, window_end, id, AVG(temp)",
            "rank ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY avg_t DESC) (first 3 rows per partition, at the window's end)",
            "project id, avg_t",
            "sink o: print",
        ]
    );
}
