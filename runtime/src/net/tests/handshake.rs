//! Membership: who may open a link.

use super::*;

fn refused(r: Result<Link, NetError>) -> (Refusal, bool) {
    match r {
        Err(NetError::Refused { reason, by_peer, .. }) => (reason, by_peer),
        Err(e) => panic!("expected a refusal, got {e}"),
        Ok(_) => panic!("expected a refusal, got a link"),
    }
}

/// Guards: the token never appears in what a refusal shows.
fn no_token_in(e: &str) {
    let t = std::str::from_utf8(TOKEN).expect("utf8 token");
    assert!(!e.contains(t), "token leaked into {e:?}");
    assert!(!e.contains("s3cret"), "token leaked into {e:?}");
}

#[test]
fn right_token_links() {
    // Guards: two members with the same token, job, graph and generation link.
    let (a, b, ma, mb) = pair(&ok_cfg(), &ok_cfg());
    assert!(a.is_ok() && b.is_ok());
    assert_eq!((ma.refused(), mb.refused()), (0, 0));
}

#[test]
fn wrong_token_refused_and_counted() {
    // Guards: a peer with another token is refused on both ends, counted,
    // and no error text carries either token.
    let other = cfg(Some(b"another-token"), "sensor-average", 42, 7);
    let (a, b, ma, mb) = pair(&other, &ok_cfg());
    let (ra, rb) = (a.err().expect("dialer refused"), b.err().expect("acceptor refused"));
    for e in [&ra, &rb] {
        no_token_in(&e.to_string());
        no_token_in(&format!("{e:?}"));
        assert!(!e.to_string().contains("another-token"));
        assert!(e.to_string().contains("127.0.0.1"), "names the peer: {e}");
    }
    assert!(matches!(rb, NetError::Refused { reason: Refusal::BadToken, by_peer: false, .. }), "{rb}");
    assert_eq!(mb.refused(), 1);
    assert_eq!(ma.refused(), 1);
}

#[test]
fn missing_token_refused_and_counted() {
    // Guards: a peer without a token cannot join a cluster that has one,
    // even on loopback.
    let none = cfg(None, "sensor-average", 42, 7);
    let (a, b, _, mb) = pair(&none, &ok_cfg());
    let (reason, by_peer) = refused(b);
    assert_eq!(reason, Refusal::MissingToken { ours: true, theirs: false });
    assert!(!by_peer);
    assert_eq!(mb.refused(), 1);
    assert!(a.is_err());
}

#[test]
fn no_token_on_loopback_links() {
    // Guards: a tokenless cluster works on loopback (documented exception).
    let none = cfg(None, "sensor-average", 42, 7);
    let (a, b, _, _) = pair(&none, &none);
    assert!(a.is_ok() && b.is_ok());
}

#[test]
fn other_graph_hash_refused() {
    // Guards: a different binary (graph hash differs) is refused with the reason.
    let (a, b, _, mb) = pair(&cfg(Some(TOKEN), "sensor-average", 43, 7), &ok_cfg());
    let (reason, _) = refused(b);
    assert_eq!(reason, Refusal::GraphHash { ours: 42, theirs: 43 });
    let (reason, by_peer) = refused(a);
    assert_eq!(reason, Refusal::GraphHash { ours: 43, theirs: 42 });
    assert!(!by_peer);
    assert_eq!(mb.refused(), 1);
}

#[test]
fn other_job_refused() {
    // Guards: a worker of another job is refused.
    let (_, b, _, mb) = pair(&cfg(Some(TOKEN), "other-job", 42, 7), &ok_cfg());
    let (reason, _) = refused(b);
    assert!(matches!(reason, Refusal::OtherJob { .. }));
    assert!(reason.to_string().contains("other-job"));
    assert_eq!(mb.refused(), 1);
}

#[test]
fn older_generation_refused() {
    // Guards: a process of an older generation (paused, partitioned) cannot
    // link; it learns that it is stale.
    let (a, b, _, mb) = pair(&cfg(Some(TOKEN), "sensor-average", 42, 6), &ok_cfg());
    let (reason, _) = refused(b);
    assert_eq!(reason, Refusal::OlderGeneration { ours: 7, theirs: 6 });
    let (reason, _) = refused(a);
    assert_eq!(reason, Refusal::NewerGeneration { ours: 6, theirs: 7 });
    assert!(reason.to_string().contains("stale"));
    assert_eq!(mb.refused(), 1);
}

#[test]
fn not_a_rivulet_peer_is_an_error() {
    // Guards: garbage instead of a hello is a typed frame error, no panic.
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    let t = std::thread::spawn(move || {
        let (s, _) = l.accept().expect("accept");
        Link::accept(s, &ok_cfg(), Arc::new(NetMetrics::default()))
    });
    let mut s = TcpStream::connect(addr).expect("connect");
    std::io::Write::write_all(&mut s, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
    let r = t.join().expect("thread");
    assert!(matches!(r, Err(NetError::BadMagic { .. })), "{:?}", r.err());
}

#[test]
fn every_refusal_display_is_token_free() {
    // Guards: no refusal reason can carry the token into a log line.
    let all = [
        Refusal::OtherJob { ours: "a".into(), theirs: "b".into() },
        Refusal::GraphHash { ours: 1, theirs: 2 },
        Refusal::OlderGeneration { ours: 2, theirs: 1 },
        Refusal::NewerGeneration { ours: 1, theirs: 2 },
        Refusal::BadToken,
        Refusal::MissingToken { ours: true, theirs: false },
        Refusal::TokenRequired,
        Refusal::Protocol("x".into()),
    ];
    for r in all {
        let e = NetError::Refused { peer: "127.0.0.1:1".into(), reason: r, by_peer: false };
        no_token_in(&e.to_string());
        no_token_in(&format!("{e:?}"));
    }
    let t = ClusterToken::new(TOKEN).expect("token");
    no_token_in(&format!("{t:?}"));
}

#[test]
fn token_file_is_trimmed_and_empty_is_refused() {
    // Guards: a Swarm secret with a trailing newline is the same token; an
    // empty file is refused naming the flag, without quoting any contents.
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("token");
    std::fs::write(&p, [TOKEN, b"\n"].concat()).expect("write");
    let t = ClusterToken::from_file(&p).expect("token");
    assert_eq!(t.bytes(), TOKEN);
    std::fs::write(&p, b" \n").expect("write");
    let e = ClusterToken::from_file(&p).expect_err("empty");
    assert!(e.to_string().contains("--cluster-token-file"), "{e}");
    let missing = ClusterToken::from_file(&dir.path().join("absent")).expect_err("missing");
    assert!(missing.to_string().contains("absent"), "{missing}");
}
