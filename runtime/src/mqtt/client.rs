//! One MQTT connection: the rumqttc event loop runs on its own thread with
//! a current-thread tokio runtime and never waits on the job — incoming
//! messages go into a bounded channel sized above the broker's inflight
//! window, acks and publishes come back through rumqttc's request channel.
//! It reconnects with backoff forever and re-subscribes whenever the broker
//! reports that it kept no session.

use crate::error::{Error, Result};
use crossbeam_channel::{Receiver, Sender, TrySendError};
use rumqttc::v5;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most QoS 1/2 publishes of this client in flight at once (MQTT 5; the
/// broker's receive maximum lowers it: Mosquitto's default is 20).
/// rumqttc keeps a slot per possible packet id, written at connect, so its
/// default of 65,535 cost 14 MB of resident memory per connection.
const OUTGOING_INFLIGHT: u16 = 1024;

/// Largest MQTT packet accepted or sent: the protocol's own maximum
/// (remaining length 268,435,455 plus a 5-byte fixed header). Accepting
/// every packet the broker may send means no message can make the
/// connection fail (a packet over the client's limit ends the connection,
/// and the broker would send it again after every reconnect), and over
/// MQTT 5 the broker never drops a message silently for being larger than
/// what we announced. Oversized payloads are the source's to refuse, as
/// malformed input (see `MqttSourceConfig::max_payload`); the broker's own
/// `max_packet_size` bounds what one message can cost in memory.
const MAX_PACKET: usize = 268_435_460;

/// Reconnect delays: the first retry after `FIRST_RETRY`, doubling up to
/// `MAX_RETRY`, each drawn between half and all of that (jitter spreads
/// the engines of a cluster that lost the same broker).
const FIRST_RETRY: Duration = Duration::from_millis(50);
const MAX_RETRY: Duration = Duration::from_secs(1);

/// The user property that carries a message's deterministic id.
pub const MSG_ID_PROPERTY: &str = "rivulet-msg-id";

/// The MQTT protocol version to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Protocol {
    /// MQTT 5 (session expiry, receive maximum, user properties).
    #[default]
    #[serde(rename = "5")]
    V5,
    /// MQTT 3.1.1, for older brokers: no user properties, and the session
    /// lasts as long as the broker keeps persistent clients.
    #[serde(rename = "3.1.1")]
    V311,
}

/// How to reach the broker and what session to keep there.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Session {
    /// Broker address: `mqtt://host:port` (or `tcp://`, or `host:port`).
    pub url: String,
    /// Client id; the broker keeps the session under it, so a restarted
    /// job must use the same one.
    pub client_id: String,
    /// Protocol version.
    #[serde(default)]
    pub protocol: Protocol,
    /// Start a fresh session (drops what the broker queued while away).
    #[serde(default)]
    pub clean_start: bool,
    /// How long the broker keeps the session after a disconnect (MQTT 5).
    #[serde(default = "default_expiry")]
    pub session_expiry_secs: u32,
    /// Keep-alive interval in seconds (at least 5).
    #[serde(default = "default_keep_alive")]
    pub keep_alive_secs: u16,
    /// Unacknowledged QoS 1/2 messages the broker may have in flight to us
    /// (MQTT 5; with 3.1.1 the broker's `max_inflight_messages` rules).
    #[serde(default = "default_receive_maximum")]
    pub receive_maximum: u16,
}

fn default_expiry() -> u32 {
    7 * 24 * 3600
}
fn default_keep_alive() -> u16 {
    30
}
fn default_receive_maximum() -> u16 {
    1000
}

impl Session {
    /// A persistent MQTT 5 session with defaults.
    pub fn new(url: impl Into<String>, client_id: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            client_id: client_id.into(),
            protocol: Protocol::V5,
            clean_start: false,
            session_expiry_secs: default_expiry(),
            keep_alive_secs: default_keep_alive(),
            receive_maximum: default_receive_maximum(),
        }
    }

    /// Host and port of [`Session::url`].
    ///
    /// # Errors
    /// The URL is not `mqtt://host:port`-shaped.
    pub fn host_port(&self) -> Result<(String, u16)> {
        parse_url(&self.url)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        self.host_port()?;
        if self.client_id.is_empty() || self.client_id.len() > 128 {
            return Err(Error::config("client_id", "must be 1 to 128 bytes"));
        }
        if self.keep_alive_secs < 5 {
            return Err(Error::config("keep_alive_secs", "must be at least 5"));
        }
        if self.receive_maximum == 0 {
            return Err(Error::config("receive_maximum", "must be at least 1"));
        }
        Ok(())
    }
}

/// Parses `mqtt://host:port`, `tcp://host:port` or `host:port` (port
/// defaults to 1883).
///
/// # Errors
/// [`Error::Config`] naming `url`.
pub fn parse_url(url: &str) -> Result<(String, u16)> {
    let rest = url.strip_prefix("mqtt://").or_else(|| url.strip_prefix("tcp://")).unwrap_or(url);
    if rest.contains("://") {
        return Err(Error::config("url", format!("`{url}`: only mqtt:// (plain TCP) is supported")));
    }
    let rest = rest.trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => {
            (h, p.parse::<u16>().map_err(|_| Error::config("url", format!("`{url}`: port `{p}` is not a number")))?)
        }
        None => (rest, 1883),
    };
    if host.is_empty() {
        return Err(Error::config("url", format!("`{url}` has no host")));
    }
    Ok((host.to_string(), port))
}

/// A message as received.
#[derive(Debug)]
pub(crate) struct Inbound {
    pub(crate) topic: String,
    pub(crate) payload: bytes::Bytes,
    pub(crate) qos: u8,
    pub(crate) pkid: u16,
    /// The DUP flag: the broker sent this packet before.
    pub(crate) dup: bool,
    /// The RETAIN flag: a stored copy sent because a subscription was
    /// made (a live message is forwarded with it clear).
    pub(crate) retain: bool,
    /// Connection generation it arrived on: acks for an older connection
    /// are not sent (the broker redelivers those messages instead).
    pub(crate) gen: u64,
    /// The [`MSG_ID_PROPERTY`] user property, if the publisher set one.
    pub(crate) msg_id: Option<String>,
}

#[derive(Default)]
struct Shared {
    gen: AtomicU64,
    connected: AtomicBool,
    acked: AtomicU64,
    stop: AtomicBool,
}

enum Client {
    V5(v5::AsyncClient),
    V4(rumqttc::AsyncClient),
}

/// A running connection.
pub(crate) struct Conn {
    client: Client,
    pub(crate) inbound: Receiver<Inbound>,
    shared: Arc<Shared>,
    done: Receiver<()>,
    pub(crate) name: String,
}

fn qos4(q: u8) -> rumqttc::QoS {
    match q {
        0 => rumqttc::QoS::AtMostOnce,
        1 => rumqttc::QoS::AtLeastOnce,
        _ => rumqttc::QoS::ExactlyOnce,
    }
}

fn qos5(q: u8) -> v5::mqttbytes::QoS {
    match q {
        0 => v5::mqttbytes::QoS::AtMostOnce,
        1 => v5::mqttbytes::QoS::AtLeastOnce,
        _ => v5::mqttbytes::QoS::ExactlyOnce,
    }
}

struct Loop {
    shared: Arc<Shared>,
    tx: Sender<Inbound>,
    name: String,
    subscribe: Option<(String, u8)>,
    backoff: Duration,
    failures: u64,
    last_warn: Option<Instant>,
    connects: u64,
}

impl Loop {
    async fn deliver(&self, mut m: Inbound) {
        loop {
            match self.tx.try_send(m) {
                Ok(()) => return,
                Err(TrySendError::Full(x)) => {
                    if self.shared.stop.load(Ordering::Acquire) {
                        return;
                    }
                    m = x;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err(TrySendError::Disconnected(_)) => return,
            }
        }
    }

    /// Returns whether to (re-)subscribe.
    fn on_connack(&mut self, session_present: bool) -> bool {
        self.shared.gen.fetch_add(1, Ordering::AcqRel);
        self.shared.connected.store(true, Ordering::Release);
        self.backoff = FIRST_RETRY;
        self.connects += 1;
        if self.failures > 0 {
            tracing::info!(client = %self.name, failures = self.failures, session_present, "mqtt reconnected");
            self.failures = 0;
        }
        if !session_present && self.connects > 1 && self.subscribe.is_some() {
            tracing::warn!(client = %self.name, "the broker kept no session: re-subscribing (messages queued while away are gone)");
        }
        self.subscribe.is_some() && (self.connects == 1 || !session_present)
    }

    async fn on_error(&mut self, e: &dyn std::fmt::Display) {
        self.shared.connected.store(false, Ordering::Release);
        self.failures += 1;
        let now = Instant::now();
        if self.last_warn.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(10)) {
            tracing::warn!(client = %self.name, error = %e, failures = self.failures, "mqtt connection lost; reconnecting");
            self.last_warn = Some(now);
        }
        tokio::time::sleep(jittered(self.backoff)).await;
        self.backoff = (self.backoff * 2).min(MAX_RETRY);
    }

    fn stopping(&self) -> bool {
        self.shared.stop.load(Ordering::Acquire)
    }
}

/// A delay between half and all of `d`, drawn from the clock's nanoseconds
/// and the thread's identity (good enough to spread retries; no RNG crate).
fn jittered(d: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    let frac = (h.finish() % 1_000) as u32;
    d / 2 + d / 2 * frac / 1_000
}

impl Conn {
    /// Connects (in the background) and, with `subscribe = (filter, qos)`,
    /// subscribes with manual acks.
    ///
    /// # Errors
    /// A bad session config, or the thread cannot be started.
    pub(crate) fn start(s: &Session, subscribe: Option<(String, u8)>, inbound_cap: usize) -> Result<Conn> {
        s.validate()?;
        let (host, port) = s.host_port()?;
        let shared = Arc::new(Shared::default());
        let (tx, rx) = crossbeam_channel::bounded(inbound_cap.max(16));
        let (done_tx, done_rx) = crossbeam_channel::bounded(1);
        let manual = subscribe.is_some();
        let mut lp = Loop {
            shared: shared.clone(),
            tx,
            name: s.client_id.clone(),
            subscribe,
            backoff: FIRST_RETRY,
            failures: 0,
            last_warn: None,
            connects: 0,
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::io("<tokio runtime>", e))?;
        let client = match s.protocol {
            Protocol::V5 => {
                let mut o = v5::MqttOptions::new(s.client_id.clone(), host, port);
                o.set_keep_alive(Duration::from_secs(u64::from(s.keep_alive_secs)))
                    .set_clean_start(s.clean_start)
                    .set_session_expiry_interval(Some(s.session_expiry_secs))
                    .set_receive_maximum(Some(s.receive_maximum))
                    .set_connection_timeout(5)
                    .set_manual_acks(manual)
                    .set_outgoing_inflight_upper_limit(OUTGOING_INFLIGHT);
                // Announced to the broker (which drops larger messages
                // silently, MQTT 5 §3.1.2.11.4): the protocol maximum, so it
                // drops none; see `MAX_PACKET`.
                o.set_max_packet_size(Some(MAX_PACKET as u32));
                // Small packets (acks, results) go out at once: with Nagle
                // the last publish of an epoch and its PUBACK wait for a
                // delayed TCP ack (~40 ms).
                let mut net = o.network_options();
                net.set_tcp_nodelay(true);
                o.set_network_options(net);
                let (client, mut el) = v5::AsyncClient::new(o, 10_000);
                let c2 = client.clone();
                spawn(&s.client_id, move || {
                    rt.block_on(async move {
                        loop {
                            let ev = el.poll().await;
                            match ev {
                                Ok(v5::Event::Incoming(v5::mqttbytes::v5::Packet::Publish(p))) => {
                                    let msg_id = p.properties.as_ref().and_then(|pr| {
                                        pr.user_properties.iter().find(|(k, _)| k == MSG_ID_PROPERTY).map(|(_, v)| v.clone())
                                    });
                                    let m = Inbound {
                                        topic: String::from_utf8_lossy(&p.topic).into_owned(),
                                        payload: p.payload,
                                        qos: p.qos as u8,
                                        pkid: p.pkid,
                                        dup: p.dup,
                                        retain: p.retain,
                                        gen: lp.shared.gen.load(Ordering::Acquire),
                                        msg_id,
                                    };
                                    lp.deliver(m).await;
                                }
                                Ok(v5::Event::Incoming(v5::mqttbytes::v5::Packet::ConnAck(c))) => {
                                    if lp.on_connack(c.session_present) {
                                        if let Some((f, q)) = &lp.subscribe {
                                            if let Err(e) = c2.try_subscribe(f.clone(), qos5(*q)) {
                                                tracing::error!(client = %lp.name, error = %e, "mqtt subscribe request failed");
                                            }
                                        }
                                    }
                                }
                                Ok(v5::Event::Incoming(v5::mqttbytes::v5::Packet::SubAck(a))) => {
                                    for rc in a.return_codes {
                                        if !matches!(rc, v5::mqttbytes::v5::SubscribeReasonCode::Success(_)) {
                                            tracing::error!(client = %lp.name, code = ?rc, "the broker refused the subscription");
                                        }
                                    }
                                }
                                Ok(v5::Event::Incoming(v5::mqttbytes::v5::Packet::PubAck(_))) => {
                                    lp.shared.acked.fetch_add(1, Ordering::AcqRel);
                                }
                                Ok(v5::Event::Outgoing(rumqttc::Outgoing::Disconnect)) if lp.stopping() => break,
                                Ok(_) => {}
                                Err(e) => {
                                    if lp.stopping() {
                                        break;
                                    }
                                    // Acks queued for the lost connection would name
                                    // packet ids the broker may reuse: drop them, the
                                    // broker redelivers and the source acks again.
                                    el.pending.retain(|r| !matches!(r, v5::Request::PubAck(_) | v5::Request::PubRec(_)));
                                    lp.on_error(&e).await;
                                }
                            }
                        }
                    });
                    let _ = done_tx.send(());
                })?;
                Client::V5(client)
            }
            Protocol::V311 => {
                let mut o = rumqttc::MqttOptions::new(s.client_id.clone(), host, port);
                o.set_keep_alive(Duration::from_secs(u64::from(s.keep_alive_secs)))
                    .set_clean_session(s.clean_start)
                    .set_manual_acks(manual)
                    .set_max_packet_size(MAX_PACKET, MAX_PACKET);
                let (client, mut el) = rumqttc::AsyncClient::new(o, 10_000);
                el.network_options.set_tcp_nodelay(true);
                let c2 = client.clone();
                spawn(&s.client_id, move || {
                    rt.block_on(async move {
                        loop {
                            let ev = el.poll().await;
                            match ev {
                                Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                                    let m = Inbound {
                                        topic: p.topic,
                                        payload: p.payload,
                                        qos: p.qos as u8,
                                        pkid: p.pkid,
                                        dup: p.dup,
                                        retain: p.retain,
                                        gen: lp.shared.gen.load(Ordering::Acquire),
                                        msg_id: None,
                                    };
                                    lp.deliver(m).await;
                                }
                                Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(c))) => {
                                    if lp.on_connack(c.session_present) {
                                        if let Some((f, q)) = &lp.subscribe {
                                            if let Err(e) = c2.try_subscribe(f.clone(), qos4(*q)) {
                                                tracing::error!(client = %lp.name, error = %e, "mqtt subscribe request failed");
                                            }
                                        }
                                    }
                                }
                                Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(a))) => {
                                    for rc in a.return_codes {
                                        if !matches!(rc, rumqttc::SubscribeReasonCode::Success(_)) {
                                            tracing::error!(client = %lp.name, code = ?rc, "the broker refused the subscription");
                                        }
                                    }
                                }
                                Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))) => {
                                    lp.shared.acked.fetch_add(1, Ordering::AcqRel);
                                }
                                Ok(rumqttc::Event::Outgoing(rumqttc::Outgoing::Disconnect)) if lp.stopping() => break,
                                Ok(_) => {}
                                Err(e) => {
                                    if lp.stopping() {
                                        break;
                                    }
                                    el.pending.retain(|r| !matches!(r, rumqttc::Request::PubAck(_) | rumqttc::Request::PubRec(_)));
                                    lp.on_error(&e).await;
                                }
                            }
                        }
                    });
                    let _ = done_tx.send(());
                })?;
                Client::V4(client)
            }
        };
        Ok(Conn { client, inbound: rx, shared, done: done_rx, name: s.client_id.clone() })
    }

    /// The current connection generation (bumped at every CONNACK).
    pub(crate) fn gen(&self) -> u64 {
        self.shared.gen.load(Ordering::Acquire)
    }

    /// Whether the broker accepted the connection and it is up.
    pub(crate) fn connected(&self) -> bool {
        self.shared.connected.load(Ordering::Acquire)
    }

    /// PUBACKs received for our publishes.
    pub(crate) fn acked(&self) -> u64 {
        self.shared.acked.load(Ordering::Acquire)
    }

    fn closed(&self) -> Error {
        Error::Mqtt { client: self.name.clone(), reason: "the connection thread stopped".into() }
    }

    /// Queues an ack. `Ok(false)`: the request channel is full, try later.
    ///
    /// # Errors
    /// The connection thread is gone.
    pub(crate) fn try_ack(&self, qos: u8, pkid: u16) -> Result<bool> {
        let r = match &self.client {
            Client::V5(c) => {
                let mut p = v5::mqttbytes::v5::Publish::new("", qos5(qos), Vec::new(), None);
                p.pkid = pkid;
                c.try_ack(&p).map_err(|_| true)
            }
            Client::V4(c) => {
                let mut p = rumqttc::Publish::new("", qos4(qos), Vec::new());
                p.pkid = pkid;
                c.try_ack(&p).map_err(|_| true)
            }
        };
        self.verdict(r)
    }

    fn verdict(&self, r: std::result::Result<(), bool>) -> Result<bool> {
        match r {
            Ok(()) => Ok(true),
            // A full channel reports TryRequest; a closed one as well, so
            // tell them apart by the thread's liveness.
            Err(_) if self.done.is_empty() && !self.thread_gone() => Ok(false),
            Err(_) => Err(self.closed()),
        }
    }

    fn thread_gone(&self) -> bool {
        matches!(self.done.try_recv(), Ok(()) | Err(crossbeam_channel::TryRecvError::Disconnected))
    }

    /// Queues a publish. `Ok(false)`: the request channel is full.
    ///
    /// # Errors
    /// The connection thread is gone.
    pub(crate) fn try_publish(&self, topic: &str, payload: Vec<u8>, qos: u8, props: &[(&str, String)]) -> Result<bool> {
        let r = match &self.client {
            Client::V5(c) => {
                let properties = v5::mqttbytes::v5::PublishProperties {
                    user_properties: props.iter().map(|(k, v)| ((*k).to_string(), v.clone())).collect(),
                    ..Default::default()
                };
                c.try_publish_with_properties(topic, qos5(qos), false, payload, properties).map_err(|_| true)
            }
            Client::V4(c) => c.try_publish(topic, qos4(qos), false, payload).map_err(|_| true),
        };
        self.verdict(r)
    }

    /// Publishes, waiting while the request channel is full.
    ///
    /// # Errors
    /// The connection thread is gone.
    pub(crate) fn publish(&self, topic: &str, payload: Vec<u8>, qos: u8, props: &[(&str, String)]) -> Result<()> {
        loop {
            if self.try_publish(topic, payload.clone(), qos, props)? {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        match &self.client {
            Client::V5(c) => drop(c.try_disconnect()),
            Client::V4(c) => drop(c.try_disconnect()),
        }
        // Lets queued acks and the DISCONNECT go out; never blocks for long.
        let _ = self.done.recv_timeout(Duration::from_secs(2));
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<()> {
    std::thread::Builder::new().name(format!("mqtt-{name}")).spawn(f).map(|_| ()).map_err(|e| Error::io("<thread>", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guards issue 12 §7: reconnect delays stay within half and all of the
    /// capped backoff, so a restarted broker is reached within about a second.
    #[test]
    fn retry_delays_are_jittered_and_capped() {
        let mut b = FIRST_RETRY;
        for _ in 0..20 {
            let d = jittered(b);
            assert!(d >= b / 2 && d <= b, "{d:?} for {b:?}");
            b = (b * 2).min(MAX_RETRY);
        }
        assert_eq!(b, MAX_RETRY);
        assert!(MAX_RETRY <= Duration::from_secs(1));
    }

    #[test]
    fn urls() {
        assert_eq!(parse_url("mqtt://127.0.0.1:1884").unwrap(), ("127.0.0.1".into(), 1884));
        assert_eq!(parse_url("tcp://h").unwrap(), ("h".into(), 1883));
        assert_eq!(parse_url("h:1").unwrap(), ("h".into(), 1));
        assert!(parse_url("mqtts://h:1").is_err());
        assert!(parse_url("mqtt://h:x").is_err());
    }
}
