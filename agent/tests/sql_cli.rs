//! `rivulet sql`: a bad job exits 2 with the file, line and column in the
//! message and creates nothing; `EXPLAIN` and `--explain` print the plan.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

mod sql;

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_rivulet");

#[test]
fn a_bad_job_exits_2_naming_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    std::fs::write(&input, "s1,1000,50.0\n").unwrap();
    let out = dir.path().join("out.csv");
    let job = dir.path().join("job.sql");
    let text = sql::seed_job(&input, &out, "'2' SECOND").replace("AVG((temp_f", "AVG((temp_c");
    std::fs::write(&job, text).unwrap();
    let state = dir.path().join("state");
    let run = Command::new(BIN).arg("sql").arg("-f").arg(&job).arg("--state-dir").arg(&state).output().unwrap();
    assert_eq!(run.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(
        stderr.trim_end(),
        format!(
            "rivulet: {}: line 18, column 36: unknown column `temp_c` in readings (columns: sensor_id, ts_ms, temp_f, ts)",
            job.display()
        )
    );
    assert!(!out.exists() && !state.exists(), "a refused job created files");

    let missing = dir.path().join("nope.sql");
    let run = Command::new(BIN).arg("sql").arg("-f").arg(&missing).output().unwrap();
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("invalid --file: cannot read"));
}

#[test]
fn explain_prints_the_plan_and_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    std::fs::write(&input, "s1,1000,50.0\n").unwrap();
    let out = dir.path().join("out.csv");
    let job = dir.path().join("job.sql");
    let text = sql::seed_job(&input, &out, "'2' SECOND");
    std::fs::write(&job, text.replace("INSERT INTO averages", "EXPLAIN INSERT INTO averages")).unwrap();
    let run = Command::new(BIN).arg("sql").arg("-f").arg(&job).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let plan = String::from_utf8_lossy(&run.stdout);
    assert!(plan.contains("watermark = max(ts) - 2000 ms"), "{plan}");
    assert!(plan.contains("aggregate AVG((temp_f - 32) * 5 / 9), COUNT(*)"), "{plan}");
    assert!(!out.exists());
    std::fs::write(&job, &text).unwrap();
    let run = Command::new(BIN).arg("sql").arg("--explain").arg("-f").arg(&job).output().unwrap();
    assert!(run.status.success());
    assert_eq!(String::from_utf8_lossy(&run.stdout), plan);
    assert!(!out.exists());
}

#[test]
fn print_sink_writes_flink_style_rows_to_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    std::fs::write(&input, "s1,1000,50.0\ns1,2000,59.0\ns2,7000,212.0\n").unwrap();
    let job = dir.path().join("job.sql");
    let unused = dir.path().join("unused.csv");
    let file_sink = format!("WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv')", unused.display());
    let text = sql::seed_job(&input, &unused, "'2' SECOND").replace(&file_sink, "WITH ('connector' = 'print')");
    std::fs::write(&job, text).unwrap();
    let run = Command::new(BIN).arg("sql").arg("-f").arg(&job).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        "+I[s1, 1970-01-01T00:00:05.000, 12.5, 2]\n+I[s2, 1970-01-01T00:00:10.000, 100.0, 1]\n"
    );
}
