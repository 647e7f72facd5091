//! `rivulet bench --http`: reads the endpoint while the job runs as the
//! page and a Prometheus server would (every second: `/metrics` and the
//! page's four API documents), so the figure includes serving them.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const PATHS: [&str; 5] = ["/metrics", "/api/v1/job", "/api/v1/results", "/api/v1/checkpoints", "/api/v1/nodes"];

pub(super) struct Reader {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<u64>,
}

impl Reader {
    pub(super) fn start(addr: SocketAddr) -> Reader {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut answered = 0;
            while !s.load(Ordering::Relaxed) {
                let round = Instant::now();
                for p in PATHS {
                    if get(addr, p).is_some() {
                        answered += 1;
                    }
                }
                while round.elapsed() < Duration::from_secs(1) && !s.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            answered
        });
        Reader { stop, thread }
    }

    /// Stops reading; returns how many requests were answered.
    pub(super) fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or(0)
    }
}

fn get(addr: SocketAddr, path: &str) -> Option<()> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut body = Vec::new();
    s.read_to_end(&mut body).ok()?;
    (body.get(8..13) == Some(b" 200 ")).then_some(())
}
