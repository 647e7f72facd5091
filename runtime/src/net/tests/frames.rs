//! The wire format: round trips and malformed input.

use super::*;
use crate::net::frame::{self, Kind, MAX_BODY};
use proptest::prelude::*;
use std::io::{Cursor, Write};

fn tcp_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let a = TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
    let (b, _) = l.accept().expect("accept");
    (a, b)
}

#[test]
fn every_kind_round_trips_over_tcp() {
    // Guards: each frame kind keeps its header fields and body across a real socket.
    let (mut a, mut b) = tcp_pair();
    let data: Message<(u32, f64)> = Message::Data(recs(5, 1000));
    let msgs: Vec<Message<(u32, f64)>> =
        vec![data, Message::Watermark(-17), Message::Barrier { epoch: u64::MAX, last: true }, Message::End];
    for (i, m) in msgs.iter().enumerate() {
        a.write_all(&frame::encode_message(m, 0xdead_beef, 9 + i as u64).expect("encode")).expect("write");
    }
    a.write_all(&frame::encode(Kind::Credit, 77, 3, &12u32).expect("encode")).expect("write");
    a.write_all(&frame::encode(Kind::Heartbeat, 0, 3, &()).expect("encode")).expect("write");
    a.write_all(&frame::encode(Kind::Close, 0, 3, &()).expect("encode")).expect("write");
    for (i, m) in msgs.iter().enumerate() {
        let f = frame::read(&mut b, "p").expect("read");
        assert_eq!((f.edge, f.generation), (0xdead_beef, 9 + i as u64));
        let back: Message<(u32, f64)> = frame::decode_message(&f, "p").expect("decode");
        assert_eq!(show(&back), show(m));
    }
    let f = frame::read(&mut b, "p").expect("credit");
    assert_eq!((f.kind, f.edge, frame::decode_body::<u32>(&f, "p").expect("n")), (Kind::Credit, 77, 12));
    assert_eq!(frame::read(&mut b, "p").expect("heartbeat").kind, Kind::Heartbeat);
    assert_eq!(frame::read(&mut b, "p").expect("close").kind, Kind::Close);
    drop(a);
    assert!(matches!(frame::read(&mut b, "p"), Err(NetError::Closed { .. })));
}

#[test]
fn header_is_fixed_width_little_endian() {
    // Guards: the wire layout (no usize, LE) that mixed ARMv7/AArch64 nodes rely on.
    let buf = frame::encode(Kind::Barrier, 0x0102_0304, 0x1122_3344_5566_7788, &(5u64, false)).expect("encode");
    assert_eq!(&buf[..4], &[b'R', b'V', frame::VERSION, 3]);
    assert_eq!(&buf[4..8], &[4, 3, 2, 1]);
    assert_eq!(&buf[8..16], &[0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]);
    assert_eq!(u32::from_le_bytes([buf[16], buf[17], buf[18], buf[19]]) as usize, buf.len() - 20);
}

#[test]
fn oversized_length_is_refused_before_allocating() {
    // Guards: a huge announced length is an error naming the peer, not an allocation.
    for len in [MAX_BODY + 1, u32::MAX] {
        let h = frame::header(Kind::Data, 1, 1, len);
        let e = frame::read(&mut Cursor::new(h.to_vec()), "10.0.0.9:4000").expect_err("too large");
        assert!(matches!(e, NetError::TooLarge { .. }), "{e}");
        assert!(e.to_string().contains("10.0.0.9:4000"));
    }
}

#[test]
fn oversized_batch_is_refused_on_send() {
    // Guards: the sender cannot produce a frame the receiver would refuse.
    let big: Message<Vec<u8>> = Message::Data(vec![Record { ts: 0, wm: 0, value: vec![7u8; MAX_BODY as usize] }]);
    assert!(matches!(frame::encode_message(&big, 1, 1), Err(NetError::TooLarge { .. })));
}

#[test]
fn truncated_body_over_tcp() {
    // Guards: a peer that dies inside a frame gives Truncated, not a hang or panic.
    let (mut a, mut b) = tcp_pair();
    a.write_all(&frame::header(Kind::Data, 1, 1, 100)).expect("write");
    a.write_all(&[0u8; 10]).expect("write");
    drop(a);
    assert!(matches!(frame::read(&mut b, "p"), Err(NetError::Truncated { .. })));
    let (mut a, mut b) = tcp_pair();
    a.write_all(&frame::header(Kind::Data, 1, 1, 100)[..7]).expect("write");
    drop(a);
    assert!(matches!(frame::read(&mut b, "p"), Err(NetError::Truncated { .. })));
}

#[test]
fn bad_magic_version_kind_body() {
    // Guards: each header/body defect has its own typed error.
    let mut h = frame::header(Kind::End, 1, 1, 0);
    h[0] = b'X';
    assert!(matches!(frame::read(&mut Cursor::new(h.to_vec()), "p"), Err(NetError::BadMagic { .. })));
    let mut h = frame::header(Kind::End, 1, 1, 0);
    h[2] = 99;
    assert!(matches!(frame::read(&mut Cursor::new(h.to_vec()), "p"), Err(NetError::Version { found: 99, .. })));
    let mut h = frame::header(Kind::End, 1, 1, 0);
    h[3] = 200;
    assert!(matches!(frame::read(&mut Cursor::new(h.to_vec()), "p"), Err(NetError::UnknownKind { kind: 200, .. })));
    let mut bytes = frame::header(Kind::Data, 1, 1, 3).to_vec();
    bytes.extend_from_slice(&[0xff, 0xff, 0xff]);
    let f = frame::read(&mut Cursor::new(bytes), "p").expect("frame");
    let e = frame::decode_message::<(u32, f64)>(&f, "10.1.1.1:9").expect_err("bad body");
    assert!(matches!(e, NetError::Decode { .. }) && e.to_string().contains("10.1.1.1:9"), "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    // Guards: random bytes never panic the frame reader or the decoders.
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut c = Cursor::new(bytes);
        while let Ok(f) = frame::read(&mut c, "fuzz") {
            let _ = frame::decode_message::<(u32, f64)>(&f, "fuzz");
            let _ = frame::decode_message::<String>(&f, "fuzz");
            let _ = frame::decode_body::<u32>(&f, "fuzz");
        }
    }

    // Guards: a valid header followed by random body bytes never panics.
    #[test]
    fn random_bodies_never_panic(kind in 1u8..8, body in proptest::collection::vec(any::<u8>(), 0..128)) {
        let mut bytes = frame::header(Kind::Data, 1, 1, body.len() as u32).to_vec();
        bytes[3] = kind;
        bytes.extend_from_slice(&body);
        if let Ok(f) = frame::read(&mut Cursor::new(bytes), "fuzz") {
            let _ = frame::decode_message::<(u32, f64)>(&f, "fuzz");
            let _ = frame::decode_message::<Vec<String>>(&f, "fuzz");
        }
    }
}
