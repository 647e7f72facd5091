//! The MQTT source: QoS 1 over a persistent session, with manual acks — a
//! message is acked to the broker only once it is durable in the node's
//! ingest log, in arrival order. The log's sequence number is the source's
//! checkpointed position: recovery replays the log from it, and the log is
//! trimmed below the position of the oldest checkpoint the store retains
//! (so restoring any retained checkpoint can replay). Redeliveries are
//! dropped, repeated content never is (see `dedupe`). Bad payloads —
//! including payloads over `max_payload`, a topic the template does not
//! match, an empty payload — are counted, logged with rate limiting and
//! republished (at most `DEAD_LETTER_KEEP` bytes of them) to a dead-letter
//! topic when one is configured.
//!
//! A message may carry many readings (a JSON array, JSON lines, CSV lines;
//! see `batch` for how the form is recognised). The message stays the unit
//! of the ingest log, of redelivery and of the ack — it is acked once it is
//! durable, with all its readings — while each reading is decoded, counted
//! and dead-lettered on its own. A poll hands out the readings of up to
//! `max` messages, never part of one, so positions stay message boundaries.
//!
//! Without a state directory there is no ingest log: messages are acked as
//! soon as they are handed to the job (at-most-once across a crash).

mod batch;
mod dedupe;
mod payload;

pub use payload::{Fields, PayloadFormat};

use super::{BadInput, Out, Poll, Source, SourceContext};
use crate::error::{Error, Result};
use crate::mqtt::{Conn, Inbound, Session, TopicTemplate};
use crate::record::Record;
use crate::state::IngestLog;
use dedupe::{content, Received, Redeliveries};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// Settings of an MQTT source.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttSourceConfig {
    /// Broker, client id and session.
    pub session: Session,
    /// Topic template, e.g. `sensors/{sensor_id}/temp`: the source
    /// subscribes to `sensors/+/temp` and captures `sensor_id`. Errors
    /// name it `--topic`, the flag it comes from.
    pub topic: String,
    /// Fields the job needs from the topic: the template must capture each
    /// of them and no other (empty: any fields).
    #[serde(default)]
    pub topic_fields: Vec<String>,
    /// Share the subscription among parallel instances
    /// (`$share/<group>/<filter>`): each message goes to one of them.
    #[serde(default)]
    pub share_group: Option<String>,
    /// Subscription QoS (0, 1 or 2). Exactly-once needs 1 or 2.
    #[serde(default = "default_qos")]
    pub qos: u8,
    /// Payload layout; a message may carry many readings (a JSON array,
    /// JSON lines, CSV or number lines).
    #[serde(default = "default_format")]
    pub payload: PayloadFormat,
    /// Field mapping: record field name → payload key.
    #[serde(default)]
    pub rename: BTreeMap<String, String>,
    /// Republish malformed messages here (the job goes on either way).
    #[serde(default)]
    pub dead_letter: Option<String>,
    /// End of stream after this long without a message (milliseconds).
    #[serde(default)]
    pub stop_after_idle_ms: Option<u64>,
    /// How many recent ingest log entries (and publisher message ids) are
    /// remembered to recognise redeliveries; the ingest log keeps at least
    /// this many entries.
    #[serde(default = "default_dedupe")]
    pub dedupe_window: usize,
    /// Largest payload accepted (bytes); a larger one is malformed input.
    #[serde(default = "default_max_payload")]
    pub max_payload: usize,
}

fn default_qos() -> u8 {
    1
}
fn default_format() -> PayloadFormat {
    PayloadFormat::Json
}
fn default_dedupe() -> usize {
    65_536
}
fn default_max_payload() -> usize {
    MAX_PAYLOAD
}

/// Default largest payload: 256 KiB, far above any reading, far below what
/// a small device can hold for every message in flight.
pub const MAX_PAYLOAD: usize = 256 * 1024;

/// Bytes of a malformed payload kept in the ingest log and the dead letter.
pub const DEAD_LETTER_KEEP: usize = 1024;

impl MqttSourceConfig {
    /// QoS 1, JSON payloads, a persistent MQTT 5 session.
    pub fn new(url: impl Into<String>, client_id: impl Into<String>, topic: impl Into<String>) -> Self {
        Self {
            session: Session::new(url, client_id),
            topic: topic.into(),
            topic_fields: Vec::new(),
            share_group: None,
            qos: 1,
            payload: PayloadFormat::Json,
            rename: BTreeMap::new(),
            dead_letter: None,
            stop_after_idle_ms: None,
            dedupe_window: default_dedupe(),
            max_payload: MAX_PAYLOAD,
        }
    }

    /// Checks every setting (and returns the parsed topic template), so a
    /// job can refuse bad flags before it opens anything.
    ///
    /// # Errors
    /// [`Error::Config`] naming the bad flag or field.
    pub fn validate(&self) -> Result<TopicTemplate> {
        self.session.validate()?;
        let template = TopicTemplate::parse("--topic", &self.topic)?;
        if !self.topic_fields.is_empty() {
            template.check_fields("--topic", &self.topic_fields)?;
        }
        if self.max_payload == 0 {
            return Err(Error::config("max_payload", "must be at least 1 byte"));
        }
        if self.qos > 2 {
            return Err(Error::config("qos", "must be 0, 1 or 2"));
        }
        if let Some(g) = &self.share_group {
            if g.is_empty() || g.contains(['/', '+', '#']) {
                return Err(Error::config("share_group", "must be a non-empty name without / + #"));
            }
        }
        if let Some(d) = &self.dead_letter {
            TopicTemplate::parse("--dead-letter", d)?
                .render(|_| None)
                .map_err(|e| Error::config("--dead-letter", e))?;
        }
        Ok(template)
    }

    /// The source, with `parse` turning a message's fields into a record.
    ///
    /// # Errors
    /// [`Error::Config`] naming the bad field.
    pub fn build<T, P>(self, parse: P) -> Result<MqttSource<T>>
    where
        T: Send + 'static,
        P: FnMut(&Fields<'_>) -> std::result::Result<T, String> + Send + 'static,
    {
        let template = self.validate()?;
        let bad = BadInput::new(format!("mqtt {}", self.topic));
        Ok(MqttSource {
            seen: Redeliveries::new(self.dedupe_window),
            cfg: self,
            template,
            parse: Box::new(parse),
            conn: None,
            log: None,
            next_seq: 0,
            read_seq: 0,
            log_first: 0,
            retain: 1,
            completed: VecDeque::new(),
            bad,
            acks: VecDeque::new(),
            dead: VecDeque::new(),
            last_activity: Instant::now(),
            duplicates: 0,
            retained: 0,
            dead_sent: 0,
            replay: Vec::new(),
            entries: Vec::new(),
            pieces: Vec::new(),
        })
    }
}

type Parse<T> = Box<dyn FnMut(&Fields<'_>) -> std::result::Result<T, String> + Send>;

/// Reads records from MQTT; see the module docs.
pub struct MqttSource<T> {
    cfg: MqttSourceConfig,
    template: TopicTemplate,
    parse: Parse<T>,
    conn: Option<Conn>,
    log: Option<IngestLog>,
    /// Sequence number the next appended message gets.
    next_seq: u64,
    /// Sequence number of the next message handed to the job.
    read_seq: u64,
    /// Lowest sequence number still in the log.
    log_first: u64,
    /// Checkpoints the store keeps restorable.
    retain: usize,
    /// (epoch, position) of complete epochs, oldest first: the log is
    /// trimmed below the oldest retained one's position.
    completed: VecDeque<(u64, u64)>,
    seen: Redeliveries,
    bad: BadInput,
    /// Acks not yet accepted by the connection: (qos, pkid, generation).
    acks: VecDeque<(u8, u16, u64)>,
    /// Dead letters not yet accepted by the connection.
    dead: VecDeque<(String, Vec<u8>, String)>,
    last_activity: Instant,
    duplicates: u64,
    /// Retained copies skipped (see `poll_batch`).
    retained: u64,
    /// Dead letters handed to the connection (the source publishes nothing
    /// else, so the connection's PUBACK count confirms them).
    dead_sent: u64,
    replay: Vec<(u64, Vec<u8>)>,
    entries: Vec<Vec<u8>>,
    /// The readings of the message being parsed (reused).
    pieces: Vec<batch::Piece>,
}

/// Most dead letters waiting for the connection before new ones are dropped.
const MAX_DEAD_PENDING: usize = 10_000;
/// Entries written before packet ids were logged: no qos/pkid/length.
const ENTRY_V1: u8 = 1;
const ENTRY_VERSION: u8 = 2;

/// A received message in the form the ingest log stores: a payload over
/// the limit is kept as its first `DEAD_LETTER_KEEP` bytes plus its length.
struct Stored<'a> {
    topic: &'a str,
    msg_id: Option<&'a str>,
    payload: &'a [u8],
    /// The payload's length when only a prefix is stored.
    cut_from: Option<u32>,
    qos: u8,
    pkid: u16,
}

impl<'a> Stored<'a> {
    fn of(m: &'a Inbound, max_payload: usize) -> Self {
        let over = m.payload.len() > max_payload;
        Stored {
            topic: &m.topic,
            msg_id: m.msg_id.as_deref(),
            payload: if over { &m.payload[..DEAD_LETTER_KEEP.min(m.payload.len())] } else { &m.payload },
            // MQTT caps a packet at 256 MiB, so a length fits in u32.
            cut_from: over.then(|| u32::try_from(m.payload.len()).unwrap_or(u32::MAX)),
            qos: m.qos,
            pkid: m.pkid,
        }
    }

    fn content(&self) -> u64 {
        content(self.topic, self.payload, self.cut_from.map_or(self.payload.len(), |n| n as usize))
    }
}

/// Ingest log entry: `version | qos | u16 pkid | u32 cut-from length (0:
/// whole) | u16 topic len | topic | u16 id len | id | payload`.
fn encode_entry(m: &Stored<'_>, out: &mut Vec<u8>) {
    out.clear();
    out.push(ENTRY_VERSION);
    out.push(m.qos);
    out.extend_from_slice(&m.pkid.to_be_bytes());
    out.extend_from_slice(&m.cut_from.unwrap_or(0).to_be_bytes());
    let topic = m.topic.as_bytes();
    let topic = &topic[..topic.len().min(usize::from(u16::MAX))];
    out.extend_from_slice(&(topic.len() as u16).to_be_bytes());
    out.extend_from_slice(topic);
    let id = m.msg_id.unwrap_or("").as_bytes();
    let id = &id[..id.len().min(usize::from(u16::MAX))];
    out.extend_from_slice(&(id.len() as u16).to_be_bytes());
    out.extend_from_slice(id);
    out.extend_from_slice(m.payload);
}

fn decode_entry(b: &[u8]) -> Result<Stored<'_>> {
    let bad = |r: &str| Error::Corrupt { what: "mqtt ingest log entry".into(), reason: r.into() };
    let (&v, rest) = b.split_first().ok_or_else(|| bad("empty"))?;
    let (qos, pkid, cut_from, rest) = match v {
        ENTRY_V1 => (0, 0, None, rest),
        ENTRY_VERSION => {
            let h = rest.get(..7).ok_or_else(|| bad("truncated header"))?;
            let cut = u32::from_be_bytes([h[3], h[4], h[5], h[6]]);
            (h[0], u16::from_be_bytes([h[1], h[2]]), (cut > 0).then_some(cut), &rest[7..])
        }
        v => return Err(bad(&format!("unknown version {v}"))),
    };
    let take = |b: &'_ [u8]| -> Result<(usize, usize)> {
        let n = b.get(..2).ok_or_else(|| bad("truncated"))?;
        Ok((usize::from(u16::from_be_bytes([n[0], n[1]])), 2))
    };
    let (tl, o) = take(rest)?;
    let topic = rest.get(o..o + tl).ok_or_else(|| bad("truncated topic"))?;
    let rest = &rest[o + tl..];
    let (il, o) = take(rest)?;
    let id = rest.get(o..o + il).ok_or_else(|| bad("truncated id"))?;
    let payload = &rest[o + il..];
    let topic = std::str::from_utf8(topic).map_err(|_| bad("topic not UTF-8"))?;
    let id = std::str::from_utf8(id).map_err(|_| bad("id not UTF-8"))?;
    Ok(Stored { topic, msg_id: (!id.is_empty()).then_some(id), payload, cut_from, qos, pkid })
}

impl<T: Send + 'static> MqttSource<T> {
    fn health_now(&self) -> Option<crate::metrics::SourceHealth> {
        let conn = self.conn.as_ref()?;
        Some(crate::metrics::SourceHealth {
            connected: conn.connected(),
            inflight: self.acks.len() as u64,
            redeliveries: self.duplicates,
            dead_letters: self.dead_sent,
            // The generation counts CONNACKs.
            reconnects: conn.gen().saturating_sub(1),
        })
    }

    fn dead_letters_acked(&self) -> bool {
        self.dead.is_empty() && self.conn.as_ref().is_none_or(|c| c.acked() >= self.dead_sent)
    }

    /// Redeliveries dropped so far.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Retained copies skipped so far.
    pub fn retained(&self) -> u64 {
        self.retained
    }

    fn filter(&self) -> String {
        let f = self.template.filter();
        match &self.cfg.share_group {
            Some(g) => format!("$share/{g}/{f}"),
            None => f,
        }
    }

    fn conn(&mut self) -> Result<&Conn> {
        if self.conn.is_none() {
            // Above the inflight window, so the connection thread never
            // waits on us for QoS 1 traffic.
            let cap = usize::from(self.cfg.session.receive_maximum) * 2 + 1024;
            let c = Conn::start(&self.cfg.session, Some((self.filter(), self.cfg.qos)), cap)?;
            self.last_activity = Instant::now();
            self.conn = Some(c);
        }
        self.conn.as_ref().ok_or_else(|| Error::config("session", "not connected"))
    }

    /// Hands queued acks (and dead letters) to the connection, in order.
    fn flush(&mut self) -> Result<()> {
        let Some(conn) = &self.conn else { return Ok(()) };
        let gen = conn.gen();
        while let Some(&(qos, pkid, g)) = self.acks.front() {
            // An ack for an earlier connection would name a packet id the
            // broker may have reused: the broker redelivers instead.
            if g == gen && !conn.try_ack(qos, pkid)? {
                break;
            }
            self.acks.pop_front();
        }
        while let Some((topic, payload, reason)) = self.dead.front() {
            let props = [("reason", reason.clone()), ("topic", topic.clone())];
            let Some(dl) = &self.cfg.dead_letter else { break };
            if !conn.try_publish(dl, payload.clone(), 1, &props)? {
                break;
            }
            self.dead.pop_front();
            self.dead_sent += 1;
        }
        Ok(())
    }

    /// Decodes the readings of message `seq` into `out`; what cannot be
    /// read is reported (and, when `live`, dead-lettered) reading by
    /// reading, or once for the whole message when it cannot be split.
    fn parse_one(
        &mut self,
        seq: u64,
        topic: &str,
        payload: &[u8],
        cut_from: Option<u32>,
        live: bool,
        out: &mut impl Out<T>,
    ) -> Result<()> {
        let mut caps = Vec::new();
        if let Some(n) = cut_from {
            let reason = format!(
                "payload of {n} bytes is over the {}-byte limit (the first {} bytes are kept)",
                self.cfg.max_payload,
                payload.len()
            );
            return self.reject(seq, topic, payload, reason, live);
        }
        if payload.is_empty() {
            return self.reject(seq, topic, payload, "empty payload".into(), live);
        }
        if !self.template.capture(topic, &mut caps) {
            let reason = format!("topic `{topic}` does not match `{}`", self.cfg.topic);
            return self.reject(seq, topic, payload, reason, live);
        }
        let mut pieces = std::mem::take(&mut self.pieces);
        batch::split(&self.cfg.payload, payload, &mut pieces);
        if pieces.is_empty() {
            self.pieces = pieces;
            return self.reject(
                seq,
                topic,
                payload,
                "no reading in the payload (blank, or an empty array)".into(),
                live,
            );
        }
        let n = pieces.len();
        let mut r = Ok(());
        for (k, piece) in pieces.iter().enumerate() {
            let raw = &payload[piece.range.clone()];
            let parsed = match piece.error {
                Some(e) => Err(e.to_string()),
                None => Fields::decode(&self.cfg.payload, &self.cfg.rename, &caps, raw).and_then(|f| (self.parse)(&f)),
            };
            match parsed {
                Ok(v) => out.put(v),
                Err(reason) => {
                    let reason = if n > 1 { format!("reading {} of {n}: {reason}", k + 1) } else { reason };
                    let dead = (live && self.cfg.dead_letter.is_some()).then_some(&mut self.dead);
                    r = reject(&mut self.bad, dead, seq, topic, raw, reason);
                    if r.is_err() {
                        break;
                    }
                }
            }
        }
        self.pieces = pieces;
        r
    }

    fn reject(&mut self, seq: u64, topic: &str, raw: &[u8], reason: String, live: bool) -> Result<()> {
        let dead = (live && self.cfg.dead_letter.is_some()).then_some(&mut self.dead);
        reject(&mut self.bad, dead, seq, topic, raw, reason)
    }

    fn replay_batch(&mut self, out: &mut impl Out<T>, max: usize) -> Result<Poll> {
        let Some(log) = &self.log else {
            self.read_seq = self.next_seq;
            return Ok(Poll::Ready);
        };
        let mut buf = std::mem::take(&mut self.replay);
        buf.clear();
        // Saturating: on a 32-bit target a gap that is a multiple of 2^32
        // would truncate to 0, read nothing and be taken for a trimmed log.
        let pending = usize::try_from(self.next_seq - self.read_seq).unwrap_or(usize::MAX);
        log.read(self.read_seq, max.min(pending), &mut buf)?;
        if buf.is_empty() {
            // Trimmed below the position: nothing left to replay.
            self.read_seq = self.next_seq;
        }
        for (seq, bytes) in &buf {
            if *seq != self.read_seq {
                // Every message in the log was acknowledged to the broker:
                // a hole is messages lost, never skipped in silence.
                return Err(Error::StateRefused {
                    path: self.log.as_ref().map(|l| l.path().to_path_buf()).unwrap_or_default(),
                    reason: format!(
                        "the ingest log of {} lacks messages {} to {} of those the job replays: \
                         they were acknowledged to the broker and are gone",
                        self.cfg.topic,
                        self.read_seq,
                        seq - 1
                    ),
                });
            }
            let e = decode_entry(bytes)?;
            let (topic, payload, cut) = (e.topic.to_string(), e.payload.to_vec(), e.cut_from);
            self.parse_one(*seq, &topic, &payload, cut, false, out)?;
            self.read_seq = seq + 1;
        }
        self.replay = buf;
        Ok(Poll::Ready)
    }
}

/// Counts and logs a malformed message or reading (its first
/// `DEAD_LETTER_KEEP` bytes), and queues it for the dead-letter topic when
/// `dead` is given (a live message, a dead-letter topic configured).
fn reject(
    bad: &mut BadInput,
    dead: Option<&mut VecDeque<(String, Vec<u8>, String)>>,
    seq: u64,
    topic: &str,
    raw: &[u8],
    reason: String,
) -> Result<()> {
    let kept = &raw[..raw.len().min(DEAD_LETTER_KEEP)];
    bad.report(seq, &reason, kept)?;
    if let Some(dead) = dead {
        if dead.len() < MAX_DEAD_PENDING {
            dead.push_back((topic.to_string(), kept.to_vec(), reason));
        } else {
            tracing::warn!(topic, "dead-letter queue full; a malformed reading was only counted");
        }
    }
    Ok(())
}

impl<T: Send + 'static> MqttSource<T> {
    /// Reads up to `max` more messages' records into `out` (see
    /// [`Source::poll_batch`]).
    fn poll_into(&mut self, out: &mut impl Out<T>, max: usize) -> Result<Poll> {
        self.conn()?;
        self.flush()?;
        if self.read_seq < self.next_seq {
            return self.replay_batch(out, max);
        }
        let Some(conn) = &self.conn else { return Ok(Poll::Pending) };
        let mut msgs = Vec::new();
        while msgs.len() < max {
            match conn.inbound.try_recv() {
                Ok(m) => msgs.push(m),
                Err(_) => break,
            }
        }
        if msgs.is_empty() {
            // A broker outage is not the end of the stream.
            if !conn.connected() {
                self.last_activity = Instant::now();
            }
            let idle = self.cfg.stop_after_idle_ms.map(Duration::from_millis);
            if idle.is_some_and(|d| self.last_activity.elapsed() >= d) {
                // Let the last acks out, and the dead letters reach the
                // broker (PUBACKed: rumqttc keeps unacknowledged publishes
                // only in memory), before the connection closes.
                let until = Instant::now() + Duration::from_secs(5);
                while (!self.acks.is_empty() || !self.dead_letters_acked()) && Instant::now() < until {
                    self.flush()?;
                    std::thread::sleep(Duration::from_millis(1));
                }
                if !self.dead_letters_acked() {
                    tracing::warn!(
                        source = %self.cfg.topic,
                        waiting = self.dead.len(),
                        "dead letters not acknowledged by the broker at the end of the stream (they were counted)"
                    );
                }
                tracing::info!(source = %self.cfg.topic, "no message for the idle time: end of stream");
                return Ok(Poll::End);
            }
            return Ok(Poll::Pending);
        }
        self.last_activity = Instant::now();
        let mut entries = std::mem::take(&mut self.entries);
        let mut kept = Vec::with_capacity(msgs.len());
        let mut used = 0;
        for m in msgs {
            if m.qos > 0 {
                self.acks.push_back((m.qos, m.pkid, m.gen));
            }
            // A retained copy is what the broker stored from an earlier
            // publish and sends because a subscription was made (at the
            // first start, or again when the broker kept no session): the
            // stream starts at the subscription, and after a re-subscribe
            // the copy repeats a message already received. Skipped, acked,
            // counted and logged.
            if m.retain {
                self.retained += 1;
                tracing::info!(topic = %m.topic, retained = self.retained, "retained copy skipped: the stream starts at the subscription");
                continue;
            }
            let st = Stored::of(&m, self.cfg.max_payload);
            let r = Received {
                qos: m.qos,
                pkid: m.pkid,
                dup: m.dup,
                conn: m.gen,
                content: st.content(),
                msg_id: st.msg_id,
            };
            let seq = self.next_seq + kept.len() as u64;
            if self.seen.is_redelivery(&r, seq) {
                self.duplicates += 1;
                tracing::debug!(topic = %m.topic, pkid = m.pkid, dup = m.dup, "redelivered message dropped");
                continue;
            }
            self.seen.logged(seq, &r);
            if self.log.is_some() {
                if entries.len() == used {
                    entries.push(Vec::new());
                }
                encode_entry(&st, &mut entries[used]);
                used += 1;
            }
            let cut = st.cut_from;
            kept.push((m, cut));
        }
        if let Some(log) = &self.log {
            log.append(self.next_seq, entries[..used].iter().map(Vec::as_slice))?;
        }
        self.entries = entries;
        // Durable (or no log at all): now the broker may forget them.
        self.flush()?;
        for (m, cut) in kept {
            let seq = self.next_seq;
            self.next_seq += 1;
            self.read_seq = self.next_seq;
            let payload = if cut.is_some() { &m.payload[..DEAD_LETTER_KEEP.min(m.payload.len())] } else { &m.payload };
            self.parse_one(seq, &m.topic, payload, cut, true, out)?;
        }
        Ok(Poll::Ready)
    }
}

impl<T: Send + 'static> Source for MqttSource<T> {
    type Item = T;

    fn open(&mut self, ctx: &SourceContext) -> Result<()> {
        self.log = ctx.ingest.clone();
        self.retain = ctx.retain_checkpoints.max(1);
        if let Some(log) = &self.log {
            if let Some((first, last)) = log.bounds()? {
                self.log_first = first;
                self.next_seq = last + 1;
                self.read_seq = first;
                // What the log still holds was received before: a broker
                // redelivering it must not count it twice (see `dedupe`).
                let mut from = first.max(self.next_seq.saturating_sub(self.cfg.dedupe_window as u64));
                let mut buf = Vec::new();
                while from < self.next_seq {
                    buf.clear();
                    log.read(from, 4096, &mut buf)?;
                    let Some((last_seq, _)) = buf.last() else { break };
                    from = last_seq + 1;
                    for (seq, b) in &buf {
                        let e = decode_entry(b)?;
                        let r = Received {
                            qos: e.qos,
                            pkid: e.pkid,
                            dup: false,
                            conn: 0,
                            content: e.content(),
                            msg_id: e.msg_id,
                        };
                        self.seen.logged(*seq, &r);
                    }
                }
            }
        }
        self.conn()?;
        Ok(())
    }

    fn poll_batch(&mut self, out: &mut Vec<T>, max: usize) -> Result<Poll> {
        self.poll_into(out, max)
    }

    fn poll_records(&mut self, out: &mut Vec<Record<T>>, max: usize) -> Result<Poll> {
        self.poll_into(out, max)
    }

    fn position(&self) -> Vec<u8> {
        self.read_seq.to_be_bytes().to_vec()
    }

    fn bad_records(&self) -> u64 {
        self.bad.count()
    }

    fn health(&self) -> Option<crate::metrics::SourceHealth> {
        self.health_now()
    }

    fn restore(&mut self, position: &[u8]) -> Result<()> {
        let b: [u8; 8] = position.try_into().map_err(|_| Error::Corrupt {
            what: "mqtt source position".into(),
            reason: format!("{} bytes, expected 8", position.len()),
        })?;
        let seq = u64::from_be_bytes(b);
        if let Some(log) = &self.log {
            if seq < self.log_first {
                return Err(Error::StateRefused {
                    path: log.path().to_path_buf(),
                    reason: format!(
                        "the checkpoint replays {} from message {seq}, but its ingest log starts at {}: \
                         the messages in between were released",
                        self.cfg.topic, self.log_first
                    ),
                });
            }
        }
        self.read_seq = seq;
        self.next_seq = self.next_seq.max(self.read_seq);
        Ok(())
    }

    fn on_epoch_complete(&mut self, epoch: u64, position: &[u8], pinned: Option<u64>) -> Result<()> {
        let Some(log) = &self.log else { return Ok(()) };
        let Ok(b) = <[u8; 8]>::try_from(position) else { return Ok(()) };
        // Epochs are numbered consecutively, so the retained ones are the
        // last `retain`. Epochs completed while this source was busy are
        // not reported, but an earlier position is below theirs: the
        // newest known position at or before the oldest retained epoch is
        // a safe cut. Until one is known (after a restart) nothing is cut.
        // A pinned checkpoint (a savepoint's) counts as retained.
        self.completed.push_back((epoch, u64::from_be_bytes(b)));
        let retained = epoch.saturating_add(1).saturating_sub(self.retain as u64);
        let oldest = pinned.map_or(retained, |p| p.min(retained));
        while self.completed.get(1).is_some_and(|(e, _)| *e <= oldest) {
            self.completed.pop_front();
        }
        let Some(&(e, pos)) = self.completed.front() else { return Ok(()) };
        if e > oldest {
            return Ok(());
        }
        // Keep the dedupe window's worth below the position, so a restart
        // still recognises redeliveries of what it already has.
        let cut = pos.min(self.next_seq.saturating_sub(self.cfg.dedupe_window as u64));
        if cut > self.log_first {
            log.truncate_below(cut)?;
            self.log_first = cut;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The log keeps what the oldest retained checkpoint replays, and a
    /// checkpoint whose messages were released is refused at restore.
    #[test]
    fn the_log_is_trimmed_below_the_oldest_retained_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = crate::state::Store::open(dir.path(), "j", &crate::state::StoreConfig::default()).unwrap();
        let log = IngestLog::new(std::sync::Arc::new(store), 1);
        let payloads: Vec<Vec<u8>> = (0..100u8).map(|i| vec![i]).collect();
        log.append(0, payloads.iter().map(Vec::as_slice)).unwrap();
        let mut cfg = MqttSourceConfig::new("mqtt://127.0.0.1:1", "c", "t/{sensor_id}");
        cfg.dedupe_window = 0;
        let mut src = cfg.build(|_| Ok(())).unwrap();
        src.log = Some(log.clone());
        src.retain = 3;
        src.next_seq = 100;
        let first = |src: &mut MqttSource<()>, e: u64, pos: u64| {
            src.on_epoch_complete(e, &pos.to_be_bytes(), None).unwrap();
            log.bounds().unwrap().map(|(f, _)| f)
        };
        assert_eq!(first(&mut src, 1, 10), Some(0));
        assert_eq!(first(&mut src, 2, 20), Some(0));
        assert_eq!(first(&mut src, 3, 30), Some(10), "epochs 1-3 retained: kept from epoch 1's position");
        // Epoch 4 completed unseen: epoch 3's position is the safe cut.
        assert_eq!(first(&mut src, 5, 50), Some(30));
        let e = src.restore(&25u64.to_be_bytes()).unwrap_err();
        assert!(e.to_string().contains("were released"), "{e}");
        src.restore(&30u64.to_be_bytes()).unwrap();
        // A savepoint pins epoch 5: the log keeps its position while later
        // epochs complete, and is cut past it once the pin is released.
        log.append(100, payloads.iter().map(Vec::as_slice)).unwrap();
        src.next_seq = 200;
        let pinned = |src: &mut MqttSource<()>, e: u64, pos: u64, pin: Option<u64>| {
            src.on_epoch_complete(e, &pos.to_be_bytes(), pin).unwrap();
            log.bounds().unwrap().map(|(f, _)| f)
        };
        assert_eq!(pinned(&mut src, 6, 60, Some(5)), Some(30));
        assert_eq!(pinned(&mut src, 7, 70, Some(5)), Some(50), "epoch 5's position, not epoch 5's successor's");
        for e in 8..=12 {
            assert_eq!(pinned(&mut src, e, e * 10, Some(5)), Some(50), "epoch {e}");
        }
        src.restore(&50u64.to_be_bytes()).unwrap();
        assert_eq!(pinned(&mut src, 13, 130, None), Some(110), "released: epochs 11-13 retained");
    }

    /// An ingest log entry of a one-reading message on `t/s{pkid}`.
    fn logged(pkid: u16) -> Vec<u8> {
        let m = Inbound {
            topic: format!("t/s{pkid}"),
            payload: bytes::Bytes::from_static(b"{\"x\":1}"),
            qos: 1,
            pkid,
            dup: false,
            retain: false,
            gen: 1,
            msg_id: None,
        };
        let mut b = Vec::new();
        encode_entry(&Stored::of(&m, MAX_PAYLOAD), &mut b);
        b
    }

    /// A source over `log` replaying from `read` while `next` is the next
    /// sequence number to append.
    fn replaying(log: IngestLog, read: u64, next: u64) -> MqttSource<()> {
        let mut cfg = MqttSourceConfig::new("mqtt://127.0.0.1:1", "c", "t/{sensor_id}");
        cfg.dedupe_window = 0;
        let mut src = cfg.build(|_| Ok(())).unwrap();
        src.log = Some(log);
        src.read_seq = read;
        src.next_seq = next;
        src
    }

    /// A hole in the replayed part of the log (messages acknowledged to
    /// the broker and not held) is refused, naming the missing range.
    #[test]
    fn replay_refuses_a_hole_in_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = crate::state::Store::open(dir.path(), "j", &crate::state::StoreConfig::default()).unwrap();
        let log = IngestLog::new(std::sync::Arc::new(store), 1);
        let b = logged(1);
        log.append(0, [b.as_slice(); 4]).unwrap();
        log.append(10, [b.as_slice(); 2]).unwrap();
        let mut src = replaying(log, 2, 12);
        let mut out: Vec<()> = Vec::new();
        let e = src.replay_batch(&mut out, 16).unwrap_err();
        assert!(e.to_string().contains("lacks messages 4 to 9"), "{e}");
        assert_eq!(out.len(), 2, "messages 2 and 3 were replayed before the hole");
    }

    /// Guards the replay limit on 32-bit targets (run under qemu-arm by
    /// cross/test.sh): 2^32 messages pending must not truncate to a read
    /// of 0 entries, which replay takes for a trimmed log and skips.
    #[test]
    fn replay_reads_when_2_pow_32_messages_are_pending() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = crate::state::Store::open(dir.path(), "j", &crate::state::StoreConfig::default()).unwrap();
        let log = IngestLog::new(std::sync::Arc::new(store), 1);
        let entries: Vec<Vec<u8>> = (1..=3).map(logged).collect();
        log.append(7, entries.iter().map(Vec::as_slice)).unwrap();
        let mut src = replaying(log, 7, 7 + (1u64 << 32));
        let mut out: Vec<()> = Vec::new();
        src.replay_batch(&mut out, 16).unwrap();
        assert_eq!(out.len(), 3, "the three logged messages are replayed");
        assert_eq!(src.read_seq, 10, "replay continues after the last one read");
    }

    /// Each reading of a batch counts or is dead-lettered on its own; a
    /// message with no reading, or over the limit, is malformed once.
    #[test]
    fn batched_readings_are_parsed_one_by_one() {
        let mut cfg = MqttSourceConfig::new("mqtt://127.0.0.1:1", "c", "t/{sensor_id}");
        cfg.dead_letter = Some("dead".into());
        let mut src = cfg.build(|f| Ok((f.str("sensor_id")?.into_owned(), f.f64("v")?))).unwrap();
        let mut items: Vec<String> = (0..50).map(|i| format!(r#"{{"v":{i}}}"#)).collect();
        items[3] = r#"{"v": }"#.into();
        items[40] = r#"{"w":1}"#.into();
        let payload = format!("[{}]", items.join(","));
        let mut out: Vec<(String, f64)> = Vec::new();
        src.parse_one(0, "t/s1", payload.as_bytes(), None, true, &mut out).unwrap();
        assert_eq!(out.len(), 48);
        assert_eq!(out[3], ("s1".to_string(), 4.0));
        assert_eq!(src.bad_records(), 2);
        let dead: Vec<_> = src.dead.iter().map(|(t, p, r)| (t.as_str(), p.as_slice(), r.as_str())).collect();
        assert_eq!(dead.len(), 2);
        assert_eq!((dead[0].0, dead[0].1), ("t/s1", &br#"{"v": }"#[..]));
        assert!(dead[0].2.starts_with("reading 4 of 50: payload is not JSON"), "{}", dead[0].2);
        assert_eq!((dead[1].1, dead[1].2), (&br#"{"w":1}"#[..], "reading 41 of 50: missing field `v`"));
        // JSON lines; a replayed message (not live) is counted, not resent.
        out.clear();
        src.parse_one(1, "t/s2", b"{\"v\":1}\n{\"v\":2}\nx\n", None, false, &mut out).unwrap();
        assert_eq!(out, [("s2".to_string(), 1.0), ("s2".to_string(), 2.0)]);
        assert_eq!((src.bad_records(), src.dead.len()), (3, 2));
        for (payload, cut) in [(&b"[]"[..], None), (b" \n ", None), (b"", None), (b"[{\"v\":1}", Some(300_000))] {
            out.clear();
            src.parse_one(2, "t/s3", payload, cut, true, &mut out).unwrap();
            assert!(out.is_empty(), "{payload:?}");
        }
        assert_eq!((src.bad_records(), src.dead.len()), (7, 6));
        let reasons: Vec<&str> = src.dead.iter().skip(2).map(|d| d.2.as_str()).collect();
        assert_eq!(reasons[0], "no reading in the payload (blank, or an empty array)");
        assert_eq!(reasons[2], "empty payload");
        assert!(reasons[3].starts_with("payload of 300000 bytes is over"), "{}", reasons[3]);
    }

    #[test]
    fn entries_round_trip() {
        let m = Inbound {
            topic: "a/b".into(),
            payload: bytes::Bytes::from_static(b"{\"x\":1}"),
            qos: 1,
            pkid: 3,
            dup: false,
            retain: false,
            gen: 1,
            msg_id: Some("id-1".into()),
        };
        let mut b = Vec::new();
        encode_entry(&Stored::of(&m, MAX_PAYLOAD), &mut b);
        let e = decode_entry(&b).unwrap();
        assert_eq!((e.topic, e.msg_id, e.payload), ("a/b", Some("id-1"), &b"{\"x\":1}"[..]));
        assert_eq!((e.qos, e.pkid, e.cut_from), (1, 3, None));
        assert!(decode_entry(&b[..4]).is_err());
        // An oversized payload is stored as a prefix and its length.
        let big = Inbound { payload: bytes::Bytes::from(vec![b'x'; 5000]), ..m };
        encode_entry(&Stored::of(&big, 4096), &mut b);
        let e = decode_entry(&b).unwrap();
        assert_eq!((e.payload.len(), e.cut_from), (DEAD_LETTER_KEEP, Some(5000)));
        // Entries of the first format still read (no packet id).
        let v1 = [&[1u8, 0, 1, b't', 0, 0][..], b"{}"].concat();
        let e = decode_entry(&v1).unwrap();
        assert_eq!((e.topic, e.payload, e.qos), ("t", &b"{}"[..], 0));
    }
}
