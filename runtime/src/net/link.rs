//! A link: the one TCP connection between two workers, multiplexing edges.
//!
//! One writer thread drains a bounded queue of encoded frames (encoding
//! happens in the sending task's thread) and sends a heartbeat when it has
//! been idle for [`LinkConfig::heartbeat`]. One reader thread reads frames
//! and dispatches them without ever blocking: edge messages into their
//! inbox (which has room, see [`super::credit`]), credits to the edge's
//! sender. By convention the worker with the lower slot dials the higher.
//!
//! The link ends on a `Close` frame (graceful: inboxes deliver what was
//! queued, then report [`NetError::Closed`]) or on an error: a dropped
//! connection, no frame for [`LinkConfig::timeout`], a frame error, a
//! protocol violation. An error is delivered at once to every inbox and
//! every blocked sender, so tasks fail promptly and the coordinator restarts
//! the job from its last checkpoint. An edge frame with an older generation
//! is dropped and counted ([`NetMetrics::stale_frames`]); a newer one is a
//! protocol violation (this process is stale).

use super::channel::{RemoteInbox, RemoteOutbox};
use super::credit::Gate;
use super::dial;
use super::edge::EdgeId;
use super::error::NetError;
use super::frame::{self, Frame, Kind};
use super::handshake::{handshake, HandshakeConfig, Role};
use super::metrics::NetMetrics;
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use rustc_hash::FxHashMap;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io::{BufWriter, ErrorKind, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// How a link behaves.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    /// Membership: identity, token, handshake timeout.
    pub handshake: HandshakeConfig,
    /// Send a heartbeat after this long without writing anything.
    pub heartbeat: Duration,
    /// End the link when nothing (not even a heartbeat) arrived for this long.
    pub timeout: Duration,
    /// Frames waiting for the writer thread, all edges together.
    pub queue: usize,
    /// How long a dial waits for a name lookup, and for each address to
    /// accept the connection.
    pub connect: Duration,
}

impl LinkConfig {
    /// Defaults: heartbeat every second, dead after 10 s of silence, a
    /// queue of 256 frames, 2 s for a lookup or a connect.
    pub fn new(handshake: HandshakeConfig) -> Self {
        LinkConfig {
            handshake,
            heartbeat: Duration::from_secs(1),
            timeout: Duration::from_secs(10),
            queue: 256,
            connect: Duration::from_secs(2),
        }
    }
}

/// What the writer thread is asked to do.
pub(crate) enum Out {
    Frame(Vec<u8>),
    Close,
}

/// The state shared by the link's threads and its edges.
pub(crate) struct Shared {
    pub(crate) peer: String,
    pub(crate) generation: u64,
    pub(crate) metrics: Arc<NetMetrics>,
    pub(crate) writer: Sender<Out>,
    gates: Mutex<FxHashMap<u32, Arc<Gate>>>,
    senders: Mutex<Vec<u32>>,
    inboxes: Mutex<FxHashMap<u32, Sender<Frame>>>,
    inbound: Mutex<Vec<u32>>,
    ended: Mutex<Option<NetError>>,
    failed: Mutex<Option<NetError>>,
    socket: TcpStream,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// The error the link failed with, if it failed.
    pub(crate) fn failure(&self) -> Option<NetError> {
        lock(&self.failed).clone()
    }

    /// Why the link is no longer usable: its failure, or a graceful close.
    pub(crate) fn end_reason(&self) -> NetError {
        lock(&self.ended).clone().unwrap_or_else(|| NetError::Closed { peer: self.peer.clone() })
    }

    /// The credit gate of `edge`, created on first use; already ended when
    /// the link has (checked under the gates' lock, which `end` also takes).
    fn gate(&self, edge: u32) -> Arc<Gate> {
        let mut gates = lock(&self.gates);
        let g = gates.entry(edge).or_default().clone();
        if let Some(e) = lock(&self.ended).clone() {
            g.end(e);
        }
        g
    }

    /// Ends the link. Errors are delivered to every inbox at once; a
    /// graceful close lets inboxes drain first.
    fn end(&self, e: NetError, error: bool) {
        self.end_with(e, error, Shutdown::Both);
    }

    /// [`Shared::end`], shutting the socket down as `how` says (a graceful
    /// local close only shuts writing, so the reader drains until the peer's
    /// end of stream and the socket closes without a reset).
    fn end_with(&self, e: NetError, error: bool, how: Shutdown) {
        {
            let mut ended = lock(&self.ended);
            if ended.is_some() {
                return;
            }
            *ended = Some(e.clone());
        }
        if error {
            *lock(&self.failed) = Some(e.clone());
            self.metrics.count_failure();
            tracing::warn!(peer = %self.peer, error = %e, "link failed");
        }
        for g in lock(&self.gates).values() {
            g.end(e.clone());
        }
        lock(&self.inboxes).clear();
        // Wake the reader and writer if they are blocked in the socket.
        let _ = self.socket.shutdown(how);
    }

    /// Encoded frame to the writer; fails when the link has ended.
    pub(crate) fn push(&self, buf: Vec<u8>) -> Result<(), NetError> {
        if let Some(e) = self.failure() {
            return Err(e);
        }
        self.writer.send(Out::Frame(buf)).map_err(|_| self.end_reason())
    }
}

/// One authenticated connection to a peer worker, carrying any number of
/// edges in both directions. Dropping it closes the connection gracefully.
pub struct Link {
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
    reader: Option<JoinHandle<()>>,
}

impl Link {
    /// Connects to `addr` (waiting at most [`LinkConfig::connect`]) and
    /// runs the handshake as the dialer.
    pub fn dial(addr: SocketAddr, cfg: &LinkConfig, metrics: Arc<NetMetrics>) -> Result<Link, NetError> {
        let (stream, _) = dial::connect_any(&[addr], cfg.connect)?;
        Link::start(stream, Role::Dialer, cfg, metrics)
    }

    /// Resolves `target` (`HOST:PORT`) now and dials its addresses in
    /// turn until one accepts and completes the handshake; the lookup and
    /// each connect wait at most [`LinkConfig::connect`] (see
    /// [`super::dial`]).
    ///
    /// # Errors
    /// The name did not resolve, or no address gave a link: a refusal by
    /// any of them if there was one, else the last address's error.
    pub fn dial_name(target: &str, cfg: &LinkConfig, metrics: Arc<NetMetrics>) -> Result<Link, NetError> {
        let addrs = dial::resolve(target, cfg.connect)?;
        let (mut refused, mut last) = (None, None);
        let mut rest = &addrs[..];
        while !rest.is_empty() {
            let (stream, addr) = match dial::connect_any(rest, cfg.connect) {
                Ok(s) => s,
                Err(e) => {
                    last = Some(e);
                    break;
                }
            };
            rest = &rest[rest.iter().position(|a| *a == addr).map_or(rest.len(), |i| i + 1)..];
            match Link::start(stream, Role::Dialer, cfg, metrics.clone()) {
                Ok(l) => return Ok(l),
                Err(e @ NetError::Refused { .. }) => refused = Some(e),
                Err(e) => last = Some(e),
            }
        }
        Err(refused.or(last).unwrap_or_else(|| NetError::Closed { peer: target.to_owned() }))
    }

    /// Runs the handshake as the acceptor on a connection from a listener.
    pub fn accept(stream: TcpStream, cfg: &LinkConfig, metrics: Arc<NetMetrics>) -> Result<Link, NetError> {
        Link::start(stream, Role::Acceptor, cfg, metrics)
    }

    fn start(mut stream: TcpStream, role: Role, cfg: &LinkConfig, metrics: Arc<NetMetrics>) -> Result<Link, NetError> {
        let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_else(|_| "unknown peer".into());
        stream.set_nodelay(true).map_err(|e| NetError::io(&peer, &e))?;
        handshake(&mut stream, role, &cfg.handshake, &metrics)?;
        let io = |e: std::io::Error| NetError::io(&peer, &e);
        stream.set_read_timeout(Some(cfg.timeout)).map_err(io)?;
        let reader_stream = stream.try_clone().map_err(io)?;
        let writer_stream = stream.try_clone().map_err(io)?;
        let (tx, rx) = bounded(cfg.queue.max(1));
        let shared = Arc::new(Shared {
            peer: peer.clone(),
            generation: cfg.handshake.identity.generation,
            metrics,
            writer: tx,
            gates: Mutex::default(),
            senders: Mutex::default(),
            inboxes: Mutex::default(),
            inbound: Mutex::default(),
            ended: Mutex::default(),
            failed: Mutex::default(),
            socket: stream,
        });
        let s = shared.clone();
        let heartbeat = cfg.heartbeat;
        let writer = std::thread::Builder::new()
            .name(format!("net-w {peer}"))
            .spawn(move || write_loop(&s, writer_stream, &rx, heartbeat))
            .map_err(io)?;
        let s = shared.clone();
        let timeout = cfg.timeout;
        let reader = std::thread::Builder::new()
            .name(format!("net-r {peer}"))
            .spawn(move || read_loop(&s, reader_stream, timeout))
            .map_err(io)?;
        tracing::info!(peer = %peer, ?role, generation = shared.generation, "link up");
        Ok(Link { shared, writer: Some(writer), reader: Some(reader) })
    }

    /// The peer's address.
    pub fn peer(&self) -> &str {
        &self.shared.peer
    }

    /// The error the link failed with, if it failed.
    pub fn failure(&self) -> Option<NetError> {
        self.shared.failure()
    }

    /// The sending end of `edge` on this link. Messages wait for credit
    /// from the peer's [`Link::inbox`] of the same edge.
    pub fn outbox<T: Serialize>(&self, edge: EdgeId) -> Result<RemoteOutbox<T>, NetError> {
        let mut taken = lock(&self.shared.senders);
        if taken.contains(&edge.0) {
            return Err(NetError::EdgeTaken { peer: self.shared.peer.clone(), edge: edge.0 });
        }
        taken.push(edge.0);
        Ok(RemoteOutbox::new(edge, self.shared.gate(edge.0), self.shared.clone()))
    }

    /// The receiving end of `edge` on this link, with room for `credits`
    /// messages (at least 1); grants them to the peer at once.
    pub fn inbox<T: DeserializeOwned>(&self, edge: EdgeId, credits: u32) -> Result<RemoteInbox<T>, NetError> {
        let credits = credits.max(1);
        {
            let mut taken = lock(&self.shared.inbound);
            if taken.contains(&edge.0) {
                return Err(NetError::EdgeTaken { peer: self.shared.peer.clone(), edge: edge.0 });
            }
            taken.push(edge.0);
        }
        let (tx, rx) = bounded(credits as usize);
        {
            // Checked under the inboxes' lock, which `end` takes to drop
            // every inbox sender: an inbox is never registered on an ended link.
            let mut inboxes = lock(&self.shared.inboxes);
            if lock(&self.shared.ended).is_some() {
                return Err(self.shared.end_reason());
            }
            inboxes.insert(edge.0, tx);
        }
        let grant = frame::encode(Kind::Credit, edge.0, self.shared.generation, &credits)?;
        self.shared.push(grant)?;
        Ok(RemoteInbox::new(edge, rx, credits, self.shared.clone()))
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // Ask the writer to send `Close` after everything queued, then stop.
        let _ = self.shared.writer.send(Out::Close);
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
        self.shared.end_with(NetError::Closed { peer: self.shared.peer.clone() }, false, Shutdown::Write);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

fn write_loop(s: &Shared, stream: TcpStream, rx: &Receiver<Out>, heartbeat: Duration) {
    let mut w = BufWriter::with_capacity(64 * 1024, stream);
    let beat = match frame::encode(Kind::Heartbeat, 0, s.generation, &()) {
        Ok(b) => b,
        Err(e) => return s.end(e, true),
    };
    loop {
        let first = match rx.recv_timeout(heartbeat) {
            Ok(o) => o,
            Err(RecvTimeoutError::Timeout) => Out::Frame(beat.clone()),
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let mut next = Some(first);
        let mut closing = false;
        // Write everything already queued, then flush once.
        while let Some(o) = next.take() {
            let buf = match o {
                Out::Frame(b) => b,
                Out::Close => {
                    closing = true;
                    match frame::encode(Kind::Close, 0, s.generation, &()) {
                        Ok(b) => b,
                        Err(e) => return s.end(e, true),
                    }
                }
            };
            if let Err(e) = w.write_all(&buf) {
                return s.end(NetError::io(&s.peer, &e), true);
            }
            s.metrics.count_sent(buf.len());
            if !closing {
                next = rx.try_recv().ok();
            }
        }
        if let Err(e) = w.flush() {
            return s.end(NetError::io(&s.peer, &e), true);
        }
        if closing {
            return;
        }
    }
}

fn read_loop(s: &Shared, mut stream: TcpStream, timeout: Duration) {
    loop {
        let f = match frame::read(&mut stream, &s.peer) {
            Ok(f) => f,
            Err(NetError::Io { kind: ErrorKind::WouldBlock | ErrorKind::TimedOut, .. }) => {
                return s.end(NetError::HeartbeatTimeout { peer: s.peer.clone(), after: timeout }, true)
            }
            // After a close, the end of stream (or any error) just stops the reader.
            Err(_) if lock(&s.ended).is_some() => return,
            Err(e) => return s.end(e, true),
        };
        s.metrics.count_received(f.body.len());
        if let Err(e) = dispatch(s, f) {
            return s.end(e, true);
        }
    }
}

/// Hands one frame to whoever waits for it; never blocks.
fn dispatch(s: &Shared, f: Frame) -> Result<(), NetError> {
    let protocol = |reason: String| NetError::Protocol { peer: s.peer.clone(), reason };
    match f.kind {
        Kind::Heartbeat => Ok(()),
        Kind::Close => {
            s.end(NetError::Closed { peer: s.peer.clone() }, false);
            Ok(())
        }
        Kind::Credit => {
            let n: u32 = frame::decode_body(&f, &s.peer)?;
            s.gate(f.edge).grant(n);
            Ok(())
        }
        Kind::Data | Kind::Watermark | Kind::Barrier | Kind::End => {
            if f.generation < s.generation {
                s.metrics.count_stale();
                tracing::debug!(peer = %s.peer, edge = f.edge, generation = f.generation, "stale frame dropped");
                return Ok(());
            }
            if f.generation > s.generation {
                return Err(protocol(format!(
                    "frame of generation {} on a link of generation {} (this node is stale)",
                    f.generation, s.generation
                )));
            }
            let inboxes = lock(&s.inboxes);
            let Some(tx) = inboxes.get(&f.edge) else {
                return Err(protocol(format!(
                    "a {} frame for edge {} that has no inbox here",
                    f.kind.name(),
                    EdgeId(f.edge)
                )));
            };
            match tx.try_send(f) {
                Ok(()) => Ok(()),
                Err(TrySendError::Full(f)) => Err(protocol(format!("edge {} sent beyond its credit", EdgeId(f.edge)))),
                // The receiving task is gone (it finished); nothing waits for this.
                Err(TrySendError::Disconnected(_)) => Ok(()),
            }
        }
        Kind::Hello | Kind::Proof | Kind::Verdict => {
            Err(protocol(format!("a {} frame after the handshake", f.kind.name())))
        }
    }
}
