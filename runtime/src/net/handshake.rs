//! Membership: the handshake every link starts with.
//!
//! Both ends send a `Hello` (job name, graph hash, generation, whether they
//! hold a token, and a fresh 32-byte random nonce), check the other's
//! identity, then each sends a `Proof`: HMAC-SHA256 keyed by the cluster
//! token over a label, its own role (dialer or acceptor), its nonce, the
//! peer's nonce and the identity. Each verifies the other's proof in
//! constant time, then both send a `Verdict`. The token itself never
//! crosses the wire, and because each proof covers both fresh nonces and the
//! sender's role, a recorded or reflected proof is useless.
//!
//! Refused, with the reason sent to the peer, logged and counted in
//! [`NetMetrics::refused`]: another job, another graph hash (a different
//! binary or config), another generation (older: a stale process; newer:
//! this process is the stale one), a wrong token, a token on one side only.
//! Running without a token is allowed only when both ends hold none and
//! both the local and the peer address are loopback (a single machine,
//! tests and development).

use super::error::NetError;
use super::frame::{self, Kind};
use super::metrics::NetMetrics;
use super::token::ClusterToken;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

const LABEL: &[u8] = b"rivulet-link-v1";

/// What a node is a member of; both ends of a link must agree on all of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The job's name.
    pub job: String,
    /// A hash of the job's logical graph: differs between binaries or
    /// configs that would build different graphs.
    pub graph_hash: u64,
    /// The job's generation (bumped on every restart by the coordinator).
    pub generation: u64,
}

/// Which end of the connection this node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// This node connected.
    Dialer,
    /// This node accepted.
    Acceptor,
}

impl Role {
    fn byte(self) -> u8 {
        match self {
            Role::Dialer => 1,
            Role::Acceptor => 2,
        }
    }
    fn other(self) -> Role {
        match self {
            Role::Dialer => Role::Acceptor,
            Role::Acceptor => Role::Dialer,
        }
    }
}

/// Why a handshake was refused. Sent to the peer and shown in errors and
/// logs; never contains the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The peer belongs to another job.
    #[error("other job: this node runs {ours:?}, the peer {theirs:?}")]
    OtherJob {
        /// This node's job.
        ours: String,
        /// The peer's job.
        theirs: String,
    },
    /// The peer builds another job graph.
    #[error("different job graph (hash {ours:#018x} here, {theirs:#018x} at the peer): a different binary or config")]
    GraphHash {
        /// This node's graph hash.
        ours: u64,
        /// The peer's graph hash.
        theirs: u64,
    },
    /// The peer is at an older generation: a stale process.
    #[error("older generation: the peer is at generation {theirs}, this node at {ours}")]
    OlderGeneration {
        /// This node's generation.
        ours: u64,
        /// The peer's generation.
        theirs: u64,
    },
    /// The peer is at a newer generation: this process is the stale one.
    #[error("newer generation: the peer is at generation {theirs}, this node only at {ours} (this node is stale)")]
    NewerGeneration {
        /// This node's generation.
        ours: u64,
        /// The peer's generation.
        theirs: u64,
    },
    /// The peer's proof does not verify: it does not hold the cluster token.
    #[error("wrong cluster token: the peer's proof does not verify")]
    BadToken,
    /// Exactly one end holds a token.
    #[error("cluster token missing on one end (this node {}, the peer {})", if *ours { "has one" } else { "has none" }, if *theirs { "has one" } else { "has none" })]
    MissingToken {
        /// This node holds a token.
        ours: bool,
        /// The peer holds a token.
        theirs: bool,
    },
    /// Neither end holds a token and the connection is not on loopback.
    #[error("no cluster token, and the connection is not on loopback (give both ends --cluster-token-file)")]
    TokenRequired,
    /// The peer broke the handshake protocol.
    #[error("handshake protocol: {0}")]
    Protocol(String),
}

/// What the handshake needs.
#[derive(Debug, Clone)]
pub struct HandshakeConfig {
    /// This node's identity.
    pub identity: Identity,
    /// The cluster token; `None` only for loopback-only clusters.
    pub token: Option<ClusterToken>,
    /// How long the whole exchange may wait for the peer at each step.
    pub timeout: Duration,
}

#[derive(Serialize, Deserialize)]
struct Hello {
    job: String,
    graph_hash: u64,
    generation: u64,
    has_token: bool,
    nonce: [u8; 32],
}

#[derive(Serialize, Deserialize)]
enum Verdict {
    Accept,
    Refuse(Refusal),
}

/// Runs the handshake on a fresh connection. On success the link may
/// start; on refusal the reason was sent to the peer (when it was ours),
/// logged and counted.
pub fn handshake(
    stream: &mut TcpStream,
    role: Role,
    cfg: &HandshakeConfig,
    metrics: &NetMetrics,
) -> Result<(), NetError> {
    let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_else(|_| "unknown peer".into());
    stream.set_read_timeout(Some(cfg.timeout)).map_err(|e| NetError::io(&peer, &e))?;
    stream.set_write_timeout(Some(cfg.timeout)).map_err(|e| NetError::io(&peer, &e))?;
    let out = run(stream, role, cfg, metrics, &peer);
    if let Err(NetError::Refused { reason, by_peer: false, .. }) = &out {
        metrics.count_refused();
        tracing::warn!(peer = %peer, reason = %reason, "link refused");
    }
    stream.set_read_timeout(None).map_err(|e| NetError::io(&peer, &e))?;
    stream.set_write_timeout(None).map_err(|e| NetError::io(&peer, &e))?;
    out
}

fn send<B: Serialize>(
    s: &mut TcpStream,
    kind: Kind,
    generation: u64,
    body: &B,
    peer: &str,
    m: &NetMetrics,
) -> Result<(), NetError> {
    let buf = frame::encode(kind, 0, generation, body)?;
    s.write_all(&buf).map_err(|e| NetError::io(peer, &e))?;
    m.count_sent(buf.len());
    Ok(())
}

/// Sends our refusal, best effort, and returns it as the error.
fn refuse(s: &mut TcpStream, g: u64, reason: Refusal, peer: &str, m: &NetMetrics) -> NetError {
    // The peer may already be gone; the refusal is still ours to report.
    let _ = send(s, Kind::Verdict, g, &Verdict::Refuse(reason.clone()), peer, m);
    NetError::Refused { peer: peer.to_string(), reason, by_peer: false }
}

/// Reads the next handshake frame, which must be `want` or a refusal.
fn expect(s: &mut TcpStream, want: Kind, peer: &str, m: &NetMetrics) -> Result<frame::Frame, NetError> {
    let f = frame::read(s, peer)?;
    m.count_received(f.body.len());
    if f.kind == want {
        return Ok(f);
    }
    if f.kind == Kind::Verdict {
        if let Verdict::Refuse(reason) = frame::decode_body(&f, peer)? {
            return Err(NetError::Refused { peer: peer.to_string(), reason, by_peer: true });
        }
    }
    Err(NetError::Protocol {
        peer: peer.to_string(),
        reason: format!("expected a {} frame in the handshake, got {}", want.name(), f.kind.name()),
    })
}

fn proof(token: &ClusterToken, role: Role, own: &[u8; 32], other: &[u8; 32], id: &Identity) -> Option<Hmac<Sha256>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(token.bytes()).ok()?;
    mac.update(LABEL);
    mac.update(&[role.byte()]);
    mac.update(own);
    mac.update(other);
    mac.update(&(id.job.len() as u64).to_le_bytes());
    mac.update(id.job.as_bytes());
    mac.update(&id.graph_hash.to_le_bytes());
    mac.update(&id.generation.to_le_bytes());
    Some(mac)
}

fn run(s: &mut TcpStream, role: Role, cfg: &HandshakeConfig, m: &NetMetrics, peer: &str) -> Result<(), NetError> {
    let id = &cfg.identity;
    let g = id.generation;
    let mut nonce = [0u8; 32];
    getrandom::getrandom(&mut nonce).map_err(|e| NetError::Io {
        peer: peer.to_string(),
        kind: std::io::ErrorKind::Other,
        message: format!("no randomness for the handshake nonce: {e}"),
    })?;
    let hello =
        Hello { job: id.job.clone(), graph_hash: id.graph_hash, generation: g, has_token: cfg.token.is_some(), nonce };
    send(s, Kind::Hello, g, &hello, peer, m)?;
    let theirs: Hello = frame::decode_body(&expect(s, Kind::Hello, peer, m)?, peer)?;
    if let Some(reason) = identity_refusal(s, cfg, &theirs) {
        return Err(refuse(s, g, reason, peer, m));
    }
    let mac = match &cfg.token {
        Some(t) => match proof(t, role, &nonce, &theirs.nonce, id) {
            Some(p) => p.finalize().into_bytes().to_vec(),
            None => return Err(refuse(s, g, Refusal::Protocol("token unusable as an HMAC key".into()), peer, m)),
        },
        None => Vec::new(),
    };
    send(s, Kind::Proof, g, &mac, peer, m)?;
    let their_mac: Vec<u8> = frame::decode_body(&expect(s, Kind::Proof, peer, m)?, peer)?;
    if let Some(t) = &cfg.token {
        let ok = proof(t, role.other(), &theirs.nonce, &nonce, id).is_some_and(|p| p.verify_slice(&their_mac).is_ok());
        if !ok {
            return Err(refuse(s, g, Refusal::BadToken, peer, m));
        }
    }
    send(s, Kind::Verdict, g, &Verdict::Accept, peer, m)?;
    match frame::decode_body(&expect(s, Kind::Verdict, peer, m)?, peer)? {
        Verdict::Accept => Ok(()),
        Verdict::Refuse(reason) => Err(NetError::Refused { peer: peer.to_string(), reason, by_peer: true }),
    }
}

fn identity_refusal(s: &TcpStream, cfg: &HandshakeConfig, theirs: &Hello) -> Option<Refusal> {
    let id = &cfg.identity;
    if theirs.job != id.job {
        return Some(Refusal::OtherJob { ours: id.job.clone(), theirs: theirs.job.clone() });
    }
    if theirs.graph_hash != id.graph_hash {
        return Some(Refusal::GraphHash { ours: id.graph_hash, theirs: theirs.graph_hash });
    }
    if theirs.generation < id.generation {
        return Some(Refusal::OlderGeneration { ours: id.generation, theirs: theirs.generation });
    }
    if theirs.generation > id.generation {
        return Some(Refusal::NewerGeneration { ours: id.generation, theirs: theirs.generation });
    }
    let ours = cfg.token.is_some();
    if ours != theirs.has_token {
        return Some(Refusal::MissingToken { ours, theirs: theirs.has_token });
    }
    if !ours {
        let loopback = |a: std::io::Result<std::net::SocketAddr>| a.is_ok_and(|a| a.ip().is_loopback());
        if !(loopback(s.local_addr()) && loopback(s.peer_addr())) {
            return Some(Refusal::TokenRequired);
        }
    }
    None
}
