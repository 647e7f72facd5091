//! Links: multiplexing, ordering, credit flow, failures.

use super::*;
use crate::net::frame::{self, Kind};
use proptest::prelude::*;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

type R = (u32, f64);
const WAIT: Duration = Duration::from_secs(20);

fn next(inbox: &mut RemoteInbox<R>) -> Message<R> {
    match inbox.recv_timeout(WAIT) {
        Ok(Some(m)) => m,
        Ok(None) => panic!("nothing arrived within {WAIT:?}"),
        Err(e) => panic!("link error: {e}"),
    }
}

fn edge(i: u32) -> EdgeId {
    EdgeId::new(1, i, 2, i).expect("edge id")
}

#[test]
fn edge_ids_pack_exactly() {
    // Guards: both ends derive the same id, and out-of-range parts are refused.
    let e = EdgeId::new(3, 250, 4, 7).expect("id");
    assert_eq!(e.0, 0x03fa_0407);
    assert_eq!(e.parts(), (3, 250, 4, 7));
    assert_eq!(e.to_string(), "3.250->4.7");
    assert!(matches!(EdgeId::new(256, 0, 0, 0), Err(NetError::EdgeOutOfRange { .. })));
}

#[test]
fn every_message_round_trips_both_ways() {
    // Guards: data, watermark, barrier and end cross a link intact, in both directions.
    let (a, b) = links();
    let msgs = || -> Vec<Message<R>> {
        vec![
            Message::Data(recs(3, 10)),
            Message::Watermark(9),
            Message::Barrier { epoch: 4, last: false },
            Message::End,
        ]
    };
    let (ab_out, ba_out) = (a.outbox::<R>(edge(0)).expect("out"), b.outbox::<R>(edge(1)).expect("out"));
    let (mut ab_in, mut ba_in) = (b.inbox::<R>(edge(0), 8).expect("in"), a.inbox::<R>(edge(1), 8).expect("in"));
    for m in msgs() {
        ab_out.send(&m).expect("send a->b");
        ba_out.send(&m).expect("send b->a");
    }
    for m in msgs() {
        assert_eq!(show(&next(&mut ab_in)), show(&m));
        assert_eq!(show(&next(&mut ba_in)), show(&m));
    }
}

#[test]
fn local_and_remote_edges_are_the_same_types() {
    // Guards: operator code drives Outbox/Inbox without knowing where the other end is.
    let (a, b) = links();
    let (ltx, lrx) = crossbeam_channel::bounded(4);
    let outs = [Outbox::Local(ltx), Outbox::Remote(a.outbox::<R>(edge(0)).expect("out"))];
    let mut ins = [Inbox::Local(lrx), Inbox::Remote(b.inbox::<R>(edge(0), 4).expect("in"))];
    for o in &outs {
        o.send(Message::Data(recs(2, 0))).expect("send");
        o.send(Message::End).expect("send");
    }
    for i in &mut ins {
        assert_eq!(show(&i.recv().expect("data")), show(&Message::Data(recs(2, 0))));
        assert!(matches!(i.recv_timeout(WAIT), Ok(Some(Message::End))));
    }
}

#[test]
fn duplicate_edge_registration_is_refused() {
    // Guards: one edge has one sender and one inbox per link.
    let (a, _b) = links();
    let _o = a.outbox::<R>(edge(0)).expect("first");
    assert!(matches!(a.outbox::<R>(edge(0)), Err(NetError::EdgeTaken { .. })));
    let _i = a.inbox::<R>(edge(0), 1).expect("first inbox");
    assert!(matches!(a.inbox::<R>(edge(0), 1), Err(NetError::EdgeTaken { .. })));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    // Guards: any batch sequence arrives complete and in order per edge,
    // with edges interleaved on one connection and tight credits.
    #[test]
    fn batches_arrive_in_order_per_edge(
        seqs in proptest::collection::vec(proptest::collection::vec(0usize..40, 0..30), 1..4),
        credits in 1u32..4,
    ) {
        let (a, b) = links();
        let mut senders = Vec::new();
        for (i, seq) in seqs.iter().enumerate() {
            let out = a.outbox::<R>(edge(i as u32)).expect("out");
            let seq = seq.clone();
            senders.push(std::thread::spawn(move || {
                let mut ts = 0i64;
                for n in seq {
                    out.send(&Message::Data(recs(n, ts))).expect("send");
                    ts += n as i64;
                }
                out.send(&Message::End).expect("end");
            }));
        }
        let mut inboxes: Vec<_> = (0..seqs.len()).map(|i| b.inbox::<R>(edge(i as u32), credits).expect("in")).collect();
        for (i, seq) in seqs.iter().enumerate() {
            let mut ts = 0i64;
            for &n in seq {
                let m = next(&mut inboxes[i]);
                prop_assert_eq!(show(&m), show(&Message::Data(recs(n, ts))));
                ts += n as i64;
            }
            prop_assert!(matches!(next(&mut inboxes[i]), Message::End));
        }
        for s in senders {
            s.join().expect("sender thread");
        }
    }
}

#[test]
fn stalled_edge_does_not_block_a_barrier_on_another() {
    // Guards: no head-of-line blocking. A consumer aligning a barrier stops
    // reading edge A while A's producer has far more than A's credits to
    // send; edge B's barrier must still arrive over the same connection.
    let (a, b) = links();
    let (out_a, out_b) = (a.outbox::<R>(edge(0)).expect("out"), a.outbox::<R>(edge(1)).expect("out"));
    let mut in_a = b.inbox::<R>(edge(0), 2).expect("in");
    let mut in_b = b.inbox::<R>(edge(1), 2).expect("in");
    let sent_a = Arc::new(AtomicUsize::new(0));
    let sa = sent_a.clone();
    let pa = std::thread::spawn(move || {
        for i in 0..200 {
            out_a.send(&Message::Data(recs(50, i * 50))).expect("send a");
            sa.fetch_add(1, Ordering::SeqCst);
        }
        out_a.send(&Message::Barrier { epoch: 1, last: false }).expect("barrier a");
    });
    let pb = std::thread::spawn(move || {
        for i in 0..20 {
            out_b.send(&Message::Data(recs(50, i * 50))).expect("send b");
        }
        out_b.send(&Message::Barrier { epoch: 1, last: false }).expect("barrier b");
    });
    let start = Instant::now();
    let mut got = 0;
    loop {
        match next(&mut in_b) {
            Message::Data(_) => got += 1,
            Message::Barrier { epoch: 1, .. } => break,
            m => panic!("unexpected {}", show(&m)),
        }
        assert!(start.elapsed() < WAIT, "edge B's barrier did not arrive: deadlock");
    }
    assert_eq!(got, 20);
    pb.join().expect("producer b");
    // A's producer is held back by credit, not finished.
    assert!(sent_a.load(Ordering::SeqCst) < 200);
    let mut n = 0;
    loop {
        match next(&mut in_a) {
            Message::Data(_) => n += 1,
            Message::Barrier { .. } => break,
            m => panic!("unexpected {}", show(&m)),
        }
    }
    assert_eq!(n, 200);
    pa.join().expect("producer a");
}

#[test]
fn producer_blocks_without_credit_and_resumes() {
    // Guards: backpressure crosses the link: with 3 credits the 4th send
    // blocks until the consumer reads, then everything arrives.
    let (a, b) = links();
    let out = a.outbox::<R>(edge(0)).expect("out");
    let mut inbox = b.inbox::<R>(edge(0), 3).expect("in");
    let sent = Arc::new(AtomicUsize::new(0));
    let s2 = sent.clone();
    let p = std::thread::spawn(move || {
        for i in 0..10 {
            out.send(&Message::Watermark(i)).expect("send");
            s2.fetch_add(1, Ordering::SeqCst);
        }
    });
    let start = Instant::now();
    while sent.load(Ordering::SeqCst) < 3 {
        assert!(start.elapsed() < WAIT, "the first 3 sends never completed");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Give a wrongly unblocked producer time to overshoot.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(sent.load(Ordering::SeqCst), 3, "sent beyond the granted credit");
    for i in 0..10 {
        assert!(matches!(next(&mut inbox), Message::Watermark(w) if w == i));
    }
    p.join().expect("producer");
    assert_eq!(sent.load(Ordering::SeqCst), 10);
}

#[test]
fn dropped_peer_fails_inboxes_and_blocked_senders() {
    // Guards: a peer whose connection drops (as after kill -9) fails every
    // inbox and wakes a sender blocked on credit, promptly and with a typed error.
    let (raw, link, metrics) = raw_peer(7);
    let mut i0 = link.inbox::<R>(edge(0), 2).expect("in");
    let mut i1 = link.inbox::<R>(edge(1), 2).expect("in");
    let out = link.outbox::<R>(edge(2)).expect("out");
    let blocked = std::thread::spawn(move || out.send(&Message::End));
    std::thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    drop(raw);
    for i in [&mut i0, &mut i1] {
        let e = i.recv_timeout(WAIT).expect_err("link must fail");
        assert!(e.to_string().contains("127.0.0.1"), "names the peer: {e}");
    }
    assert!(blocked.join().expect("sender thread").is_err());
    assert!(start.elapsed() < Duration::from_secs(5), "failure took {:?}", start.elapsed());
    assert_eq!(metrics.link_failures(), 1);
    assert!(link.failure().is_some());
    // Edges opened after the failure fail at once instead of waiting forever.
    assert!(link.inbox::<R>(edge(5), 1).is_err());
    assert!(link.outbox::<R>(edge(6)).expect("out").send(&Message::End).is_err());
}

#[test]
fn silent_peer_times_out() {
    // Guards: a peer that stops sending anything (frozen, partitioned)
    // ends the link with HeartbeatTimeout after the configured timeout.
    let (_raw, link, _) = raw_peer(7);
    let mut inbox = link.inbox::<R>(edge(0), 2).expect("in");
    let e = inbox.recv_timeout(WAIT).expect_err("must time out");
    assert!(matches!(e, NetError::HeartbeatTimeout { .. }), "{e}");
}

#[test]
fn live_peers_keep_the_link_up_with_heartbeats() {
    // Guards: idle but healthy links are not timed out (heartbeats flow).
    let (a, b) = links();
    let mut inbox = b.inbox::<R>(edge(0), 2).expect("in");
    let out = a.outbox::<R>(edge(0)).expect("out");
    assert!(matches!(inbox.recv_timeout(Duration::from_secs(4)), Ok(None)));
    out.send(&Message::End).expect("send after idle");
    assert!(matches!(next(&mut inbox), Message::End));
    assert!(a.failure().is_none() && b.failure().is_none());
}

#[test]
fn older_generation_frames_are_dropped_and_counted() {
    // Guards: fencing: a frame from an older generation never reaches a task.
    let (mut raw, link, metrics) = raw_peer(7);
    let mut inbox = link.inbox::<R>(edge(0), 4).expect("in");
    raw.write_all(&frame::encode_message::<R>(&Message::Watermark(1), edge(0).0, 6).expect("enc")).expect("w");
    raw.write_all(&frame::encode_message::<R>(&Message::Watermark(2), edge(0).0, 7).expect("enc")).expect("w");
    assert!(matches!(next(&mut inbox), Message::Watermark(2)));
    assert_eq!(metrics.stale_frames(), 1);
}

#[test]
fn newer_generation_frame_fails_the_link() {
    // Guards: a frame from a newer generation means this node is stale: it stops.
    let (mut raw, link, _) = raw_peer(7);
    let mut inbox = link.inbox::<R>(edge(0), 4).expect("in");
    raw.write_all(&frame::encode_message::<R>(&Message::End, edge(0).0, 8).expect("enc")).expect("w");
    let e = inbox.recv_timeout(WAIT).expect_err("must fail");
    assert!(matches!(e, NetError::Protocol { .. }) && e.to_string().contains("stale"), "{e}");
}

#[test]
fn malformed_frames_fail_the_link_with_typed_errors() {
    // Guards: garbage, an oversized length or a frame for an unknown edge on
    // a live link fail every inbox with a typed error; nothing panics.
    let bad: Vec<Vec<u8>> = vec![
        b"\x00\x01garbage-garbage-garbage".to_vec(),
        frame::header(Kind::Data, edge(0).0, 7, u32::MAX).to_vec(),
        frame::encode_message::<R>(&Message::End, edge(9).0, 7).expect("enc"),
        frame::encode(Kind::Hello, 0, 7, &()).expect("enc"),
    ];
    for bytes in bad {
        let (mut raw, link, metrics) = raw_peer(7);
        let mut inbox = link.inbox::<R>(edge(0), 4).expect("in");
        raw.write_all(&bytes).expect("w");
        let e = inbox.recv_timeout(WAIT).expect_err("must fail");
        assert!(matches!(e, NetError::BadMagic { .. } | NetError::TooLarge { .. } | NetError::Protocol { .. }), "{e}");
        assert_eq!(metrics.link_failures(), 1);
    }
}

#[test]
fn undecodable_body_is_an_error_for_its_edge() {
    // Guards: a data body that does not decode as the edge's type is a Decode error naming the peer.
    let (mut raw, link, _) = raw_peer(7);
    let mut inbox = link.inbox::<R>(edge(0), 4).expect("in");
    raw.write_all(&frame::encode(Kind::Data, edge(0).0, 7, &vec![String::from("x")]).expect("enc")).expect("w");
    let e = inbox.recv_timeout(WAIT).expect_err("must not decode");
    assert!(matches!(e, NetError::Decode { .. }) && e.to_string().contains("127.0.0.1"), "{e}");
}

#[test]
fn graceful_close_delivers_queued_messages_first() {
    // Guards: dropping a link after End does not lose what was sent.
    let (a, b) = links();
    let out = a.outbox::<R>(edge(0)).expect("out");
    let mut inbox = b.inbox::<R>(edge(0), 8).expect("in");
    let start = Instant::now();
    while out.credits() < 8 {
        assert!(start.elapsed() < WAIT, "initial credit never arrived");
        std::thread::sleep(Duration::from_millis(5));
    }
    out.send(&Message::Data(recs(4, 0))).expect("send");
    out.send(&Message::End).expect("send");
    drop(out);
    drop(a);
    assert!(matches!(next(&mut inbox), Message::Data(_)));
    assert!(matches!(next(&mut inbox), Message::End));
    assert!(matches!(inbox.recv_timeout(WAIT), Err(NetError::Closed { .. })));
}

const CHILD_ENV: &str = "RIVULET_NET_CHILD_DIAL";
/// The emulator that runs this test binary, when it is not native (set by
/// cross/test.sh), so the peer process runs the same way.
const RUNNER_ENV: &str = "RIVULET_TEST_RUNNER";

#[test]
#[ignore = "helper process: started (with --ignored) by killed_peer_process_fails_inboxes"]
fn child_peer() {
    // The peer process for killed_peer_process_fails_inboxes: dials, sends
    // one watermark and waits to be killed.
    let addr = std::env::var(CHILD_ENV).expect("run by killed_peer_process_fails_inboxes, which sets the address");
    let link = Link::dial(addr.parse().expect("address"), &ok_cfg(), Arc::new(NetMetrics::default())).expect("dial");
    let out = link.outbox::<R>(edge(0)).expect("out");
    out.send(&Message::Watermark(1)).expect("send");
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn killed_peer_process_fails_inboxes() {
    // Guards: a peer process killed with SIGKILL fails this side's inboxes
    // promptly (well before the heartbeat timeout would).
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    let exe = std::env::current_exe().expect("test binary");
    // Under an emulator (cross/test.sh runs ARM tests under qemu-user, with
    // no binfmt registration) the test binary cannot exec itself: the
    // emulator is given as RIVULET_TEST_RUNNER and runs the peer too.
    let mut cmd = match std::env::var_os(RUNNER_ENV) {
        Some(runner) if !runner.is_empty() => {
            let mut c = std::process::Command::new(runner);
            c.arg(exe);
            c
        }
        _ => std::process::Command::new(exe),
    };
    let mut child = cmd
        .args(["--exact", "net::tests::link::child_peer", "--ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, addr.to_string())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn the peer process");
    // Never wait forever: a peer that exits before it dials fails the test.
    l.set_nonblocking(true).expect("nonblocking listener");
    let deadline = Instant::now() + Duration::from_secs(60);
    let s = loop {
        match l.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if let Some(st) = child.try_wait().expect("peer status") {
                    panic!("the peer process exited ({st}) before it dialled; under an emulator set {RUNNER_ENV}");
                }
                assert!(Instant::now() < deadline, "the peer process did not dial within 60 s");
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("accept: {e}"),
        }
    };
    s.set_nonblocking(false).expect("blocking stream");
    let mut cfg = ok_cfg();
    cfg.timeout = Duration::from_secs(30);
    let link = Link::accept(s, &cfg, Arc::new(NetMetrics::default())).expect("link");
    let mut inbox = link.inbox::<R>(edge(0), 2).expect("in");
    assert!(matches!(next(&mut inbox), Message::Watermark(1)));
    let start = Instant::now();
    child.kill().expect("kill -9 the peer");
    child.wait().expect("reap");
    let e = inbox.recv_timeout(WAIT).expect_err("the link must fail");
    assert!(start.elapsed() < Duration::from_secs(5), "failure took {:?}: {e}", start.elapsed());
    assert!(!matches!(e, NetError::HeartbeatTimeout { .. }), "{e}");
}
