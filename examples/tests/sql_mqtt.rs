//! SQL tables on MQTT through a real Mosquitto: a job reading readings
//! published as JSON on `sensors/{sensor_id}/temp` (the sensor id from the
//! topic) gives the rows the same query gives over a CSV file of the same
//! readings, malformed messages are counted and republished to the
//! dead-letter topic; and a job writing to an MQTT table publishes each
//! result row once, as a JSON object on a topic rendered from its columns.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

mod common;

use common::{dataset, finish, publish_messages, single_messages, sorted_rows, wait_subscribed, write_csv};
use common::{Collector, Mosquitto, BIN};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The `rivulet` binary, built beside this package's binaries by the
/// workspace.
fn rivulet() -> PathBuf {
    let p = Path::new(BIN).with_file_name(format!("rivulet{}", std::env::consts::EXE_SUFFIX));
    assert!(p.exists(), "{} is missing: build it first (`cargo build -p rivulet-agent`)", p.display());
    p
}

const READINGS: &str = "sensor_id STRING, ts_ms BIGINT, temp_f DOUBLE,
  ts AS TO_TIMESTAMP_LTZ(ts_ms, 3),
  WATERMARK FOR ts AS ts - INTERVAL '2' SECOND";

const AVERAGES: &str = "sensor_id STRING, window_end TIMESTAMP(3), avg_c DOUBLE, n BIGINT";

const QUERY: &str = "INSERT INTO averages
SELECT sensor_id, window_end, AVG((temp_f - 32) * 5 / 9), COUNT(*)
FROM TABLE(TUMBLE(TABLE readings, DESCRIPTOR(ts), INTERVAL '5' SECOND))
GROUP BY window_start, window_end, sensor_id;";

fn job(dir: &Path, name: &str, source_with: &str, sink_with: &str) -> PathBuf {
    let path = dir.join(format!("{name}.sql"));
    let text = format!(
        "CREATE TABLE readings ({READINGS}) WITH ({source_with});\n\
         CREATE TABLE averages ({AVERAGES}) WITH ({sink_with});\n{QUERY}\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn sql(file: &Path, state: &Path) -> Command {
    let mut c = Command::new(rivulet());
    c.arg("sql").arg("-f").arg(file).arg("--state-dir").arg(state).args(["--checkpoint-interval", "300ms"]);
    c.stdout(Stdio::null()).stderr(Stdio::piped());
    c
}

#[test]
fn sql_reads_and_writes_mqtt_tables() {
    let dir = tempfile::tempdir().unwrap();
    let Some(m) = Mosquitto::start(dir.path()) else { return };
    let url = m.url();
    let data = dataset(40_000, 12);

    // The oracle: the same query over a CSV file of the same readings.
    let input = dir.path().join("in.csv");
    write_csv(&input, &data);
    let file_src = format!("'connector' = 'filesystem', 'path' = '{}', 'format' = 'csv'", input.display());
    let file_out = |name: &str| {
        format!("'connector' = 'filesystem', 'path' = '{}', 'format' = 'csv'", dir.path().join(name).display())
    };
    let oracle = job(dir.path(), "oracle", &file_src, &file_out("oracle.csv"));
    let out = sql(&oracle, &dir.path().join("oracle-state")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let want = sorted_rows(&dir.path().join("oracle.csv"));
    assert!(want.len() > 90, "the oracle has too few rows: {}", want.len());

    // Reading MQTT: readings as JSON, the sensor id from the topic; two
    // malformed messages among them go to the dead-letter topic.
    let dead = Collector::start(m.port, "dead-reader", "dead/sql");
    let mqtt_src = format!(
        "'connector' = 'mqtt', 'url' = '{url}', 'topic' = 'sensors/{{sensor_id}}/temp', 'format' = 'json', \
         'client-id' = 'sql-reader', 'dead-letter-topic' = 'dead/sql', 'scan.stop-after-idle' = '3s'"
    );
    let reader = job(dir.path(), "reader", &mqtt_src, &file_out("from-mqtt.csv"));
    let child = sql(&reader, &dir.path().join("reader-state")).spawn().unwrap();
    wait_subscribed(&m, dir.path(), &["sql-reader"]);
    let mut msgs = single_messages(&data);
    msgs.insert(10, ("sensors/s0001/temp".into(), br#"{"ts_ms": "soon", "temp_f": 70.0}"#.to_vec()));
    msgs.insert(20, ("sensors/s0002/temp".into(), b"not json".to_vec()));
    publish_messages(&url, "sql-publisher", &msgs, 20_000.0);
    let (ok, stderr) = finish(child, Duration::from_secs(120));
    assert!(ok, "the SQL job over MQTT failed: {stderr}");
    assert!(stderr.contains("2 malformed"), "{stderr}");
    assert_eq!(sorted_rows(&dir.path().join("from-mqtt.csv")), want, "SQL over MQTT differs from SQL over the file");
    let dl = dead.wait(2, Duration::from_secs(10));
    assert_eq!(dl.len(), 2, "dead letters: {dl:?}");
    assert!(dl.iter().any(|(_, p, _)| p == "not json"), "{dl:?}");

    // Writing MQTT: one JSON object per result row, on averages/<sensor>.
    let results = Collector::start(m.port, "results-reader", "averages/#");
    let mqtt_out = format!(
        "'connector' = 'mqtt', 'url' = '{url}', 'topic' = 'averages/{{sensor_id}}', 'format' = 'json', \
         'client-id' = 'sql-writer'"
    );
    let writer = job(dir.path(), "writer", &file_src, &mqtt_out);
    let out = sql(&writer, &dir.path().join("writer-state")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got = results.wait(want.len(), Duration::from_secs(30));
    // Deduplicated by message id, as a consumer does.
    let mut by_id = BTreeMap::new();
    for (topic, payload, id) in got {
        by_id.insert(id.expect("every result carries rivulet-msg-id"), (topic, payload));
    }
    let mut rows: Vec<String> = by_id
        .values()
        .map(|(topic, payload)| {
            let j: serde_json::Value = serde_json::from_str(payload).unwrap();
            let id = j["sensor_id"].as_str().unwrap();
            assert_eq!(topic, &format!("averages/{id}"), "{payload}");
            format!("{id},{},{},{}", j["window_end"].as_str().unwrap(), j["avg_c"].as_f64().unwrap(), j["n"])
        })
        .collect();
    rows.sort();
    // The CSV's DOUBLE is Java's text (compared as a number) and its
    // TIMESTAMP is quoted.
    let normal: Vec<String> = want
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            format!("{},{},{},{}", f[0], f[1].trim_matches('"'), f[2].parse::<f64>().unwrap(), f[3])
        })
        .collect();
    let mut normal = normal;
    normal.sort();
    assert_eq!(rows, normal, "the rows published on MQTT differ from the file's");
}

#[test]
fn bad_mqtt_options_name_the_option_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    std::fs::write(&input, "s1,1700000000000,70.0\n").unwrap();
    let file_src = format!("'connector' = 'filesystem', 'path' = '{}', 'format' = 'csv'", input.display());
    let cases = [
        (
            "'connector' = 'mqtt', 'url' = 'mqtt://127.0.0.1:1', 'topic' = 'sensors/{room}/temp', 'format' = 'json'",
            "averages",
            "option 'topic' of readings: `{room}` is not a physical column",
        ),
        (
            "'connector' = 'mqtt', 'url' = 'http://x', 'topic' = 'sensors/{sensor_id}/temp', 'format' = 'json'",
            "averages",
            "option 'url' of readings",
        ),
        (
            "'connector' = 'mqtt', 'url' = 'mqtt://127.0.0.1:1', 'topic' = 't', 'format' = 'avro'",
            "averages",
            "format 'avro' of readings is not supported (supported: json, csv)",
        ),
        (
            "'connector' = 'mqtt', 'url' = 'mqtt://127.0.0.1:1', 'topic' = 't', 'format' = 'json', 'qos' = '3'",
            "averages",
            "option 'qos' of readings: '3' is not 0, 1 or 2",
        ),
        (
            "'connector' = 'mqtt', 'url' = 'mqtt://127.0.0.1:1', 'topic' = 't', 'format' = 'json', 'retain' = 'x'",
            "averages",
            "unknown option 'retain' for connector 'mqtt' of readings",
        ),
    ];
    for (i, (with, _, message)) in cases.iter().enumerate() {
        let file = job(
            dir.path(),
            &format!("bad{i}"),
            with,
            &format!("'connector' = 'filesystem', 'path' = '{}', 'format' = 'csv'", dir.path().join("o.csv").display()),
        );
        let state = dir.path().join(format!("state{i}"));
        let out = sql(&file, &state).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{with}: {stderr}");
        assert!(stderr.contains(message), "{with}: expected `{message}` in: {stderr}");
        assert!(stderr.contains("line 3, column"), "{with}: the option's position missing from: {stderr}");
        assert!(!state.exists(), "{with}: the state directory was created");
    }
    // A sink topic with a wildcard, and a sink sharing the source's session.
    let sink_cases = [
        (
            file_src.clone(),
            "'connector' = 'mqtt', 'url' = 'mqtt://127.0.0.1:1', 'topic' = 'averages/+', 'format' = 'json'".to_string(),
            "option 'topic' of averages",
        ),
        (
            "'connector' = 'mqtt', 'url' = 'mqtt://127.0.0.1:1', 'topic' = 'sensors/{sensor_id}/temp', 'format' = 'json', 'client-id' = 'same'".to_string(),
            "'connector' = 'mqtt', 'url' = 'mqtt://127.0.0.1:1', 'topic' = 'averages/{sensor_id}', 'format' = 'json', 'client-id' = 'same'".to_string(),
            "option 'client-id' of averages: `same` is also the source's",
        ),
    ];
    for (i, (src, sink, message)) in sink_cases.iter().enumerate() {
        let file = job(dir.path(), &format!("badsink{i}"), src, sink);
        let state = dir.path().join(format!("sink-state{i}"));
        let out = sql(&file, &state).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{sink}: {stderr}");
        assert!(stderr.contains(message), "{sink}: expected `{message}` in: {stderr}");
        assert!(!state.exists(), "{sink}: the state directory was created");
    }
}
