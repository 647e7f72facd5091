//! The MQTT output: publishes what a checkpoint committed, QoS 1, one
//! message per record on a topic rendered from its fields
//! (`averages/{sensor_id}`). Each message carries a deterministic id (user
//! property `rivulet-msg-id` = `<client id>:<epoch count>:<index>`), so a
//! consumer drops the duplicates that a crash between publishing an epoch
//! and recording it causes: the replay publishes the same ids. Eager output
//! numbers results over the job's life instead (`<client id>:r<number>`),
//! which a replay after a crash repeats too.

use super::Output;
use crate::error::{Error, Result};
use crate::mqtt::{Conn, Session, TopicTemplate};
use std::time::{Duration, Instant};

type Render = Box<dyn FnMut(&[u8]) -> std::result::Result<Vec<u8>, String> + Send>;

/// Publishes committed records to MQTT. Input lines (one record each) are
/// JSON objects, or any text a `render` function turns into one.
pub struct MqttOutput {
    session: Session,
    template: TopicTemplate,
    qos: u8,
    conn: Option<Conn>,
    render: Option<Render>,
    /// Epochs committed so far (the commit record).
    epochs: u64,
    index: u64,
    /// Eager output: results published over the job's life.
    seq: u64,
    published: u64,
    ack_timeout: Duration,
}

impl MqttOutput {
    /// Publishes to topics rendered from `topic` with QoS `qos`.
    ///
    /// # Errors
    /// [`Error::Config`] for a bad session, topic or QoS.
    pub fn new(session: Session, topic: &str, qos: u8) -> Result<Self> {
        session.validate()?;
        let template = TopicTemplate::parse_publish("--publish", topic)?;
        if qos > 2 {
            return Err(Error::config("qos", "must be 0, 1 or 2"));
        }
        Ok(Self {
            session,
            template,
            qos,
            conn: None,
            render: None,
            epochs: 0,
            index: 0,
            seq: 0,
            published: 0,
            ack_timeout: Duration::from_secs(60),
        })
    }

    /// Turns each input line into the JSON object to publish (e.g. from a
    /// CSV row), instead of taking lines as JSON already.
    pub fn with_render(
        mut self,
        render: impl FnMut(&[u8]) -> std::result::Result<Vec<u8>, String> + Send + 'static,
    ) -> Self {
        self.render = Some(Box::new(render));
        self
    }

    fn conn(&mut self) -> Result<&Conn> {
        if self.conn.is_none() {
            self.conn = Some(Conn::start(&self.session, None, 16)?);
        }
        self.conn.as_ref().ok_or_else(|| Error::config("session", "not connected"))
    }

    fn err(&self, reason: String) -> Error {
        Error::Mqtt { client: self.session.client_id.clone(), reason }
    }

    fn publish_line(&mut self, line: &[u8], eager: bool) -> Result<()> {
        let json = match &mut self.render {
            Some(r) => r(line).map_err(|e| self.err(format!("cannot render a result: {e}")))?,
            None => line.to_vec(),
        };
        let obj: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&json).map_err(|e| self.err(format!("a result is not a JSON object: {e}")))?;
        let topic = self
            .template
            .render(|f| {
                obj.get(f).and_then(|v| match v {
                    serde_json::Value::String(s) => Some(s.clone()),
                    serde_json::Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
            })
            .map_err(|e| self.err(e))?;
        let id = if eager {
            self.seq += 1;
            format!("{}:r{}", self.session.client_id, self.seq - 1)
        } else {
            self.index += 1;
            format!("{}:{}:{}", self.session.client_id, self.epochs, self.index - 1)
        };
        let qos = self.qos;
        self.conn()?.publish(&topic, json, qos, &[(crate::mqtt::MSG_ID_PROPERTY, id)])?;
        if qos > 0 {
            self.published += 1;
        }
        Ok(())
    }

    /// Waits until the broker acknowledged everything published.
    fn wait_acks(&mut self) -> Result<()> {
        let started = Instant::now();
        let want = self.published;
        loop {
            let acked = self.conn()?.acked();
            if acked >= want {
                return Ok(());
            }
            if started.elapsed() > self.ack_timeout {
                return Err(self.err(format!(
                    "{} of {want} publishes unacknowledged after {:?}",
                    want - acked,
                    self.ack_timeout
                )));
            }
            // PUBACKs come back within a round trip: a short nap keeps the
            // commit (and so the next epoch's results) from waiting longer.
            std::thread::sleep(Duration::from_micros(100));
        }
    }
}

impl Output for MqttOutput {
    fn recover(&mut self, committed: Option<&[u8]>) -> Result<()> {
        self.epochs = match committed {
            Some(b) => postcard::from_bytes(b).map_err(|e| Error::Corrupt {
                what: format!("commit record of mqtt output {}", self.session.client_id),
                reason: e.to_string(),
            })?,
            None => 0,
        };
        // One record per mode: epochs published (at checkpoints), or
        // results published (eager).
        self.seq = self.epochs;
        self.index = 0;
        self.conn()?;
        Ok(())
    }

    fn publish(&mut self, bytes: &[u8]) -> Result<()> {
        for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            self.publish_line(line, false)?;
        }
        Ok(())
    }

    fn publish_eager(&mut self, bytes: &[u8]) -> Result<()> {
        for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            self.publish_line(line, true)?;
        }
        Ok(())
    }

    fn checkpoint_eager(&mut self) -> Result<Vec<u8>> {
        self.wait_acks()?;
        postcard::to_allocvec(&self.seq)
            .map_err(|e| Error::Corrupt { what: "mqtt commit record".into(), reason: e.to_string() })
    }

    fn end_epoch(&mut self) -> Result<Vec<u8>> {
        self.wait_acks()?;
        self.epochs += 1;
        self.index = 0;
        postcard::to_allocvec(&self.epochs)
            .map_err(|e| Error::Corrupt { what: "mqtt commit record".into(), reason: e.to_string() })
    }

    fn direct(&mut self, bytes: &[u8]) -> Result<()> {
        self.publish(bytes)
    }

    fn flush(&mut self) -> Result<()> {
        self.wait_acks()
    }
}

/// Two outputs fed the same committed bytes (e.g. a CSV file and MQTT).
pub struct TeeOutput<A, B>(pub A, pub B);

impl<A: Output, B: Output> Output for TeeOutput<A, B> {
    fn recover(&mut self, committed: Option<&[u8]>) -> Result<()> {
        let (a, b) = match committed {
            Some(c) => {
                let (a, b): (Vec<u8>, Vec<u8>) = postcard::from_bytes(c).map_err(|e| Error::Corrupt {
                    what: "commit record of a tee output".into(),
                    reason: e.to_string(),
                })?;
                (Some(a), Some(b))
            }
            None => (None, None),
        };
        self.0.recover(a.as_deref())?;
        self.1.recover(b.as_deref())
    }
    fn publish(&mut self, bytes: &[u8]) -> Result<()> {
        self.0.publish(bytes)?;
        self.1.publish(bytes)
    }
    fn end_epoch(&mut self) -> Result<Vec<u8>> {
        let a = self.0.end_epoch()?;
        let b = self.1.end_epoch()?;
        postcard::to_allocvec(&(a, b))
            .map_err(|e| Error::Corrupt { what: "tee commit record".into(), reason: e.to_string() })
    }
    fn direct(&mut self, bytes: &[u8]) -> Result<()> {
        self.0.direct(bytes)?;
        self.1.direct(bytes)
    }
    fn flush(&mut self) -> Result<()> {
        self.0.flush()?;
        self.1.flush()
    }
    fn publish_eager(&mut self, bytes: &[u8]) -> Result<()> {
        self.0.publish_eager(bytes)?;
        self.1.publish_eager(bytes)
    }
    fn checkpoint_eager(&mut self) -> Result<Vec<u8>> {
        let a = self.0.checkpoint_eager()?;
        let b = self.1.checkpoint_eager()?;
        postcard::to_allocvec(&(a, b))
            .map_err(|e| Error::Corrupt { what: "tee commit record".into(), reason: e.to_string() })
    }
}
