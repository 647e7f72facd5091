//! `rivulet health`, the containers' healthcheck: exit 0 while a liveness
//! file is fresh or a broker accepts an MQTT connection, 1 saying why not.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

use std::io::Write;
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const BIN: &str = env!("CARGO_BIN_EXE_rivulet");

fn health(args: &[&str]) -> (Option<i32>, String) {
    let o: Output = Command::new(BIN).arg("health").args(args).output().unwrap();
    (o.status.code(), format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
}

fn now_ms() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()
}

#[test]
fn a_liveness_file_is_healthy_while_fresh() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("alive");
    let file = f.to_str().unwrap();

    let (code, out) = health(&["--file", file]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("unhealthy") && out.contains("alive"), "{out}");

    std::fs::write(&f, format!("{}\n", now_ms())).unwrap();
    let (code, out) = health(&["--file", file]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with("alive: "), "{out}");

    std::fs::write(&f, format!("{}\n", now_ms() - 45_000)).unwrap();
    let (code, out) = health(&["--file", file]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("45 s ago") && out.contains("--max-age 30 s"), "{out}");
    let (code, out) = health(&["--file", file, "--max-age", "1m"]);
    assert_eq!(code, Some(0), "{out}");

    std::fs::write(&f, "not a time\n").unwrap();
    let (code, out) = health(&["--file", file]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("holds no time"), "{out}");

    // Neither or both of --file and --mqtt: a usage error.
    assert_eq!(health(&[]).0, Some(2));
    assert_eq!(health(&["--file", file, "--mqtt", "127.0.0.1:1"]).0, Some(2));
    assert_eq!(health(&["--file", file, "--max-age", "0s"]).0, Some(2));
}

#[test]
fn a_broker_is_healthy_while_it_accepts_an_mqtt_connection() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let mut broker = Command::new(BIN)
        .args(["broker", "--listen", &addr])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let mut last = health(&["--mqtt", &addr]);
    while last.0 != Some(0) && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(200));
        last = health(&["--mqtt", &addr]);
    }
    assert_eq!(last.0, Some(0), "the embedded broker: {}", last.1);
    assert!(last.1.contains("accepts connections"), "{}", last.1);
    broker.kill().unwrap();
    broker.wait().unwrap();
    let (code, out) = health(&["--mqtt", &addr]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("unhealthy") && out.contains(&addr), "{out}");

    // A listener that is no broker, and one that never answers.
    let other = TcpListener::bind("127.0.0.1:0").unwrap();
    let other_addr = other.local_addr().unwrap().to_string();
    let server = std::thread::spawn(move || {
        let (mut s, _) = other.accept().unwrap();
        s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").unwrap();
        let (_silent, _) = other.accept().unwrap();
        std::thread::sleep(Duration::from_secs(2));
    });
    let (code, out) = health(&["--mqtt", &other_addr]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("not an MQTT CONNACK"), "{out}");
    let (code, out) = health(&["--mqtt", &other_addr, "--timeout", "300ms"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("no CONNACK within 300 ms"), "{out}");
    server.join().unwrap();
}
