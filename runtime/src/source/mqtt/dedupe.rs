//! Dropping redeliveries — and only redeliveries: content that merely
//! repeats (a stuck sensor, a coarse one) is new data and is kept.
//!
//! Two things prove that a message was received before:
//!
//! 1. A publisher-supplied id (`rivulet-msg-id` user property) among the
//!    last `window` ids seen: the publisher says it is the same message.
//! 2. The broker's redelivery of a QoS 1/2 message. A broker gives each
//!    message in flight to a client its own packet id, resends an
//!    unacknowledged one after a reconnect with the same packet id (DUP set,
//!    MQTT 3.1.1 §4.4, MQTT 5 §4.4), and reuses a packet id only once the
//!    message that held it was acknowledged. The ingest log appends a
//!    message before its PUBACK is sent, and a PUBACK queued for a
//!    connection that dropped is never sent (the broker may have reused the
//!    id), so what can come again is exactly what the log already holds
//!    under that packet id. A message is therefore a redelivery when the
//!    log's newest entry (within the last `window` entries) with the same
//!    packet id has the same topic and payload, and either the message has
//!    DUP set or that entry arrived on an earlier connection. The second
//!    case covers a broker restored from its persistence file after a
//!    crash: it resends what it delivered since its last save with DUP
//!    clear, under the original packet ids.
//!
//! So nothing durable is appended twice, and a new message is kept unless
//! it repeats, byte for byte and under the same packet id, the last message
//! logged under that id on an earlier connection. The packet-id lookback is
//! at most [`PKID_LOOKBACK`] entries, half the id space: a broker that
//! assigns ids sequentially (Mosquitto: modulo 65,535) reuses an id only
//! after 65,535 other messages, so a reading that comes back to the same id
//! after the counter wrapped is never taken for a redelivery. What can be
//! redelivered lies well inside it (the unacked window, at most the receive
//! maximum, and what a restored broker resends since its last save). After
//! a broker crash its id counter may go back, which is the one residual
//! case (documented with the broker settings).

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hash, Hasher};

/// The identity of a message's content: topic, stored payload and its
/// original length (64-bit SipHash).
pub(crate) fn content(topic: &str, payload: &[u8], full_len: usize) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    topic.hash(&mut h);
    payload.hash(&mut h);
    full_len.hash(&mut h);
    h.finish()
}

fn id_hash(id: &str) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    id.hash(&mut h);
    h.finish()
}

/// Identities are already hashes.
#[derive(Default)]
pub(crate) struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// The last `window` publisher ids seen.
struct SeenIds {
    seen: HashSet<u64, BuildHasherDefault<PassThrough>>,
    order: VecDeque<u64>,
    window: usize,
}

impl SeenIds {
    /// Records `id`; false if it was already among the last `window`.
    fn insert(&mut self, id: u64) -> bool {
        if self.window == 0 {
            return true;
        }
        if !self.seen.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > self.window {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        true
    }

    fn contains(&self, id: u64) -> bool {
        self.seen.contains(&id)
    }
}

/// The newest logged entry under each packet id: one slot per id, 24
/// bytes each, `[seq + 1, content, conn]` (`seq + 1` is 0 in a slot no
/// message used), so the whole id space costs 1.5 MiB where a hash map of
/// it cost 4.3 MiB; the table is zeroed memory, so slots of ids a broker
/// never uses take no RAM. `conn` is the connection generation the message
/// arrived on; 0 for entries read back from the log at start (every live
/// connection is 1 or later).
struct ByPkid(Vec<[u64; 3]>);

impl ByPkid {
    fn new() -> Self {
        Self(vec![[0; 3]; 1 << 16])
    }

    fn get(&self, pkid: u16) -> Option<(u64, u64, u64)> {
        let [seq1, content, conn] = self.0[usize::from(pkid)];
        (seq1 > 0).then(|| (seq1 - 1, content, conn))
    }

    fn set(&mut self, pkid: u16, seq: u64, content: u64, conn: u64) {
        self.0[usize::from(pkid)] = [seq + 1, content, conn];
    }
}

/// A received message as the redelivery rule sees it.
pub(crate) struct Received<'a> {
    pub(crate) qos: u8,
    pub(crate) pkid: u16,
    pub(crate) dup: bool,
    pub(crate) conn: u64,
    pub(crate) content: u64,
    pub(crate) msg_id: Option<&'a str>,
}

/// How far back (in log entries) a packet id can prove a redelivery: half
/// the 16-bit id space, so a sequential broker's wrapped counter never
/// meets an entry of its previous round.
pub(crate) const PKID_LOOKBACK: u64 = 32_768;

/// What the source knows about the messages it logged; see the module docs.
pub(crate) struct Redeliveries {
    ids: SeenIds,
    by_pkid: ByPkid,
    /// Packet-id lookback: the window, at most [`PKID_LOOKBACK`].
    window: u64,
}

impl Redeliveries {
    pub(crate) fn new(window: usize) -> Self {
        Self {
            ids: SeenIds { seen: HashSet::default(), order: VecDeque::new(), window },
            by_pkid: ByPkid::new(),
            window: (window as u64).min(PKID_LOOKBACK),
        }
    }

    /// Whether `m` is provably a message already logged; `next_seq` is the
    /// sequence number it would get.
    pub(crate) fn is_redelivery(&self, m: &Received<'_>, next_seq: u64) -> bool {
        if let Some(id) = m.msg_id {
            if self.ids.contains(id_hash(id)) {
                return true;
            }
        }
        if m.qos == 0 {
            return false;
        }
        let Some((seq, content, conn)) = self.by_pkid.get(m.pkid) else { return false };
        next_seq.saturating_sub(seq) <= self.window && content == m.content && (m.dup || conn != m.conn)
    }

    /// Records a message appended to the log as `seq`.
    pub(crate) fn logged(&mut self, seq: u64, m: &Received<'_>) {
        if let Some(id) = m.msg_id {
            self.ids.insert(id_hash(id));
        }
        if m.qos > 0 {
            self.by_pkid.set(m.pkid, seq, m.content, m.conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(pkid: u16, dup: bool, conn: u64, payload: &[u8], id: Option<&'static str>) -> Received<'static> {
        let content = content("t", payload, payload.len());
        Received { qos: 1, pkid, dup, conn, content, msg_id: id }
    }

    /// Guards issue 12 §2: a repeated payload is new data unless the broker
    /// provably redelivers it (same packet id: DUP set, or an earlier
    /// connection), or the publisher's id repeats.
    #[test]
    fn only_redeliveries_are_recognised() {
        let mut r = Redeliveries::new(100);
        let a = msg(1, false, 1, b"21.5", None);
        assert!(!r.is_redelivery(&a, 0));
        r.logged(0, &a);
        // The same reading again under the next packet id: new data.
        let b = msg(2, false, 1, b"21.5", None);
        assert!(!r.is_redelivery(&b, 1));
        r.logged(1, &b);
        // Same connection, same id, DUP clear: the broker reused the id.
        assert!(!r.is_redelivery(&msg(1, false, 1, b"21.5", None), 2));
        // Resent after a reconnect (DUP set), or by a restored broker
        // (earlier connection, DUP clear).
        assert!(r.is_redelivery(&msg(1, true, 2, b"21.5", None), 2));
        assert!(r.is_redelivery(&msg(2, false, 2, b"21.5", None), 2));
        // Other content under that id is another message.
        assert!(!r.is_redelivery(&msg(1, true, 2, b"21.6", None), 2));
        // Beyond the window nothing is claimed.
        assert!(!r.is_redelivery(&msg(1, true, 2, b"21.5", None), 102));
        // QoS 0 has no packet id.
        let mut q0 = msg(1, true, 2, b"21.5", None);
        q0.qos = 0;
        assert!(!r.is_redelivery(&q0, 2));
        // A publisher id seen before, under any packet id.
        let c = msg(7, false, 1, b"x", Some("p:1"));
        r.logged(2, &c);
        assert!(r.is_redelivery(&msg(9, false, 1, b"y", Some("p:1")), 3));
        assert!(!r.is_redelivery(&msg(9, false, 1, b"x", Some("p:2")), 3));
    }

    /// Guards against a wrapped packet-id counter: a sequential broker
    /// gives an id again 65,535 messages later, and a stuck sensor's
    /// identical reading under it (after a reconnect) is new data.
    #[test]
    fn a_wrapped_packet_id_is_not_a_redelivery() {
        let mut r = Redeliveries::new(65_536);
        let a = msg(1, false, 1, b"21.5", None);
        r.logged(0, &a);
        assert!(!r.is_redelivery(&msg(1, false, 2, b"21.5", None), 65_535));
        // Within the lookback the same case is still a restored broker's resend.
        assert!(r.is_redelivery(&msg(1, false, 2, b"21.5", None), PKID_LOOKBACK));
    }
}
