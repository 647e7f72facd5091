//! Guards issue 12 §10-12 for `rivulet`: every bad flag value is exit 2
//! with the flag named, before anything starts — no broker, no thread, no
//! output file or state directory is created.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_rivulet");

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
        (vec!["run", "--duration", "bogus"], "--duration"),
        (vec!["run", "--duration", "0"], "--duration"),
        (vec!["run", "--duration", "0s"], "--duration"),
        (vec!["run", "--duration", "0ms"], "--duration"),
        (vec!["run", "--duration", "500us"], "--duration"),
        (vec!["run", "--duration", "99999999999999999999s"], "--duration"),
        (vec!["run", "--checkpoint-interval", "0"], "--checkpoint-interval"),
        (vec!["run", "--checkpoint-interval", "1500us"], "--checkpoint-interval"),
        (vec!["run", "--min-checkpoint-pause", "soon"], "--min-checkpoint-pause"),
        (vec!["run", "--checkpoint-timeout", "0s"], "--checkpoint-timeout"),
        (vec!["run", "--checkpoint-timeout", "never"], "--checkpoint-timeout"),
        (vec!["run", "--state-cache", "1KiB"], "--state-cache"),
        (vec!["run", "--state-cache", "bogus"], "--state-cache"),
        (vec!["run", "--state-cache", "99999999999999999999GiB"], "--state-cache"),
        (vec!["run", "--state-cache", &half, "--parallelism", "4"], "--state-cache"),
        (vec!["run", "--generated", "--state-cache", &half, "--parallelism", "4"], "--state-cache"),
        (vec!["run", "--state-cache-mb", "8"], "--state-cache-mb"),
        (vec!["run", "--parallelism", "0"], "--parallelism"),
        (vec!["run", "--parallelism", "100000"], "--parallelism"),
        (vec!["run", "--retain-checkpoints", "0"], "--retain-checkpoints"),
        (vec!["run", "--output-mode", "fast"], "--output-mode"),
        (vec!["run", "--output-mode", "eager"], "--output-mode"),
        (vec!["run", "--restore-checkpoint", "x"], "--restore-checkpoint"),
        (vec!["run", "--rate", "0"], "--rate"),
        (vec!["run", "--late-fraction", "2"], "--late-fraction"),
        (vec!["run", "--malformed-fraction=-1"], "--malformed-fraction"),
        (vec!["run", "--sensors", "0"], "--sensors"),
        (vec!["run", "--mqtt", "http://127.0.0.1:1883"], "--mqtt"),
        (vec!["run", "--mqtt", "mqtt://127.0.0.1:port"], "--mqtt"),
        (vec!["simulate", "--mqtt", "ftp://127.0.0.1:1883"], "--mqtt"),
        (vec!["simulate", "--rate=-5"], "--rate"),
        (vec!["simulate", "--sensors", "0"], "--sensors"),
        (vec!["simulate", "--batch", "0"], "--batch"),
        (vec!["simulate", "--batch", "1001"], "--batch"),
        (vec!["generate", "--sensors", "0"], "--sensors"),
        (vec!["bench", "--mode", "fastest"], "--mode"),
        (vec!["bench", "--runs", "0"], "--runs"),
        (vec!["bench", "--mqtt", "ws://x:1"], "--mqtt"),
        (vec!["bench", "--mode", "mqtt", "--batch", "0"], "--batch"),
    ];
    for (args, flag) in cases {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let out = dir.path().join("out.csv");
        let state = dir.path().join("state");
        let mut cmd = Command::new(BIN);
        cmd.args(&args).current_dir(dir.path());
        match args[0] {
            "run" => {
                cmd.arg("--output").arg(&out).arg("--state-dir").arg(&state);
            }
            "generate" => {
                cmd.arg("--output").arg(&out);
            }
            _ => {}
        }
        let r = cmd.output().expect("running rivulet");
        let stderr = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(flag), "{args:?} does not name {flag}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        let left: Vec<_> = std::fs::read_dir(dir.path()).expect("readable").collect();
        assert!(left.is_empty(), "{args:?} created {left:?}");
    }
}

// Guards issue 12 §12: the simulator against no broker fails with a
// sentence instead of reporting readings it never published.
#[test]
fn simulate_without_a_broker_fails() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
    let r = Command::new(BIN)
        .args(["simulate", "--count", "10", "--mqtt", &format!("mqtt://127.0.0.1:{port}")])
        .output()
        .expect("running rivulet");
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no MQTT broker accepted the connection"), "{stderr}");
    assert!(!stderr.contains("published"), "{stderr}");
}

// Guards issue 16 §2: `--help` states the state cache this machine gets
// when the flag is left out, and the rule behind it.
#[test]
fn help_states_the_state_cache_default_of_this_machine() {
    let want = rivulet_agent::args::default_state_cache(rivulet_agent::args::mem_usable());
    for cmd in [&["run", "--help"][..], &["sql", "--help"], &["bench", "--help"]] {
        let out = Command::new(BIN).args(cmd).output().unwrap();
        assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
        let help = String::from_utf8(out.stdout).unwrap();
        assert!(help.contains(&format!("[default: {}MiB]", want >> 20)), "{cmd:?}:\n{help}");
    }
    let out = Command::new(BIN).args(["run", "--help"]).output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap().split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(help.contains("1/256 of this machine's memory, within 8MiB to 64MiB"), "{help}");
}
