//! Publishing readings to MQTT: the sensor simulator behind
//! `rivulet simulate`, and the publisher tests and benchmarks use.

use super::sensor::{synthetic_reading, Reading};
use anyhow::Context;
use rumqttc::v5::{self, mqttbytes::QoS};
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A QoS 1 publisher with a persistent session: what it sent survives a
/// broker restart (rumqttc resends what was not acknowledged).
pub struct Publisher {
    client: PubClient,
    acked: Arc<AtomicU64>,
    sent: u64,
    stop: Arc<AtomicBool>,
    link: Arc<Link>,
}

/// What the connection thread learnt about the broker: whether it ever
/// accepted the connection, and the last connection error.
#[derive(Default)]
struct Link {
    connected: AtomicBool,
    last_error: std::sync::Mutex<Option<String>>,
}

impl Link {
    fn failed(&self, e: impl std::fmt::Display) {
        if let Ok(mut l) = self.last_error.lock() {
            *l = Some(e.to_string());
        }
    }
}

enum PubClient {
    V5(v5::Client),
    V4(rumqttc::Client),
}

impl Publisher {
    /// Connects to `url` as `client_id` (MQTT 5, or 3.1.1 with `v311`).
    ///
    /// # Errors
    /// A bad URL.
    pub fn connect(url: &str, client_id: &str, v311: bool) -> anyhow::Result<Self> {
        let (host, port) = rivulet::mqtt::parse_url(url)?;
        let acked = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let link = Arc::new(Link::default());
        let (a, s, l) = (acked.clone(), stop.clone(), link.clone());
        let client = if v311 {
            let mut o = rumqttc::MqttOptions::new(client_id, host, port);
            o.set_clean_session(false).set_keep_alive(Duration::from_secs(30)).set_inflight(1000);
            let (c, mut conn) = rumqttc::Client::new(o, 10_000);
            std::thread::spawn(move || {
                for ev in conn.iter() {
                    match ev {
                        Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))) => {
                            a.fetch_add(1, Ordering::AcqRel);
                        }
                        Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => {
                            l.connected.store(true, Ordering::Release);
                        }
                        Ok(_) => {}
                        Err(_) if s.load(Ordering::Acquire) => break,
                        Err(e) => {
                            l.failed(e);
                            std::thread::sleep(Duration::from_millis(200));
                        }
                    }
                }
            });
            PubClient::V4(c)
        } else {
            let mut o = v5::MqttOptions::new(client_id, host, port);
            o.set_clean_start(false)
                .set_session_expiry_interval(Some(3600))
                .set_keep_alive(Duration::from_secs(30))
                .set_outgoing_inflight_upper_limit(1000);
            let (c, mut conn) = v5::Client::new(o, 10_000);
            std::thread::spawn(move || {
                for ev in conn.iter() {
                    match ev {
                        Ok(v5::Event::Incoming(v5::mqttbytes::v5::Packet::PubAck(_))) => {
                            a.fetch_add(1, Ordering::AcqRel);
                        }
                        Ok(v5::Event::Incoming(v5::mqttbytes::v5::Packet::ConnAck(_))) => {
                            l.connected.store(true, Ordering::Release);
                        }
                        Ok(_) => {}
                        Err(_) if s.load(Ordering::Acquire) => break,
                        Err(e) => {
                            l.failed(e);
                            std::thread::sleep(Duration::from_millis(200));
                        }
                    }
                }
            });
            PubClient::V5(c)
        };
        Ok(Self { client, acked, sent: 0, stop, link })
    }

    /// Waits until the broker accepted the connection.
    ///
    /// # Errors
    /// Not accepted within `timeout` (e.g. connection refused: nothing
    /// listens at the URL), with the last connection error.
    pub fn wait_connected(&self, timeout: Duration) -> anyhow::Result<()> {
        let until = Instant::now() + timeout;
        while !self.link.connected.load(Ordering::Acquire) {
            if Instant::now() > until {
                let last = self.link.last_error.lock().ok().and_then(|l| l.clone());
                anyhow::bail!(
                    "no MQTT broker accepted the connection within {timeout:?}{}",
                    last.map(|e| format!(" (last error: {e})")).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    /// Publishes one message at QoS 1 (blocks while rumqttc's queue is full).
    ///
    /// # Errors
    /// The connection thread is gone.
    pub fn send(&mut self, topic: &str, payload: Vec<u8>) -> anyhow::Result<()> {
        match &self.client {
            PubClient::V5(c) => c.publish(topic, QoS::AtLeastOnce, false, payload)?,
            PubClient::V4(c) => c.publish(topic, rumqttc::QoS::AtLeastOnce, false, payload)?,
        }
        self.sent += 1;
        Ok(())
    }

    /// Publishes one message at QoS 1, giving up when `stop` is set while
    /// rumqttc's queue is full (e.g. the broker is down). Returns whether
    /// it was queued.
    ///
    /// # Errors
    /// The connection thread is gone.
    pub fn send_unless(&mut self, topic: &str, payload: Vec<u8>, stop: &AtomicBool) -> anyhow::Result<bool> {
        loop {
            let r = match &self.client {
                PubClient::V5(c) => c.try_publish(topic, QoS::AtLeastOnce, false, payload.clone()).is_ok(),
                PubClient::V4(c) => c.try_publish(topic, rumqttc::QoS::AtLeastOnce, false, payload.clone()).is_ok(),
            };
            if r {
                self.sent += 1;
                return Ok(true);
            }
            if stop.load(Ordering::Relaxed) {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Messages acknowledged by the broker.
    pub fn acked(&self) -> u64 {
        self.acked.load(Ordering::Acquire)
    }

    /// Waits until the broker acknowledged every message sent.
    ///
    /// # Errors
    /// Not all acknowledged within `timeout`.
    pub fn wait_acked(&self, timeout: Duration) -> anyhow::Result<()> {
        let until = Instant::now() + timeout;
        while self.acked() < self.sent {
            if Instant::now() > until {
                anyhow::bail!("{} of {} messages unacknowledged", self.sent - self.acked(), self.sent);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        match &self.client {
            PubClient::V5(c) => drop(c.disconnect()),
            PubClient::V4(c) => drop(c.disconnect()),
        }
    }
}

/// The topic and JSON payload of a reading (°F), as sensors publish them.
pub fn reading_message(r: &Reading) -> (String, Vec<u8>) {
    let topic = format!("sensors/{}/temp", r.sensor_id);
    let mut p = Vec::with_capacity(48);
    let _ = write!(p, "{{\"ts_ms\":{},\"temp_f\":{}}}", r.ts_ms, r.temp);
    (topic, p)
}

/// How readings are grouped into messages, as a gateway that buffers each
/// sensor's readings sends them: message `m` carries the next `batch`
/// readings of sensor `m % sensors` (reading `i` is sensor `i % sensors`'s,
/// as [`synthetic_reading`] numbers them), sensors in turn. With a batch
/// of 1, message `m` is reading `m`.
#[derive(Debug, Clone, Copy)]
pub struct Batching {
    /// Readings per message (at least 1).
    pub batch: u64,
    /// Number of sensors (at least 1).
    pub sensors: u64,
    /// Readings `0..total` are published (`None`: without end).
    pub total: Option<u64>,
}

impl Batching {
    /// `batch` readings per message from `sensors` sensors.
    pub fn new(batch: u64, sensors: u32, total: Option<u64>) -> Self {
        Self { batch: batch.max(1), sensors: u64::from(sensors.max(1)), total }
    }

    /// The readings of message `m`, in order (empty past the end).
    pub fn readings(&self, m: u64) -> impl Iterator<Item = u64> {
        let (s, round) = (m % self.sensors, m / self.sensors);
        let (batch, sensors, total) = (self.batch, self.sensors, self.total.unwrap_or(u64::MAX));
        (0..batch).map(move |k| s + (round * batch + k) * sensors).take_while(move |i| *i < total)
    }

    /// How many messages carry readings `0..total`.
    pub fn messages(&self) -> Option<u64> {
        let per_round = self.batch * self.sensors;
        self.total.map(|n| n / per_round * self.sensors + (n % per_round).min(self.sensors))
    }

    /// How many readings messages `0..m` carry.
    pub fn readings_in(&self, m: u64) -> u64 {
        match self.total {
            None => m * self.batch,
            Some(_) => (0..m).map(|k| self.readings(k).count() as u64).sum(),
        }
    }
}

/// The topic and payload of a message carrying `readings` (all of one
/// sensor): the single-reading JSON object for one, a JSON array of such
/// objects for more.
pub fn batch_message(readings: &[Reading]) -> (String, Vec<u8>) {
    let Some(first) = readings.first() else { return (String::new(), Vec::new()) };
    if readings.len() == 1 {
        return reading_message(first);
    }
    let mut p = Vec::with_capacity(2 + readings.len() * 48);
    p.push(b'[');
    for (k, r) in readings.iter().enumerate() {
        if k > 0 {
            p.push(b',');
        }
        p.extend_from_slice(&reading_message(r).1);
    }
    p.push(b']');
    (format!("sensors/{}/temp", first.sensor_id), p)
}

/// The simulator's settings.
#[derive(Debug, Clone)]
pub struct Simulation {
    /// Broker URL.
    pub url: String,
    /// Speak MQTT 3.1.1.
    pub v311: bool,
    /// Number of sensors.
    pub sensors: u32,
    /// Messages per second over all sensors.
    pub rate: f64,
    /// Stop after this many messages (`None`: until stopped).
    pub count: Option<u64>,
    /// Share of messages stamped 10 s in the past (late for the job).
    pub late_fraction: f64,
    /// Share of readings malformed.
    pub malformed_fraction: f64,
    /// Readings per message (1: one JSON object per message; more: a JSON
    /// array, grouped as [`Batching`] says).
    pub batch: u64,
}

/// How long the simulator waits for the broker to accept its connection,
/// and at the end for its acknowledgements.
const BROKER_TIMEOUT: Duration = Duration::from_secs(10);

/// Publishes live readings stamped with the current time until `count`
/// readings were sent or `stop` is set; returns how many the broker
/// acknowledged (only those count as published).
///
/// # Errors
/// The URL is not an MQTT URL, no broker accepted the connection, or,
/// unless stopped, not every reading was acknowledged.
pub fn simulate(s: &Simulation, stop: &AtomicBool) -> anyhow::Result<u64> {
    let client_id = format!("rivulet-simulator-{}", std::process::id());
    let mut p = Publisher::connect(&s.url, &client_id, s.v311).context("connecting the simulator")?;
    p.wait_connected(BROKER_TIMEOUT).with_context(|| format!("connecting the simulator to {}", s.url))?;
    let batching = Batching::new(s.batch, s.sensors, s.count);
    let started = Instant::now();
    // Readings sent, and messages.
    let (mut sent, mut m) = (0u64, 0u64);
    let mut body = Vec::new();
    while !stop.load(Ordering::Relaxed) && batching.messages().is_none_or(|n| m < n) {
        let due = (started.elapsed().as_secs_f64() * s.rate) as u64;
        if sent >= due {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        let mut topic = String::new();
        body.clear();
        let mut n = 0;
        for i in batching.readings(m) {
            let mut r = synthetic_reading(i, s.sensors);
            r.ts_ms = now - (i % 7) as i64 * 13;
            if frac(i) < s.late_fraction {
                r.ts_ms -= 10_000;
            }
            if n == 0 {
                topic = format!("sensors/{}/temp", r.sensor_id);
            } else {
                body.push(b',');
            }
            // `seq` keeps two equal readings apart: identical messages
            // count as one broker redelivery.
            if frac(i ^ 0x5555) < s.malformed_fraction {
                let _ = write!(body, "{{\"ts_ms\": \"soon\", \"temp_f\": , \"seq\":{i}}}");
            } else {
                let _ = write!(body, "{{\"ts_ms\":{},\"temp_f\":{},\"seq\":{i}}}", r.ts_ms, r.temp);
            }
            n += 1;
        }
        let payload = if n > 1 { [&b"["[..], &body, b"]"].concat() } else { body.clone() };
        if !p.send_unless(&topic, payload, stop)? {
            break;
        }
        sent += n;
        m += 1;
    }
    if stop.load(Ordering::Relaxed) {
        // Stopped: what the broker acknowledged by now is what was published.
        p.wait_acked(Duration::from_secs(1)).ok();
        return Ok(batching.readings_in(p.acked().min(m)));
    }
    p.wait_acked(BROKER_TIMEOUT).with_context(|| format!("publishing {sent} readings to {}", s.url))?;
    Ok(sent)
}

fn frac(i: u64) -> f64 {
    let mut z = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z ^= z >> 31;
    (z % 1_000_000) as f64 / 1_000_000.0
}
