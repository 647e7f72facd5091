//! # Rivulet SQL
//!
//! Flink SQL jobs for Rivulet: a Flink dialect on `sqlparser`
//! ([`dialect`]), planned onto the runtime's DataStream API. Rows are
//! sequences of typed scalars (inline up to six) in positions fixed by the planner, and
//! expressions are compiled once into closures.
//!
//! Supported: `CREATE TABLE` with connectors `filesystem` (csv or JSON
//! lines; source and sink), `mqtt` (source and sink), `print` and
//! `blackhole` (sinks), types BOOLEAN, INT, BIGINT, DOUBLE, STRING/VARCHAR,
//! TIMESTAMP(3), TIMESTAMP_LTZ(3), computed columns and `WATERMARK FOR ts
//! AS ts - INTERVAL ...` (Flink SQL's watermark, `max - delay`); `INSERT
//! INTO sink SELECT ... FROM TABLE(TUMBLE | HOP | CUMULATE | SESSION(...))`
//! with WHERE, `GROUP BY window_start, window_end, keys`, HAVING, COUNT,
//! COUNT(DISTINCT), SUM, AVG, MIN, MAX, FIRST_VALUE, LAST_VALUE,
//! arithmetic, comparisons, CAST, CASE; a window Top-N (`ROW_NUMBER()
//! OVER (PARTITION BY window_start, window_end ... ORDER BY ...)` over a
//! window aggregation, `WHERE rownum <= N`); a row-by-row `INSERT INTO sink
//! SELECT ... FROM t WHERE ...`; `EXPLAIN`. Anything else is refused with
//! its line and column.
//!
//! ```
//! let job = rivulet_sql::plan(
//!     "CREATE TABLE r (id STRING, ts_ms BIGINT, ts AS TO_TIMESTAMP_LTZ(ts_ms, 3),
//!        WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)
//!        WITH ('connector' = 'filesystem', 'path' = 'in.csv', 'format' = 'csv');
//!      CREATE TABLE o (id STRING, n BIGINT) WITH ('connector' = 'print');
//!      INSERT INTO o SELECT id, COUNT(*) FROM TABLE(TUMBLE(TABLE r, DESCRIPTOR(ts), INTERVAL '5' SECOND))
//!        GROUP BY window_start, window_end, id",
//! )?;
//! assert!(job.explain().contains("window TUMBLE size 5000 ms"));
//! # Ok::<(), rivulet_sql::Error>(())
//! ```

mod agg;
mod catalog;
mod csv;
pub mod dialect;
mod error;
mod expr;
mod json;
mod plan;
mod topn;
pub mod types;

pub use dialect::{parse, FlinkDialect};
pub use error::{Error, Result};
pub use plan::{plan, Job};
