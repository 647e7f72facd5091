//! `--http` on an address that is not loopback needs a bearer token
//! (refused with exit 2 otherwise); with one, requests without it, or with
//! another, get 401.
#![cfg(feature = "http")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

mod support;

use std::process::Command;
use support::http::{get, Job};

const BIN: &str = env!("CARGO_BIN_EXE_rivulet");

fn run_generated(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_remove("RIVULET_HTTP_TOKEN")
        .args(["run", "--generated", "--events", "100000000000", "--sensors", "20"])
        .arg("--output")
        .arg(dir.join("out.csv"));
    cmd
}

#[test]
fn a_public_address_without_a_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_generated(dir.path()).args(["--http", "0.0.0.0:0"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("invalid --http-token: required when --http is not a loopback address"), "{stderr}");
    assert!(!dir.path().join("out.csv").exists(), "nothing ran");
}

#[test]
fn requests_need_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "tok-3141\n").unwrap();
    let mut cmd = run_generated(dir.path());
    cmd.args(["--http", "0.0.0.0:0", "--http-token"]).arg(&token_file);
    let job = Job::start(cmd);
    for path in ["/", "/metrics", "/api/v1/job", "/api/v1/checkpoints", "/api/v1/results", "/api/v1/nodes"] {
        let (status, body) = get(job.addr, path, None);
        assert_eq!(status, 401, "{path} without a token: {body}");
        assert_eq!(get(job.addr, path, Some("tok-3142")).0, 401, "{path} with another token");
        let (status, body) = get(job.addr, path, Some("tok-3141"));
        assert_eq!(status, 200, "{path} with the token: {body}");
    }
    // The page also takes the token in its address (a browser cannot send
    // the header when it opens a link); the API does not.
    assert_eq!(get(job.addr, "/?token=tok-3141", None).0, 200);
    assert_eq!(get(job.addr, "/?token=nope", None).0, 401);
    assert_eq!(get(job.addr, "/api/v1/job?token=tok-3141", None).0, 401);
    // `rivulet status` with and without it.
    let addr = job.addr.to_string();
    let out = Command::new(BIN).env_remove("RIVULET_HTTP_TOKEN").args(["status", "--http", &addr]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--http-token"));
    let out = Command::new(BIN).args(["status", "--http", &addr, "--http-token"]).arg(&token_file).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out =
        Command::new(BIN).env("RIVULET_HTTP_TOKEN", "tok-3141").args(["status", "--http", &addr]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
