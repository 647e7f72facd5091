//! The network exchange's error type.

use std::time::Duration;

/// Why a link, a frame or an edge failed. Every variant names the peer
/// (its socket address) so a task failing on a remote input says which node
/// went away. No variant ever holds the cluster token.
///
/// `Clone`, because one link failure is delivered to every edge's inbox.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// The socket failed (connection reset, refused, broken pipe).
    #[error("link to {peer}: {kind:?}: {message}")]
    Io {
        /// The peer's address.
        peer: String,
        /// What kind of I/O error.
        kind: std::io::ErrorKind,
        /// The operating system's message.
        message: String,
    },
    /// The peer closed the connection (a `Close` frame or end of stream).
    #[error("link to {peer}: the peer closed the connection")]
    Closed {
        /// The peer's address.
        peer: String,
    },
    /// A frame header did not start with Rivulet's magic bytes.
    #[error("link to {peer}: bad frame magic {found:#06x} (not a Rivulet link)")]
    BadMagic {
        /// The peer's address.
        peer: String,
        /// The two bytes found instead of the magic.
        found: u16,
    },
    /// The peer speaks another version of the frame protocol.
    #[error("link to {peer}: frame protocol version {found}, this node speaks {ours}")]
    Version {
        /// The peer's address.
        peer: String,
        /// The version in the peer's frame.
        found: u8,
        /// This build's version.
        ours: u8,
    },
    /// A frame kind this build does not know.
    #[error("link to {peer}: unknown frame kind {kind}")]
    UnknownKind {
        /// The peer's address.
        peer: String,
        /// The kind byte.
        kind: u8,
    },
    /// A frame body longer than [`crate::net::frame::MAX_BODY`]; refused
    /// before anything is allocated for it.
    #[error("link to {peer}: frame body of {len} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// The peer's address (or `local` when this node tried to send it).
        peer: String,
        /// The announced length.
        len: u64,
        /// The maximum.
        max: u32,
    },
    /// The connection ended in the middle of a frame.
    #[error("link to {peer}: truncated frame (connection ended inside a frame)")]
    Truncated {
        /// The peer's address.
        peer: String,
    },
    /// A frame body did not decode as its kind says.
    #[error("link to {peer}: {kind} frame body does not decode: {reason}")]
    Decode {
        /// The peer's address.
        peer: String,
        /// The frame kind.
        kind: &'static str,
        /// The decoder's message.
        reason: String,
    },
    /// The peer broke the protocol (data without credit, a frame for an
    /// edge nobody registered, a newer generation).
    #[error("link to {peer}: protocol violation: {reason}")]
    Protocol {
        /// The peer's address.
        peer: String,
        /// What it did.
        reason: String,
    },
    /// The membership handshake refused the connection, on this side or the
    /// peer's (`by_peer`).
    #[error("link to {peer}: refused{}: {reason}", if *by_peer { " by the peer" } else { "" })]
    Refused {
        /// The peer's address.
        peer: String,
        /// Why.
        reason: super::handshake::Refusal,
        /// The peer refused us (rather than we it).
        by_peer: bool,
    },
    /// Nothing arrived from the peer, not even a heartbeat, for this long.
    #[error("link to {peer}: no frame or heartbeat for {after:?}; the peer is considered dead")]
    HeartbeatTimeout {
        /// The peer's address.
        peer: String,
        /// The timeout that passed.
        after: Duration,
    },
    /// An edge address does not fit the edge id's packing (each part
    /// must be below 256).
    #[error("edge ({src_op}, {src_sub}) -> ({dst_op}, {dst_sub}): every part must be below 256")]
    EdgeOutOfRange {
        /// Source operator index.
        src_op: u32,
        /// Source subtask.
        src_sub: u32,
        /// Destination operator index.
        dst_op: u32,
        /// Destination subtask.
        dst_sub: u32,
    },
    /// The same edge was registered twice on one link.
    #[error("link to {peer}: edge {edge} registered twice")]
    EdgeTaken {
        /// The peer's address.
        peer: String,
        /// The edge id.
        edge: u32,
    },
    /// A local channel's other end is gone: the upstream (or downstream)
    /// task stopped without `End`.
    #[error("local channel: the task at the other end stopped")]
    LocalGone,
}

impl NetError {
    pub(crate) fn io(peer: &str, e: &std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::UnexpectedEof => NetError::Truncated { peer: peer.to_string() },
            kind => NetError::Io { peer: peer.to_string(), kind, message: e.to_string() },
        }
    }
}

impl From<NetError> for crate::Error {
    fn from(e: NetError) -> Self {
        crate::Error::Task { task: "network exchange".into(), reason: e.to_string() }
    }
}
