//! `rivulet bench --mode mqtt`: the seed job end to end through a local
//! Mosquitto with exactly-once on (ingest log, manual acks, checkpoints),
//! beside the broker's own ceiling — a plain QoS 1 subscriber receiving the
//! same stream from the same publisher, `--batch` readings per message.
//! Also the delay from a window's watermark passing to its committed
//! result, and peak RSS. Each of `--runs` runs has a Mosquitto of its own;
//! the medians are reported.

use super::rss::peak_rss_kib;
use crate::cli::BenchArgs;
use anyhow::Context;
use rivulet::{JobConfig, OutputMode};
use rivulet_agent::seed::publish::{batch_message, Batching, Publisher};
use rivulet_agent::seed::sensor::{build_sensor_average, synthetic_reading, Input, MqttInput, SensorAverage};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Broker {
    child: Child,
    url: String,
}

impl Broker {
    /// CPU time the broker has used so far (Mosquitto is one thread: its
    /// CPU time per message bounds the rate it can ever carry on this core).
    fn cpu(&self) -> Option<Duration> {
        let text = std::fs::read_to_string(format!("/proc/{}/schedstat", self.child.id())).ok()?;
        text.split_whitespace().next()?.parse().ok().map(Duration::from_nanos)
    }
}

/// Broker CPU per message between two readings, and the rate that cost
/// allows when the broker has a whole core.
fn broker_cost(before: Option<Duration>, after: Option<Duration>, n: u64) -> Option<(f64, f64)> {
    let used = after?.checked_sub(before?)?.as_secs_f64();
    (used > 0.0 && n > 0).then(|| (used / n as f64 * 1e6, n as f64 / used))
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_mosquitto(dir: &Path) -> anyhow::Result<Broker> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let conf = dir.join("mosquitto.conf");
    // See the README: the default max_queued_messages (1000) drops QoS 1
    // messages for an offline persistent session, and the default
    // max_inflight_messages (20) caps a subscriber's unacked window.
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\nuser root\npersistence false\n\
             max_queued_messages 10000000\nmax_inflight_messages 1000\nset_tcp_nodelay true\n"
        ),
    )?;
    let child = Command::new("mosquitto")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting mosquitto (apt-get install -y mosquitto), or pass --mqtt URL")?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        anyhow::ensure!(Instant::now() < deadline, "mosquitto did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(Broker { child, url: format!("mqtt://127.0.0.1:{port}") })
}

/// How readings are published: connections, pace and readings per message.
#[derive(Clone, Copy)]
struct Load {
    n: u64,
    sensors: u32,
    publishers: usize,
    /// Readings per second over all connections (0: unpaced).
    rate: f64,
    /// Readings per message.
    batch: u64,
}

impl Load {
    fn batching(&self) -> Batching {
        Batching::new(self.batch, self.sensors, Some(self.n))
    }

    /// Messages carrying the `n` readings.
    fn messages(&self) -> u64 {
        self.batching().messages().unwrap_or(self.n)
    }
}

/// Publishes readings `0..n`, grouped into messages as [`Batching`] says,
/// over `publishers` connections (message `m` goes out on connection
/// `m % publishers`: when that divides the number of sensors, each sensor's
/// messages stay on one connection, in order); returns when all are acked.
fn publish_all(url: &str, id: &str, load: Load) -> anyhow::Result<Duration> {
    let Load { sensors, publishers, rate, batch, .. } = load;
    let (batching, messages) = (load.batching(), load.messages());
    let t0 = Instant::now();
    let threads: Vec<_> = (0..publishers)
        .map(|k| {
            let (url, id) = (url.to_string(), format!("{id}-{k}"));
            std::thread::spawn(move || -> anyhow::Result<()> {
                let mut p = Publisher::connect(&url, &id, false)?;
                let started = Instant::now();
                let mut m = k as u64;
                let mut readings = Vec::with_capacity(batch as usize);
                while m < messages {
                    if rate > 0.0 {
                        let due = started + Duration::from_secs_f64((m * batch) as f64 / rate);
                        if let Some(wait) = due.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                    }
                    readings.clear();
                    readings.extend(batching.readings(m).map(|i| synthetic_reading(i, sensors)));
                    let (t, pl) = batch_message(&readings);
                    p.send(&t, pl)?;
                    m += publishers as u64;
                }
                p.wait_acked(Duration::from_secs(300))
            })
        })
        .collect();
    for t in threads {
        t.join().map_err(|_| anyhow::anyhow!("publisher panicked"))??;
    }
    Ok(t0.elapsed())
}

/// Events/s a plain auto-acking QoS 1 subscriber receives (readings: it
/// counts messages, each carrying `batch` readings but the last few).
fn ceiling(url: &str, load: Load) -> anyhow::Result<f64> {
    let (n, messages) = (load.n, load.messages());
    use rumqttc::v5::{mqttbytes::v5::Packet, mqttbytes::QoS, Client, Event, MqttOptions};
    let (host, port) = rivulet::mqtt::parse_url(url)?;
    let mut o = MqttOptions::new("bench-ceiling", host, port);
    o.set_clean_start(true).set_receive_maximum(Some(1000));
    let (client, mut conn) = Client::new(o, 1000);
    client.subscribe("sensors/+/temp", QoS::AtLeastOnce)?;
    let got = Arc::new(AtomicU64::new(0));
    let first = Arc::new(std::sync::Mutex::new(None::<Instant>));
    let (g, f) = (got.clone(), first.clone());
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let rx_thread = std::thread::spawn(move || {
        for ev in conn.iter() {
            match ev {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    let _ = ready_tx.send(());
                }
                Ok(Event::Incoming(Packet::Publish(_))) => {
                    if let Ok(mut f) = f.lock() {
                        f.get_or_insert_with(Instant::now);
                    }
                    if g.fetch_add(1, Ordering::AcqRel) + 1 >= messages {
                        return Instant::now();
                    }
                }
                Ok(_) => {}
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        Instant::now()
    });
    ready_rx.recv_timeout(Duration::from_secs(10)).context("the ceiling subscriber did not subscribe")?;
    publish_all(url, "bench-pub-ceiling", load)?;
    let last = rx_thread.join().map_err(|_| anyhow::anyhow!("subscriber panicked"))?;
    let first = first.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.unwrap_or(last);
    let _ = client.disconnect();
    Ok(n as f64 / last.duration_since(first).as_secs_f64().max(1e-9))
}

struct Run {
    rate: f64,
    checkpoints: u64,
    /// Per window: watermark passed → its rows committed to the CSV file.
    file: Vec<f64>,
    /// Per result row: watermark passed → a subscriber received it.
    mqtt: Vec<f64>,
}

/// One way of running the job: checkpoint interval, output mode.
#[derive(Clone, Copy)]
struct Variant {
    interval: Duration,
    mode: OutputMode,
}

impl Variant {
    fn name(&self) -> String {
        let ms = self.interval.as_millis();
        match self.mode {
            OutputMode::Checkpoint => format!("results at checkpoints every {ms} ms"),
            OutputMode::CommitOnOutput => format!("commit on output (checkpoints every {ms} ms otherwise)"),
            OutputMode::Eager => format!("eager output (checkpoints every {ms} ms)"),
        }
    }
    fn tag(&self) -> String {
        let mode = match self.mode {
            OutputMode::Checkpoint => "",
            OutputMode::CommitOnOutput => "-on-output",
            OutputMode::Eager => "-eager",
        };
        format!("{}{mode}", self.interval.as_millis())
    }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted.get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1))).copied().unwrap_or(f64::NAN)
}

/// `window_end_ms` of a published result (`{"sensor_id":..,"window_end_ms":N,..}`).
fn window_end(payload: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(payload).ok()?;
    let rest = &text[text.find("\"window_end_ms\":")? + "\"window_end_ms\":".len()..];
    rest[..rest.find(|c: char| !c.is_ascii_digit() && c != '-')?].parse().ok()
}

/// Subscribes to the published results; returns when they are flowing and
/// a handle yielding every (window end, arrival) once the job ended.
fn results_subscriber(
    url: &str,
    topic: &str,
    done: Arc<AtomicBool>,
) -> anyhow::Result<std::thread::JoinHandle<Vec<(i64, Instant)>>> {
    use rumqttc::v5::{mqttbytes::v5::Packet, mqttbytes::QoS, Client, Event, MqttOptions};
    let (host, port) = rivulet::mqtt::parse_url(url)?;
    let mut o = MqttOptions::new(format!("bench-results-{topic}"), host, port);
    o.set_clean_start(true).set_receive_maximum(Some(1000));
    let (client, mut conn) = Client::new(o, 1000);
    client.subscribe(format!("{topic}/+"), QoS::AtLeastOnce)?;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let h = std::thread::spawn(move || {
        let mut got = Vec::new();
        while !done.load(Ordering::Acquire) {
            match conn.recv_timeout(Duration::from_millis(50)) {
                Ok(Ok(Event::Incoming(Packet::SubAck(_)))) => {
                    let _ = ready_tx.send(());
                }
                Ok(Ok(Event::Incoming(Packet::Publish(p)))) => {
                    let now = Instant::now();
                    if let Some(end) = window_end(&p.payload) {
                        got.push((end, now));
                    }
                }
                Ok(Ok(_)) | Err(_) => {}
                Ok(Err(_)) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        let _ = client.disconnect();
        got
    });
    ready_rx.recv_timeout(Duration::from_secs(10)).context("the results subscriber did not subscribe")?;
    Ok(h)
}

/// The seed job over MQTT with checkpoints, publishing its results: events/s
/// from its first to its last record, and the delay from the sink's
/// watermark passing a window's end to the committed rows appearing in the
/// output file and to a subscriber receiving them.
fn exactly_once(url: &str, dir: &Path, load: Load, v: Variant, round: usize) -> anyhow::Result<Run> {
    let n = load.n;
    let output = dir.join(format!("out-{}.csv", v.tag()));
    let mut job = JobConfig::new("bench-mqtt");
    job.state_dir = Some(dir.join(format!("state-{}", v.tag())));
    job.checkpoint_interval = v.interval;
    job.output_mode = v.mode;
    let client_id = format!("bench-eo-{}-r{round}", v.tag());
    let results_topic = format!("averages-{}", v.tag());
    let cfg = SensorAverage {
        input: Input::Mqtt(MqttInput {
            url: url.to_string(),
            topic: "sensors/{sensor_id}/temp".into(),
            client_id,
            v311: false,
            stop_after_idle: Some(Duration::from_secs(2)),
            dead_letter: None,
            share_group: None,
        }),
        output: output.clone(),
        window: Duration::from_secs(5),
        max_out_of_orderness: Duration::from_secs(2),
        input_rate: None,
        dead_letter: None,
        publish: Some(format!("{results_topic}/{{sensor_id}}")),
        job,
    };
    let env = build_sensor_average(&cfg)?;
    let metrics = env.metrics();
    let done = Arc::new(AtomicBool::new(false));
    let subscriber = results_subscriber(url, &results_topic, done.clone())?;
    let monitor = {
        let (m, d, out) = (metrics.clone(), done.clone(), output.clone());
        std::thread::spawn(move || monitor(&m, &d, &out, n))
    };
    let publisher = {
        let url = url.to_string();
        let tag = format!("{}-r{round}", v.tag());
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(1000)); // the job subscribed
            publish_all(&url, &format!("bench-pub-eo-{tag}"), load)
        })
    };
    let out = env.execute()?;
    publisher.join().map_err(|_| anyhow::anyhow!("publisher panicked"))??;
    done.store(true, Ordering::Release);
    let mon = monitor.join().map_err(|_| anyhow::anyhow!("monitor panicked"))?;
    let received = subscriber.join().map_err(|_| anyhow::anyhow!("subscriber panicked"))?;
    anyhow::ensure!(out.metrics.records_in > 0, "the job read nothing");
    let mut file: Vec<f64> = mon
        .committed
        .iter()
        .filter_map(|(end, t)| mon.wm_passed.get(end).map(|w| t.duration_since(*w).as_secs_f64() * 1000.0))
        .collect();
    let mut mqtt: Vec<f64> = received
        .iter()
        .filter_map(|(end, t)| mon.wm_passed.get(end).map(|w| t.duration_since(*w).as_secs_f64() * 1000.0))
        .collect();
    file.sort_by(f64::total_cmp);
    mqtt.sort_by(f64::total_cmp);
    Ok(Run {
        rate: out.metrics.records_in as f64 / mon.last.duration_since(mon.first).as_secs_f64().max(1e-9),
        checkpoints: out.checkpoints,
        file,
        mqtt,
    })
}

struct Monitored {
    first: Instant,
    last: Instant,
    /// Window end → when the sink's watermark passed it.
    wm_passed: std::collections::BTreeMap<i64, Instant>,
    /// Window end → when its first row showed up in the output file.
    committed: Vec<(i64, Instant)>,
}

/// Samples every 100 µs: when records started and finished flowing, and
/// for each window end the watermark-passing and the row-committed times.
fn monitor(m: &rivulet::metrics::Metrics, done: &AtomicBool, out: &Path, n: u64) -> Monitored {
    let mut first = None;
    let mut last = Instant::now();
    let mut wm_passed: std::collections::BTreeMap<i64, Instant> = Default::default();
    let mut seen_ends = std::collections::BTreeSet::new();
    let mut committed = Vec::new();
    let mut offset = 0u64;
    let mut last_wm = i64::MIN;
    let mut last_in = 0;
    let mut last_len = 0u64;
    while !done.load(Ordering::Acquire) {
        let now = Instant::now();
        let r = m.records_in.load(Ordering::Relaxed);
        if r > 0 && first.is_none() {
            first = Some(now);
        }
        if r > last_in {
            last_in = r;
            if r <= n {
                last = now;
            }
        }
        let wm = m.watermark.load(Ordering::Relaxed) as i64;
        if wm > last_wm && wm < i64::MAX / 2 {
            // Window ends (5 s grid) this watermark step passed.
            let mut e = (last_wm.max(wm - 60_000) + 1).div_euclid(5000) * 5000 + 5000;
            while e - 1 <= wm {
                wm_passed.entry(e).or_insert(now);
                e += 5000;
            }
            last_wm = wm;
        }
        // A stat is cheap: read the file only when it grew.
        let len = std::fs::metadata(out).map_or(0, |md| md.len());
        if len > last_len {
            last_len = len;
            for end in new_window_ends(out, &mut offset) {
                if seen_ends.insert(end) {
                    committed.push((end, now));
                }
            }
        }
        std::thread::sleep(Duration::from_micros(100));
    }
    Monitored { first: first.unwrap_or(last), last, wm_passed, committed }
}

fn new_window_ends(path: &Path, offset: &mut u64) -> Vec<i64> {
    let mut ends = Vec::new();
    let Ok(mut f) = std::fs::File::open(path) else { return ends };
    if f.seek(SeekFrom::Start(*offset)).is_err() {
        return ends;
    }
    let mut text = String::new();
    if f.read_to_string(&mut text).is_err() {
        return ends;
    }
    let Some(nl) = text.rfind('\n') else { return ends };
    *offset += nl as u64 + 1;
    for line in text[..nl].lines() {
        if let Some(e) = line.split(',').nth(1).and_then(|e| e.parse().ok()) {
            ends.push(e);
        }
    }
    ends
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

pub(super) fn run(a: &BenchArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let n = a.events;
    let publishers = a.publishers.max(1);
    let load = Load { n, sensors: a.sensors, publishers, rate: a.rate.max(0.0), batch: a.batch };
    let pace = if a.rate > 0.0 { format!("{:.0} readings/s", a.rate) } else { "unpaced".into() };
    eprintln!(
        "{n} readings from {} sensors per phase in {} messages ({} per message), {publishers} publisher connection(s), {pace}, {} run(s)",
        a.sensors,
        load.messages(),
        a.batch,
        a.runs
    );
    let second = Duration::from_secs(1);
    let variants = [
        Variant { interval: second, mode: OutputMode::Checkpoint },
        Variant { interval: Duration::from_millis(100), mode: OutputMode::Checkpoint },
        Variant { interval: second, mode: OutputMode::CommitOnOutput },
        Variant { interval: second, mode: OutputMode::Eager },
    ];
    let mut ceils = Vec::new();
    let mut broker = None;
    let mut runs: Vec<Vec<Run>> = variants.iter().map(|_| Vec::new()).collect();
    for round in 0..a.runs {
        let rdir = dir.path().join(format!("run-{round}"));
        std::fs::create_dir_all(&rdir).context("creating a temporary directory")?;
        // A broker of its own per run: the sessions earlier runs' jobs left
        // behind would otherwise queue this run's readings too.
        let (broker_proc, url) = match &a.mqtt {
            Some(u) => (None, u.clone()),
            None => {
                let b = start_mosquitto(&rdir)?;
                let u = b.url.clone();
                (Some(b), u)
            }
        };
        eprintln!("run {}: broker {url}", round + 1);
        let cpu = || broker_proc.as_ref().and_then(Broker::cpu);
        let before = cpu();
        let ceil = ceiling(&url, load)?;
        eprintln!("plain QoS 1 subscriber: {:.0} events/s", ceil);
        let cost = broker_cost(before, cpu(), n);
        if let Some((us, bound)) = cost {
            eprintln!("mosquitto: {us:.2} µs of CPU per reading (in, acked, out, acked): at most {bound:.0} readings/s on a core of its own");
        }
        broker = broker.or(cost);
        ceils.push(ceil);
        for (v, done) in variants.iter().zip(&mut runs) {
            let before = cpu();
            let r = exactly_once(&url, &rdir, load, *v, round)?;
            if let Some((us, _)) = broker_cost(before, cpu(), n) {
                eprintln!("mosquitto: {us:.2} µs of CPU per reading in this run (results and acks included)");
            }
            eprintln!(
                "exactly-once, {}: {:.0} events/s ({:.0} % of the ceiling), {} checkpoints; after the watermark passed a window's end: rows committed to the file p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {} windows; results received over MQTT p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {} results",
                v.name(),
                r.rate,
                r.rate / ceil * 100.0,
                r.checkpoints,
                pct(&r.file, 0.5),
                pct(&r.file, 0.99),
                r.file.last().copied().unwrap_or(f64::NAN),
                r.file.len(),
                pct(&r.mqtt, 0.5),
                pct(&r.mqtt, 0.99),
                r.mqtt.last().copied().unwrap_or(f64::NAN),
                r.mqtt.len(),
            );
            done.push(r);
        }
    }
    let ceil = median(ceils);
    for (v, done) in variants.iter().zip(&mut runs) {
        // The run of median throughput, with its latencies.
        done.sort_by(|x, y| x.rate.total_cmp(&y.rate));
        let Some(r) = done.get(done.len() / 2) else { continue };
        println!(
            "bench mode=mqtt events={n} sensors={} batch={} publishers={publishers} ({pace}) {}: {:.0} events/s exactly-once vs {:.0} plain QoS 1 ({:.0} %), result published p50 {:.1} ms p99 {:.1} ms after the watermark (medians of {} runs)",
            a.sensors,
            a.batch,
            v.name(),
            r.rate,
            ceil,
            r.rate / ceil * 100.0,
            pct(&r.mqtt, 0.5),
            pct(&r.mqtt, 0.99),
            a.runs,
        );
    }
    if let Some((us, bound)) = broker {
        println!("mosquitto CPU per reading with a plain QoS 1 subscriber: {us:.2} µs, so at most {bound:.0} readings/s with a core to itself");
    }
    println!("peak RSS of the bench process (job + publisher + subscriber): {:.1} MiB", peak_rss_kib() as f64 / 1024.0);
    Ok(())
}
