//! Tests of the network exchange over real TCP on 127.0.0.1.

mod dial;
mod frames;
mod handshake;
mod link;

use super::*;
use crate::record::{Message, Record};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

pub(super) const TOKEN: &[u8] = b"s3cret-cluster-token-0123456789";

pub(super) fn cfg(token: Option<&[u8]>, job: &str, hash: u64, generation: u64) -> LinkConfig {
    let mut c = LinkConfig::new(HandshakeConfig {
        identity: Identity { job: job.into(), graph_hash: hash, generation },
        token: token.and_then(ClusterToken::new),
        timeout: Duration::from_secs(10),
    });
    c.heartbeat = Duration::from_millis(100);
    c.timeout = Duration::from_secs(3);
    c
}

pub(super) fn ok_cfg() -> LinkConfig {
    cfg(Some(TOKEN), "sensor-average", 42, 7)
}

/// Both ends of a dial: (dialer, acceptor, dialer metrics, acceptor metrics).
pub(super) type Pair = (Result<Link, NetError>, Result<Link, NetError>, Arc<NetMetrics>, Arc<NetMetrics>);

/// Dials `b` from `a` over a fresh loopback listener; both handshakes run
/// concurrently. Returns (dialer, acceptor) results and metrics.
pub(super) fn pair(a: &LinkConfig, b: &LinkConfig) -> Pair {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = l.local_addr().expect("local addr");
    let (ma, mb) = (Arc::new(NetMetrics::default()), Arc::new(NetMetrics::default()));
    let (b, mb2) = (b.clone(), mb.clone());
    let acceptor = std::thread::spawn(move || {
        let (s, _) = l.accept().expect("accept");
        Link::accept(s, &b, mb2)
    });
    let dialer = Link::dial(addr, a, ma.clone());
    let acc = acceptor.join().expect("acceptor thread");
    (dialer, acc, ma, mb)
}

pub(super) fn links() -> (Link, Link) {
    let (a, b, _, _) = pair(&ok_cfg(), &ok_cfg());
    (a.expect("dialer link"), b.expect("acceptor link"))
}

/// A peer that completed the handshake and then speaks raw bytes: returns
/// the raw stream (dialer side) and the acceptor's link.
pub(super) fn raw_peer(generation: u64) -> (TcpStream, Link, Arc<NetMetrics>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = l.local_addr().expect("local addr");
    let mb = Arc::new(NetMetrics::default());
    let mb2 = mb.clone();
    let acceptor = std::thread::spawn(move || {
        let (s, _) = l.accept().expect("accept");
        Link::accept(s, &cfg(Some(TOKEN), "sensor-average", 42, generation), mb2)
    });
    let mut s = TcpStream::connect(addr).expect("connect");
    let hc = cfg(Some(TOKEN), "sensor-average", 42, generation).handshake;
    crate::net::handshake::handshake(&mut s, Role::Dialer, &hc, &NetMetrics::default()).expect("raw handshake");
    let link = acceptor.join().expect("acceptor thread").expect("acceptor link");
    (s, link, mb)
}

pub(super) fn recs(n: usize, base: i64) -> Vec<Record<(u32, f64)>> {
    (0..n).map(|i| Record { ts: base + i as i64, wm: base - 1, value: (i as u32 % 7, i as f64 * 0.5) }).collect()
}

/// A message in a comparable form.
pub(super) fn show<T: std::fmt::Debug>(m: &Message<T>) -> String {
    format!("{m:?}")
}
