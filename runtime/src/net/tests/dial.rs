//! Dialing by name: every address tried, each connect bounded.

use super::*;
use crate::net::dial::{connect_any, resolve};
use std::io::ErrorKind;
use std::net::SocketAddr;

/// A loopback address nobody listens on.
fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    l.local_addr().expect("local addr")
}

/// A loopback listener that answers no further connection: its accept
/// queue (backlog 0) is full, so the kernel drops the SYNs, as a host
/// that has gone away would. Returns it with the connections filling it.
fn silent_listener() -> (socket2::Socket, SocketAddr, Vec<TcpStream>) {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    s.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into()).expect("bind loopback");
    s.listen(0).expect("listen");
    let addr = s.local_addr().expect("local addr").as_socket().expect("an IP address");
    let mut filling = Vec::new();
    for _ in 0..16 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
            Ok(c) => filling.push(c),
            Err(e) if e.kind() == ErrorKind::TimedOut => return (s, addr, filling),
            Err(e) => panic!("filling the accept queue: {e}"),
        }
    }
    panic!("the kernel kept accepting connections on a listener with backlog 0: cannot make a silent address");
}

#[test]
fn a_connect_to_an_address_that_does_not_answer_gives_up() {
    // Guards the worker's reconnect: an address nobody answers on any more
    // (a restarted Swarm task's old IP) fails the attempt after the
    // connect timeout instead of waiting out the kernel's SYN retries.
    let (_listener, silent, _filling) = silent_listener();
    match connect_any(&[silent], Duration::from_millis(300)) {
        Err(NetError::Io { kind: ErrorKind::TimedOut, peer, .. }) => assert_eq!(peer, silent.to_string()),
        Err(e) => panic!("expected a connect timeout, got {e}"),
        Ok(_) => panic!("connected to a listener whose accept queue is full"),
    }
}

#[test]
fn every_address_is_tried_in_order() {
    // Guards the worker's reconnect: a name resolving to several addresses
    // (stale ones first) still reaches the one that is up.
    let (_listener, silent, _filling) = silent_listener();
    let live = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let up = live.local_addr().expect("local addr");
    let (stream, at) =
        connect_any(&[closed_port(), silent, up], Duration::from_millis(300)).expect("the third address is up");
    assert_eq!(at, up);
    assert_eq!(stream.peer_addr().expect("peer"), up);
    let (_, from) = live.accept().expect("accept");
    assert_eq!(from, stream.local_addr().expect("local"));
}

#[test]
fn a_link_is_dialed_by_name() {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let port = l.local_addr().expect("local addr").port();
    let acceptor = std::thread::spawn(move || {
        let (s, _) = l.accept().expect("accept");
        Link::accept(s, &ok_cfg(), Arc::new(NetMetrics::default()))
    });
    let target = format!("localhost:{port}");
    assert!(resolve(&target, Duration::from_secs(5)).expect("localhost resolves").iter().all(|a| a.port() == port));
    let link = Link::dial_name(&target, &ok_cfg(), Arc::new(NetMetrics::default()));
    let accepted = acceptor.join().expect("acceptor thread");
    assert!(link.is_ok() && accepted.is_ok(), "dial {:?}, accept {:?}", link.err(), accepted.err());
}

#[test]
fn no_address_answering_is_the_last_error() {
    let closed = closed_port();
    match Link::dial_name(&closed.to_string(), &ok_cfg(), Arc::new(NetMetrics::default())) {
        Err(NetError::Io { kind: ErrorKind::ConnectionRefused, peer, .. }) => assert_eq!(peer, closed.to_string()),
        other => panic!("expected the connection to be refused, got {:?}", other.err()),
    }
}
