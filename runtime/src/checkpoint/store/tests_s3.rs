//! The store against a real S3-compatible server: moto's server on
//! 127.0.0.1 (`pip install 'moto[server]'`). Fails with that install hint
//! when `moto_server` is missing, unless RIVULET_SKIP_S3_TESTS=1.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a panic is the failure report

use super::model::Committed;
use super::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills the server when the test ends, also on a failed assertion.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn http(port: u16, request: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.write_all(request.as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

fn start_moto() -> Option<(Server, u16)> {
    if std::env::var("RIVULET_SKIP_S3_TESTS").is_ok_and(|v| v == "1") {
        eprintln!("RIVULET_SKIP_S3_TESTS=1: skipping the S3 test");
        return None;
    }
    let port = free_port();
    let child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run moto_server ({e}): install it with `pip install 'moto[server]'` or set RIVULET_SKIP_S3_TESTS=1")
        });
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "moto_server did not listen on 127.0.0.1:{port} within 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    let created = http(
        port,
        &format!("PUT /ckpt HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
    )
    .unwrap();
    assert!(created.starts_with("HTTP/1.1 200"), "bucket not created: {created}");
    Some((server, port))
}

// Guards the s3:// backend end to end on a real S3 server: open, fencing
// by conditional create, commit with a conditional update of latest,
// restore, GC and a savepoint exported to file://.
#[test]
fn s3_store_round_trip_fencing_and_export() {
    let Some((_server, port)) = start_moto() else { return };
    // The only test of this binary that reads AWS_* variables.
    std::env::set_var("AWS_ENDPOINT", format!("http://127.0.0.1:{port}"));
    std::env::set_var("AWS_ALLOW_HTTP", "true");
    std::env::set_var("AWS_ACCESS_KEY_ID", "test");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
    std::env::set_var("AWS_DEFAULT_REGION", "us-east-1");
    let url = "s3://ckpt/cluster/a";
    let store = CheckpointStore::open(url, "j").unwrap();
    let other = CheckpointStore::open(url, "j").unwrap();
    let g = store.claim_generation().unwrap();
    let key = |kg: u16, k: u8| vec![(kg >> 8) as u8, kg as u8, 0, k];
    for e in 1..=3u64 {
        let entries = [
            Entry { key: key(1, e as u8), value: Some(vec![e as u8]) },
            Entry { key: key(2, 0), value: Some(vec![e as u8]) },
        ];
        let d = store.put_delta(g, e, KeyGroups::new(0, 3).unwrap(), &entries).unwrap();
        store.commit_epoch(g, e, vec![d], vec![]).unwrap();
    }
    store.materialise(1, 2).unwrap();
    let want = store.restore(KeyGroups::new(0, 3).unwrap(), 3).unwrap();
    assert_eq!(want.len(), 4);
    assert_eq!(other.claim_generation().unwrap(), g + 1);
    assert!(matches!(store.commit_epoch(g, 4, vec![], vec![]), Err(Error::Fenced { .. })));
    assert_eq!(other.latest().unwrap(), Some(Committed { epoch: 3, generation: g }));
    other.commit_epoch(g + 1, 4, vec![], vec![]).unwrap();
    other.gc(&[3]).unwrap();
    assert_eq!(other.restore(KeyGroups::new(0, 3).unwrap(), 3).unwrap(), want);
    let dir = tempfile::tempdir().unwrap();
    let to = format!("file://{}", dir.path().display());
    other.export(3, &to).unwrap();
    let copy = CheckpointStore::open(&to, "j").unwrap();
    assert_eq!(copy.restore(KeyGroups::new(0, 3).unwrap(), 3).unwrap(), want);
}
