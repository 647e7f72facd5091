//! Guards issue 12 §9-11 for `sensor-average`: every bad flag value is
//! exit 2 with the flag named, and neither the output file nor the state
//! directory (nor a dead-letter file) is created.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_sensor-average");

/// Half of this machine's memory, as a `--state-cache` value that passes
/// alone but not times `--parallelism 4`.
fn half_of_memory() -> String {
    let bytes = rivulet_agent::args::mem_total().expect("MemTotal in /proc/meminfo (the tests run on Linux)");
    format!("{}KiB", bytes / 2 / 1024)
}

#[test]
fn bad_flags_exit_2_naming_the_flag_and_create_nothing() {
    let half = half_of_memory();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--window", "0"], "--window"),
        (vec!["--window", "0s"], "--window"),
        (vec!["--window", "0ms"], "--window"),
        (vec!["--window", "500us"], "--window"),
        (vec!["--window", "bogus"], "--window"),
        (vec!["--window", "99999999999999999999s"], "--window"),
        (vec!["--window", "3651days"], "--window"),
        (vec!["--max-out-of-orderness", "1500us"], "--max-out-of-orderness"),
        (vec!["--max-out-of-orderness=-2s"], "--max-out-of-orderness"),
        (vec!["--checkpoint-interval", "0"], "--checkpoint-interval"),
        (vec!["--checkpoint-interval", "99999999999999999999"], "--checkpoint-interval"),
        (vec!["--min-checkpoint-pause", "x"], "--min-checkpoint-pause"),
        (vec!["--checkpoint-timeout", "0"], "--checkpoint-timeout"),
        (vec!["--state-cache", "0"], "--state-cache"),
        (vec!["--state-cache", "65535"], "--state-cache"),
        (vec!["--state-cache", "99999999999999999999GiB"], "--state-cache"),
        (vec!["--state-cache", "16EiB"], "--state-cache"),
        (vec!["--state-cache", &half, "--parallelism", "4"], "--state-cache"),
        (vec!["--state-cache-mb", "8"], "--state-cache-mb"),
        (vec!["--parallelism", "0"], "--parallelism"),
        (vec!["--retain-checkpoints", "0"], "--retain-checkpoints"),
        (vec!["--output-mode", "sometimes"], "--output-mode"),
        (vec!["--output-mode", "eager", "--parallelism", "2"], "--output-mode"),
        (vec!["--restore-checkpoint=-1"], "--restore-checkpoint"),
        (vec!["--input-rate", "0"], "--input-rate"),
        (vec!["--input-rate", "fast"], "--input-rate"),
    ];
    let mqtt_cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--mqtt", "http://127.0.0.1:1883"], "--mqtt"),
        (vec!["--mqtt", "mqtt://:1883"], "--mqtt"),
        (vec!["--mqtt", "mqtt://127.0.0.1:1", "--stop-after-idle", "0s"], "--stop-after-idle"),
        (vec!["--mqtt", "mqtt://127.0.0.1:1", "--stop-after-idle", "forever"], "--stop-after-idle"),
        (vec!["--mqtt", "mqtt://127.0.0.1:1", "--input-rate", "100"], "--input-rate"),
    ];
    let all = cases.into_iter().map(|c| (true, c)).chain(mqtt_cases.into_iter().map(|c| (false, c)));
    for (file_input, (args, flag)) in all {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let input = dir.path().join("in.csv");
        std::fs::write(&input, "s1,1000,70.0\n").expect("writing the input");
        let mut cmd = Command::new(BIN);
        if file_input {
            cmd.arg("--input").arg(&input).arg("--dead-letter").arg(dir.path().join("dead.csv"));
        }
        cmd.arg("--output").arg(dir.path().join("out.csv")).arg("--state-dir").arg(dir.path().join("state"));
        cmd.args(&args).current_dir(dir.path());
        let r = cmd.output().expect("running sensor-average");
        let stderr = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(flag), "{args:?} does not name {flag}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("readable")
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .filter(|n| n != "in.csv")
            .collect();
        assert!(left.is_empty(), "{args:?} created {left:?}");
    }
}

// Guards that the accepted spellings still run: the seed job with a
// state cache, a sub-second window and every engine flag given.
#[test]
fn good_flags_run() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let input = dir.path().join("in.csv");
    std::fs::write(&input, "s1,1000,32.0\ns1,1200,212.0\ns1,5000,32.0\n").expect("writing the input");
    let r = Command::new(BIN)
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(dir.path().join("out.csv"))
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .args(["--window", "500ms", "--max-out-of-orderness", "0", "--state-cache", "512KiB"])
        .args(["--checkpoint-interval", "1s", "--min-checkpoint-pause", "0ms", "--retain-checkpoints", "2"])
        .args(["--output-mode", "commit-on-output", "--parallelism", "2", "--input-rate", "1000"])
        .output()
        .expect("running sensor-average");
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let rows = std::fs::read_to_string(dir.path().join("out.csv")).expect("the output");
    assert_eq!(rows, "s1,1500,50,2\ns1,5500,0,1\n");
}
