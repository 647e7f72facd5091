//! Frames: what one link carries, byte for byte.
//!
//! Every frame is a fixed 20-byte little-endian header followed by a
//! postcard body:
//!
//! | bytes | field      | type | meaning                                  |
//! |-------|------------|------|------------------------------------------|
//! | 0..2  | magic      | u16  | [`MAGIC`] (`RV`)                         |
//! | 2     | version    | u8   | [`VERSION`]                              |
//! | 3     | kind       | u8   | [`Kind`]                                 |
//! | 4..8  | edge       | u32  | [`crate::net::EdgeId`], 0 for link frames |
//! | 8..16 | generation | u64  | the sender's job generation              |
//! | 16..20| length     | u32  | body length, at most [`MAX_BODY`]        |
//!
//! No `usize` is ever written, so ARMv7 and AArch64 nodes read each other.
//! The length is checked against [`MAX_BODY`] before any buffer is
//! allocated, so a hostile or corrupt length cannot exhaust memory.

use super::error::NetError;
use crate::record::{Message, Record};
use serde::de::DeserializeOwned;
use serde::ser::{Serialize, SerializeSeq, Serializer};
use std::io::{ErrorKind, Read};

/// The first two header bytes of every frame (`"RV"` read as little-endian).
pub const MAGIC: u16 = u16::from_le_bytes(*b"RV");
/// The frame protocol version this build speaks.
pub const VERSION: u8 = 1;
/// Size of the fixed header in bytes.
pub const HEADER_LEN: usize = 20;
/// Largest body a frame may carry: 8 MiB. A data batch that encodes larger
/// is refused on the sending side ([`NetError::TooLarge`]); split it.
pub const MAX_BODY: u32 = 8 << 20;

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// A batch of records of one edge.
    Data = 1,
    /// A watermark of one edge (body: i64).
    Watermark = 2,
    /// A checkpoint barrier of one edge (body: epoch u64, last bool).
    Barrier = 3,
    /// The edge is finished.
    End = 4,
    /// The receiver of an edge grants the sender more messages (body: n u32).
    Credit = 5,
    /// The link is alive (no body).
    Heartbeat = 6,
    /// The sender is closing the link (no body).
    Close = 7,
    /// Handshake: identity and nonce.
    Hello = 16,
    /// Handshake: the HMAC proof of the token.
    Proof = 17,
    /// Handshake: accepted or refused, with the reason.
    Verdict = 18,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Data,
            2 => Kind::Watermark,
            3 => Kind::Barrier,
            4 => Kind::End,
            5 => Kind::Credit,
            6 => Kind::Heartbeat,
            7 => Kind::Close,
            16 => Kind::Hello,
            17 => Kind::Proof,
            18 => Kind::Verdict,
            _ => return None,
        })
    }

    /// The kind's name, for errors and logs.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Data => "data",
            Kind::Watermark => "watermark",
            Kind::Barrier => "barrier",
            Kind::End => "end",
            Kind::Credit => "credit",
            Kind::Heartbeat => "heartbeat",
            Kind::Close => "close",
            Kind::Hello => "hello",
            Kind::Proof => "proof",
            Kind::Verdict => "verdict",
        }
    }
}

/// One frame as read from the wire; the body is still encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// What it carries.
    pub kind: Kind,
    /// The edge it belongs to (0 for link-level frames).
    pub edge: u32,
    /// The sender's generation.
    pub generation: u64,
    /// The postcard body.
    pub body: Vec<u8>,
}

/// Encodes a frame with a postcard body into one buffer ready to write.
pub fn encode<B: Serialize + ?Sized>(kind: Kind, edge: u32, generation: u64, body: &B) -> Result<Vec<u8>, NetError> {
    let mut buf = Vec::with_capacity(64);
    buf.extend_from_slice(&[0u8; HEADER_LEN]);
    let mut buf = postcard::to_extend(body, buf).map_err(|e| NetError::Decode {
        peer: "local".into(),
        kind: kind.name(),
        reason: format!("cannot encode: {e}"),
    })?;
    let len = buf.len() - HEADER_LEN;
    let Ok(len32) = u32::try_from(len) else {
        return Err(NetError::TooLarge { peer: "local".into(), len: len as u64, max: MAX_BODY });
    };
    if len32 > MAX_BODY {
        return Err(NetError::TooLarge { peer: "local".into(), len: len as u64, max: MAX_BODY });
    }
    buf[..HEADER_LEN].copy_from_slice(&header(kind, edge, generation, len32));
    Ok(buf)
}

/// The 20 header bytes of a frame.
pub fn header(kind: Kind, edge: u32, generation: u64, len: u32) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..2].copy_from_slice(&MAGIC.to_le_bytes());
    h[2] = VERSION;
    h[3] = kind as u8;
    h[4..8].copy_from_slice(&edge.to_le_bytes());
    h[8..16].copy_from_slice(&generation.to_le_bytes());
    h[16..20].copy_from_slice(&len.to_le_bytes());
    h
}

/// Reads one frame. A clean end of stream before the first header byte is
/// [`NetError::Closed`]; an end inside a frame is [`NetError::Truncated`].
pub fn read<R: Read>(r: &mut R, peer: &str) -> Result<Frame, NetError> {
    let mut h = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < HEADER_LEN {
        match r.read(&mut h[got..]) {
            Ok(0) if got == 0 => return Err(NetError::Closed { peer: peer.to_string() }),
            Ok(0) => return Err(NetError::Truncated { peer: peer.to_string() }),
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(NetError::io(peer, &e)),
        }
    }
    let magic = u16::from_le_bytes([h[0], h[1]]);
    if magic != MAGIC {
        return Err(NetError::BadMagic { peer: peer.to_string(), found: magic });
    }
    if h[2] != VERSION {
        return Err(NetError::Version { peer: peer.to_string(), found: h[2], ours: VERSION });
    }
    let Some(kind) = Kind::from_u8(h[3]) else {
        return Err(NetError::UnknownKind { peer: peer.to_string(), kind: h[3] });
    };
    let edge = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    let generation = u64::from_le_bytes([h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15]]);
    let len = u32::from_le_bytes([h[16], h[17], h[18], h[19]]);
    if len > MAX_BODY {
        return Err(NetError::TooLarge { peer: peer.to_string(), len: u64::from(len), max: MAX_BODY });
    }
    // Checked above: at most MAX_BODY bytes, so this allocation is bounded.
    let mut body = vec![0u8; len as usize];
    r.read_exact(&mut body).map_err(|e| NetError::io(peer, &e))?;
    Ok(Frame { kind, edge, generation, body })
}

/// Decodes a whole body; trailing bytes are an error.
pub fn decode_body<B: DeserializeOwned>(frame: &Frame, peer: &str) -> Result<B, NetError> {
    let err = |reason: String| NetError::Decode { peer: peer.to_string(), kind: frame.kind.name(), reason };
    let (v, rest) = postcard::take_from_bytes(&frame.body).map_err(|e| err(e.to_string()))?;
    if !rest.is_empty() {
        return Err(err(format!("{} trailing bytes", rest.len())));
    }
    Ok(v)
}

/// A batch serialised as a sequence of `(ts, wm, value)` without copying it.
struct Batch<'a, T>(&'a [Record<T>]);

impl<T: Serialize> Serialize for Batch<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for r in self.0 {
            seq.serialize_element(&(r.ts, r.wm, &r.value))?;
        }
        seq.end()
    }
}

/// Encodes a message of an edge as one frame.
pub fn encode_message<T: Serialize>(msg: &Message<T>, edge: u32, generation: u64) -> Result<Vec<u8>, NetError> {
    match msg {
        Message::Data(recs) => encode(Kind::Data, edge, generation, &Batch(recs)),
        Message::Watermark(w) => encode(Kind::Watermark, edge, generation, w),
        Message::Barrier { epoch, last } => encode(Kind::Barrier, edge, generation, &(*epoch, *last)),
        Message::End => encode(Kind::End, edge, generation, &()),
    }
}

/// Decodes an edge frame (data, watermark, barrier, end) into a message.
pub fn decode_message<T: DeserializeOwned>(frame: &Frame, peer: &str) -> Result<Message<T>, NetError> {
    Ok(match frame.kind {
        Kind::Data => {
            let v: Vec<(i64, i64, T)> = decode_body(frame, peer)?;
            Message::Data(v.into_iter().map(|(ts, wm, value)| Record { ts, wm, value }).collect())
        }
        Kind::Watermark => Message::Watermark(decode_body(frame, peer)?),
        Kind::Barrier => {
            let (epoch, last): (u64, bool) = decode_body(frame, peer)?;
            Message::Barrier { epoch, last }
        }
        Kind::End => {
            decode_body::<()>(frame, peer)?;
            Message::End
        }
        other => {
            return Err(NetError::Protocol {
                peer: peer.to_string(),
                reason: format!("a {} frame on an edge", other.name()),
            })
        }
    })
}
