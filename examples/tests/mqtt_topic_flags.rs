//! Topic templates that cannot work are refused at start with exit 2 and
//! the flag's name, before anything is written: a `--topic` that does not
//! capture `{sensor_id}` or holds an unknown placeholder, a `--publish`
//! with a wildcard. No broker is needed: nothing connects.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

mod common;
use common::*;
use std::process::Command;

// Guards issue 12 §12: `sensors/#` ran and counted every message as
// malformed; `{bogus}` and `averages/+` were accepted.
#[test]
fn templates_that_cannot_work_exit_2_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (&["--topic", "sensors/#"], "--topic"),
        (&["--topic", "sensors/{sensor_id}/{bogus}"], "--topic"),
        (&["--publish", "averages/+"], "--publish"),
        (&["--publish", "averages/#"], "--publish"),
    ];
    for (i, (flags, named)) in cases.iter().enumerate() {
        let out = dir.path().join(format!("out-{i}.csv"));
        let state = dir.path().join(format!("state-{i}"));
        let mut c = Command::new(BIN);
        c.args(["--mqtt", &format!("mqtt://127.0.0.1:{}", free_port()), "--client-id", "eng"]);
        if flags[0] != "--topic" {
            c.args(["--topic", "sensors/{sensor_id}/temp"]);
        }
        let r = c.args(*flags).arg("--output").arg(&out).arg("--state-dir").arg(&state).output().unwrap();
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(2), "{flags:?}: {err}");
        assert!(err.contains(named), "{flags:?} names {named}: {err}");
        assert!(!out.exists() && !state.exists(), "{flags:?} changed nothing");
    }
}
