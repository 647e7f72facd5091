//! The seed job: Fahrenheit readings → Celsius, keyed by sensor, averaged
//! over 5 s tumbling event-time windows with a 2 s watermark delay.

use anyhow::Context;
use rivulet::aggregate::{Avg, Count};
use rivulet::mqtt::{Protocol, Session};
use rivulet::sink::{FileOutput, MqttOutput, TeeOutput};
use rivulet::source::mqtt::{Fields, MqttSourceConfig};
use rivulet::source::{FileSource, Generator, Paced, Source};
use rivulet::window::Tumbling;
use rivulet::{DataStream, Env, JobConfig, JobOutcome, Sink, Watermarks, Windowed};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// A sensor id: up to 32 bytes held in the record, so a record never
/// allocates and is copied without a call.
pub type SensorId = rivulet::key::InlineStr<32>;

/// One reading.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    /// Which sensor.
    pub sensor_id: SensorId,
    /// Event time in ms since the Unix epoch.
    pub ts_ms: i64,
    /// Temperature (°F as read, °C after the map).
    pub temp: f64,
}

/// Parses `sensor_id,ts_ms,temp_f`.
///
/// # Errors
/// A message naming the bad field.
pub fn parse_csv(f: &[&str]) -> Result<Reading, String> {
    let mut r = Reading::default();
    fill_reading(f, &mut r)?;
    Ok(r)
}

/// [`parse_csv`] into `r`, for `FileSource::csv_plain`: `fields` are the
/// line's fields when the reader found them, else they are split from
/// `line` here (a `"` is not quoting but part of its field).
///
/// # Errors
/// A message naming the bad field.
pub fn parse_csv_into(line: &str, fields: Option<&[&str]>, r: &mut Reading) -> Result<(), String> {
    if let Some(f) = fields {
        return fill_reading(f, r);
    }
    let mut f: heapless::Vec<&str, { rivulet::source::MAX_CSV_FIELDS }> = heapless::Vec::new();
    if !rivulet::text::split_commas(line, |x| f.push(x).is_ok()) {
        return Err(format!("more than {} fields", rivulet::source::MAX_CSV_FIELDS));
    }
    fill_reading(&f, r)
}

/// Reads a plain line `sensor_id,ts_ms,temp_f\n` from the start of
/// `bytes` into `r` as [`parse_csv`] would, straight from the bytes; its
/// length with the `\n`. `None` for any other line (one that may be
/// malformed, or numbers written another way), for [`parse_csv_into`].
pub fn read_plain(bytes: &[u8], r: &mut Reading) -> Option<usize> {
    let mut f = rivulet::text::PlainFields::new(bytes);
    r.sensor_id = SensorId::from_ascii(f.next(b',')?).filter(|id| !id.is_empty())?;
    let ts = rivulet::text::parse_i64_bytes(f.next(b',')?)?;
    r.ts_ms = Some(ts).filter(|&t| rivulet::time::is_event_time(t))?;
    // The short path's values are finite.
    r.temp = rivulet::text::parse_f64_short(f.next(b'\n')?)?;
    Some(f.consumed())
}

fn fill_reading(f: &[&str], r: &mut Reading) -> Result<(), String> {
    let [id, ts, temp] = f else {
        return Err(format!("expected 3 fields sensor_id,ts_ms,temp_f, found {}", f.len()));
    };
    r.sensor_id = SensorId::try_from(*id).map_err(|_| format!("sensor_id longer than {} bytes", 32))?;
    if r.sensor_id.is_empty() {
        return Err("empty sensor_id".into());
    }
    let ts_ms = rivulet::text::parse_i64(ts).ok_or_else(|| format!("ts_ms `{ts}` is not an integer"))?;
    r.ts_ms = rivulet::time::check_event_time(ts_ms).map_err(|e| format!("ts_ms: {e}"))?;
    r.temp = rivulet::text::parse_f64(temp).ok_or_else(|| format!("temp_f `{temp}` is not a number"))?;
    if !r.temp.is_finite() {
        return Err(format!("temp_f `{temp}` is not finite"));
    }
    Ok(())
}

/// Where the seed job reads from.
#[derive(Debug, Clone)]
pub enum Input {
    /// A headerless CSV file.
    Csv(PathBuf),
    /// `n` synthetic readings from `sensors` sensors (see [`synthetic_reading`]).
    Synthetic {
        /// How many readings.
        n: u64,
        /// How many distinct sensors they come from.
        sensors: u32,
    },
    /// Readings published to MQTT as `{"ts_ms": ..., "temp_f": ...}`.
    Mqtt(MqttInput),
}

/// Where and how the seed job subscribes.
#[derive(Debug, Clone)]
pub struct MqttInput {
    /// Broker URL, `mqtt://host:port`.
    pub url: String,
    /// Topic template capturing `sensor_id`, e.g. `sensors/{sensor_id}/temp`.
    pub topic: String,
    /// MQTT client id (the broker keeps the session under it).
    pub client_id: String,
    /// Speak MQTT 3.1.1 instead of 5.
    pub v311: bool,
    /// End of stream after this long without a message.
    pub stop_after_idle: Option<Duration>,
    /// Republish malformed messages to this topic.
    pub dead_letter: Option<String>,
    /// Share the subscription with other instances under this group.
    pub share_group: Option<String>,
}

impl MqttInput {
    fn session(&self, client_id: String) -> Session {
        let mut s = Session::new(self.url.clone(), client_id);
        if self.v311 {
            s.protocol = Protocol::V311;
        }
        s
    }
}

/// Parses the seed job's MQTT message fields.
///
/// # Errors
/// A message naming the bad field.
pub fn parse_fields(f: &Fields<'_>) -> Result<Reading, String> {
    let id = f.str("sensor_id")?;
    let sensor_id = SensorId::try_from(id.as_ref()).map_err(|_| format!("sensor_id longer than {} bytes", 32))?;
    if sensor_id.is_empty() {
        return Err("empty sensor_id".into());
    }
    let ts_ms = rivulet::time::check_event_time(f.i64("ts_ms")?).map_err(|e| format!("ts_ms: {e}"))?;
    Ok(Reading { sensor_id, ts_ms, temp: f.f64("temp_f")? })
}

/// Turns an output row `sensor_id,window_end_ms,avg_c,count` into the JSON
/// object published for it.
///
/// # Errors
/// The row does not have four fields.
pub fn row_to_json(row: &[u8]) -> Result<Vec<u8>, String> {
    let text = std::str::from_utf8(row).map_err(|_| "row is not UTF-8".to_string())?;
    let [id, end, avg, count] = text.split(',').collect::<Vec<_>>()[..] else {
        return Err(format!("unexpected row `{text}`"));
    };
    let mut out = Vec::with_capacity(96);
    let id = serde_json::to_string(id).map_err(|e| e.to_string())?;
    let _ = write!(out, "{{\"sensor_id\":{id},\"window_end_ms\":{end},\"avg_c\":{avg},\"count\":{count}}}");
    Ok(out)
}

/// The seed job's settings.
#[derive(Debug, Clone)]
pub struct SensorAverage {
    /// Input.
    pub input: Input,
    /// Output CSV: `sensor_id,window_end_ms,avg_c,count`.
    pub output: PathBuf,
    /// Window size.
    pub window: Duration,
    /// Watermark delay.
    pub max_out_of_orderness: Duration,
    /// Malformed input lines go here too.
    pub dead_letter: Option<PathBuf>,
    /// Replay a file or synthetic input at most this many readings per
    /// second (`None`: as fast as it is read).
    pub input_rate: Option<f64>,
    /// Also publish each committed result to this topic template (e.g.
    /// `averages/{sensor_id}`) on the input's broker.
    pub publish: Option<String>,
    /// Engine settings (parallelism, state dir, checkpoint interval...).
    pub job: JobConfig,
}

/// The columns of an output row, as `write_row` writes them.
pub const RESULT_COLUMNS: [&str; 4] = ["sensor_id", "window_end_ms", "avg_c", "count"];

/// Appends one output row.
pub fn write_row(w: &Windowed<SensorId, (f64, u64)>, out: &mut Vec<u8>) {
    // Display for f64 prints the shortest digits that round-trip.
    let _ = writeln!(out, "{},{},{},{}", w.key, w.window.end, w.value.0, w.value.1);
}

/// Synthetic reading `i`: `sensors` sensors reporting every 10 ms of event
/// time in turn, mostly in order, with a little jitter and one straggler in
/// 1000 that arrives ~7 s late. Deterministic in `i`.
pub fn synthetic_reading(i: u64, sensors: u32) -> Reading {
    let sensors = u64::from(sensors.max(1));
    let h = mix(i);
    let s = i % sensors;
    let base = 1_700_000_000_000i64 + (i / sensors * 10) as i64;
    let jitter = (h % 300) as i64;
    let late = if h % 1000 == 7 { 7_000 } else { 0 };
    let mut sensor_id = SensorId::new();
    let _ = std::fmt::Write::write_fmt(&mut sensor_id, format_args!("s{s:04}"));
    let temp = 50.0 + (s % 40) as f64 + ((h >> 20) % 1000) as f64 / 100.0;
    Reading { sensor_id, ts_ms: base - jitter - late, temp }
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Refuses an output or dead-letter file that is the input, the other
/// output, or inside the state directory, before anything is opened.
fn check_paths(cfg: &SensorAverage) -> rivulet::Result<()> {
    use rivulet::files::{check_distinct, Declared, Role};
    let mut paths = vec![Declared::new("--output", &cfg.output, Role::Output)];
    if let Input::Csv(p) = &cfg.input {
        paths.push(Declared::new("--input", p, Role::Input));
    }
    if let Some(p) = &cfg.dead_letter {
        paths.push(Declared::new("--dead-letter", p, Role::Output));
    }
    if let Some(p) = &cfg.job.state_dir {
        paths.push(Declared::new("--state-dir", p, Role::StateDir));
    }
    check_distinct(&paths)
}

/// Builds and runs the seed job.
///
/// # Errors
/// Bad settings, an unreadable input, a refused state directory, or a
/// failed task.
pub fn run_sensor_average(cfg: &SensorAverage) -> anyhow::Result<JobOutcome> {
    Ok(build_sensor_average(cfg)?.execute()?)
}

/// The MQTT source's settings; `{sensor_id}` must come from the topic.
fn mqtt_source(m: &MqttInput) -> MqttSourceConfig {
    let mut c = MqttSourceConfig::new(m.url.clone(), m.client_id.clone(), m.topic.clone());
    c.session = m.session(m.client_id.clone());
    c.topic_fields = vec!["sensor_id".to_string()];
    c.dead_letter = m.dead_letter.clone();
    c.share_group = m.share_group.clone();
    c.stop_after_idle_ms = m.stop_after_idle.map(|d| d.as_millis() as u64);
    c
}

/// Builds the seed job without running it, so a caller can take its
/// metrics and stop flag first (`env.execute()` runs it).
///
/// # Errors
/// Bad settings, an unreadable input or a refused state directory.
pub fn build_sensor_average(cfg: &SensorAverage) -> anyhow::Result<Env> {
    build_sensor_average_with(cfg, Env::new)
}

/// [`build_sensor_average`] with the job's [`Env`] made by `make` from its
/// config: [`Env::new`] in one process, the cluster's maker in a
/// coordinator or worker.
///
/// # Errors
/// As [`build_sensor_average`].
pub fn build_sensor_average_with(
    cfg: &SensorAverage,
    make: impl FnOnce(JobConfig) -> rivulet::Result<Env>,
) -> anyhow::Result<Env> {
    // Checked before anything is opened or created.
    let windows = Tumbling::of(cfg.window)?;
    check_paths(cfg)?;
    // Topic flags are checked before the state directory is opened: a
    // refused flag changes nothing.
    if let Input::Mqtt(m) = &cfg.input {
        if cfg.input_rate.is_some() {
            anyhow::bail!(rivulet::Error::Config {
                field: "--input-rate",
                reason: "paces a file or synthetic input; an MQTT input comes at its publishers' pace".into()
            });
        }
        mqtt_source(m).validate()?;
        if let Some(t) = &cfg.publish {
            rivulet::mqtt::TopicTemplate::parse_publish("--publish", t)?;
        }
    }
    let mut job = cfg.job.clone();
    if job.state_dir.is_some() {
        job.identity = state_identity(cfg)?;
    }
    let env = make(job)?;
    let wms = || Watermarks::bounded_out_of_orderness(cfg.max_out_of_orderness, |r: &Reading| r.ts_ms);
    let readings: DataStream<Reading> = match &cfg.input {
        Input::Csv(path) => {
            let mut src = FileSource::csv_plain(path, read_plain, parse_csv_into)
                .with_context(|| format!("opening input {}", path.display()))?;
            if let Some(dl) = &cfg.dead_letter {
                src = src.dead_letter(dl)?;
            }
            paced_source(&env, src, cfg.input_rate, wms())
        }
        Input::Synthetic { n, sensors } => {
            let sensors = *sensors;
            let src = Generator::new(Some(*n), move |i| synthetic_reading(i, sensors));
            paced_source(&env, src, cfg.input_rate, wms())
        }
        Input::Mqtt(m) => env.source(mqtt_source(m).build(parse_fields)?, wms()),
    };
    let sink = match (&cfg.publish, &cfg.input) {
        (None, _) => Sink::file(&cfg.output, write_row),
        (Some(topic), Input::Mqtt(m)) => {
            let out = MqttOutput::new(m.session(format!("{}-out", m.client_id)), topic, 1)?.with_render(row_to_json);
            Sink::new(TeeOutput(FileOutput::new(&cfg.output), out), write_row)
        }
        (Some(_), _) => anyhow::bail!("publishing results needs an MQTT input (its broker is used)"),
    };
    readings
        .map(|mut r: Reading| {
            r.temp = (r.temp - 32.0) * 5.0 / 9.0;
            r
        })
        .key_by(|r: &Reading| r.sensor_id)
        .window(windows)
        .aggregate((Avg::of(|r: &Reading| r.temp), Count))
        .sink(sink);
    Ok(env)
}

/// `src` as the job's source, at most `rate` readings per second when
/// given (`--input-rate`).
fn paced_source<S: Source<Item = Reading>>(
    env: &Env,
    src: S,
    rate: Option<f64>,
    wms: Watermarks<Reading>,
) -> DataStream<Reading> {
    match rate {
        Some(rate) => env.source(Paced::new(src, rate), wms),
        None => env.source(src, wms),
    }
}

/// What defines the seed job's state (see `JobConfig::identity`): a state
/// directory written with other values is refused. An input file is its
/// canonical path and its first line (up to 256 bytes): resuming the same
/// file, also while a logger appends to it, is accepted; another file, or
/// the same path rewritten with other data, is refused. (A file with no
/// complete first line when the directory was created is refused once one
/// is appended.) Over MQTT: the broker URL, topic template, client id
/// (whose session holds the unacked messages) and share group.
///
/// # Errors
/// The input file cannot be read.
pub fn state_identity(cfg: &SensorAverage) -> anyhow::Result<Vec<(String, String)>> {
    let mut id = Vec::new();
    let mut put = |k: &str, v: String| id.push((k.to_string(), v));
    match &cfg.input {
        Input::Csv(path) => {
            let canon = std::fs::canonicalize(path).with_context(|| format!("opening input {}", path.display()))?;
            let mut head = Vec::with_capacity(256);
            let file = std::fs::File::open(&canon).with_context(|| format!("opening input {}", path.display()))?;
            std::io::Read::read_to_end(&mut std::io::Read::take(file, 256), &mut head)
                .with_context(|| format!("reading input {}", path.display()))?;
            let first = head.split(|b| *b == b'\n').next().unwrap_or_default();
            put("--input", canon.display().to_string());
            put("--input first line", String::from_utf8_lossy(first).into_owned());
        }
        Input::Synthetic { n, sensors } => put("input", format!("synthetic {n} readings from {sensors} sensors")),
        Input::Mqtt(m) => {
            put("--mqtt", m.url.clone());
            put("--topic", m.topic.clone());
            put("--client-id", m.client_id.clone());
            put("--share-group", m.share_group.clone().unwrap_or_else(|| "none".into()));
        }
    }
    put("--window", format!("{:?}", cfg.window));
    put("--max-out-of-orderness", format!("{:?}", cfg.max_out_of_orderness));
    put("aggregates", "avg(celsius), count per sensor".into());
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every line the plain reader takes is read as `parse_csv` reads it;
    /// the others are left to it.
    #[test]
    fn plain_lines_read_as_parse_csv_reads_them() {
        let lines = [
            ("s0001,1699999999765,51.37", true),
            ("s0001,1699999999765,-4", true),
            ("a-sensor-id-of-thirty-two-bytesx,0,0.5", true),
            ("s0030,1699999999890,88.78999999999999", true),
            ("s1,1699999999765,9007199254740993", false),
            ("s1,+1699999999765,51.37", false),
            ("s1,1699999999765,51.37\r", false),
            ("s1,1699999999765,1e3", false),
            ("é,1699999999765,51.37", false),
            ("\"s1\",1699999999765,51.37", false),
            ("a-sensor-id-of-thirty-three-bytes,0,0.5", false),
            (",1699999999765,51.37", false),
            ("s1,-1,51.37", false),
            ("s1,1699999999765", false),
            ("s1,1699999999765,51.37,", false),
            ("s1,1699999999765,.5", false),
        ];
        for (line, plain) in lines {
            let bytes = format!("{line}\nnext,1,2\n");
            let mut r = Reading::default();
            let read = read_plain(bytes.as_bytes(), &mut r);
            assert_eq!(read.is_some(), plain, "{line}");
            if read.is_some() {
                assert_eq!(read, Some(line.len() + 1), "{line}");
                let fields: Vec<&str> = line.split(',').collect();
                assert_eq!(parse_csv(&fields), Ok(r), "{line}");
            }
        }
    }
}
