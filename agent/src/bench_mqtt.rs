//! `rivulet bench --mode mqtt`: the seed job end to end through a local
//! Mosquitto with exactly-once on (ingest log, manual acks, checkpoints),
//! beside the broker's own ceiling — a plain QoS 1 subscriber receiving the
//! same stream from the same publisher. Also the delay from a window's
//! watermark passing to its committed result, and peak RSS.

use crate::bench::{peak_rss_kib, BenchArgs};
use anyhow::Context;
use rivulet::JobConfig;
use rivulet_examples::publish::{reading_message, Publisher};
use rivulet_examples::sensor::{build_sensor_average, synthetic_reading, Input, MqttInput, SensorAverage};
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
             max_queued_messages 10000000\nmax_inflight_messages 1000\n"
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

fn publish_all(url: &str, id: &str, n: u64, sensors: u32) -> anyhow::Result<Duration> {
    let mut p = Publisher::connect(url, id, false)?;
    let t0 = Instant::now();
    for i in 0..n {
        let (t, pl) = reading_message(&synthetic_reading(i, sensors));
        p.send(&t, pl)?;
    }
    p.wait_acked(Duration::from_secs(300))?;
    Ok(t0.elapsed())
}

/// Events/s a plain auto-acking QoS 1 subscriber receives.
fn ceiling(url: &str, n: u64, sensors: u32) -> anyhow::Result<f64> {
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
                    if g.fetch_add(1, Ordering::AcqRel) + 1 >= n {
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
    publish_all(url, "bench-pub-ceiling", n, sensors)?;
    let last = rx_thread.join().map_err(|_| anyhow::anyhow!("subscriber panicked"))?;
    let first = first.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.unwrap_or(last);
    let _ = client.disconnect();
    Ok(n as f64 / last.duration_since(first).as_secs_f64().max(1e-9))
}

struct Run {
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    windows: usize,
}

/// The seed job over MQTT with checkpoints: events/s from its first to
/// its last record, and per window the delay from the sink's watermark
/// passing the window's end to the committed row appearing in the output.
fn exactly_once(url: &str, dir: &Path, n: u64, sensors: u32, interval: Duration) -> anyhow::Result<Run> {
    let output = dir.join(format!("out-{}.csv", interval.as_millis()));
    let mut job = JobConfig::new("bench-mqtt");
    job.state_dir = Some(dir.join(format!("state-{}", interval.as_millis())));
    job.checkpoint_interval = interval;
    let client_id = format!("bench-eo-{}", interval.as_millis());
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
        dead_letter: None,
        publish: None,
        job,
    };
    let env = build_sensor_average(&cfg)?;
    let metrics = env.metrics();
    let done = Arc::new(AtomicBool::new(false));
    let monitor = {
        let (m, d, out) = (metrics.clone(), done.clone(), output.clone());
        std::thread::spawn(move || monitor(&m, &d, &out, n))
    };
    let publisher = {
        let url = url.to_string();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(1000)); // the job subscribed
            publish_all(&url, "bench-pub-eo", n, sensors)
        })
    };
    let out = env.execute()?;
    publisher.join().map_err(|_| anyhow::anyhow!("publisher panicked"))??;
    done.store(true, Ordering::Release);
    let (first, last, mut lat) = monitor.join().map_err(|_| anyhow::anyhow!("monitor panicked"))?;
    anyhow::ensure!(out.metrics.records_in > 0, "the job read nothing");
    lat.sort_by(f64::total_cmp);
    let pct =
        |p: f64| lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1))).copied().unwrap_or(0.0);
    Ok(Run {
        rate: out.metrics.records_in as f64 / last.duration_since(first).as_secs_f64().max(1e-9),
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
        windows: lat.len(),
    })
}

/// Samples every 200 µs: when records started and finished flowing, and
/// for each window end the watermark-passing and the row-committed times.
fn monitor(m: &rivulet::metrics::Metrics, done: &AtomicBool, out: &Path, n: u64) -> (Instant, Instant, Vec<f64>) {
    let mut first = None;
    let mut last = Instant::now();
    let mut wm_passed: std::collections::BTreeMap<i64, Instant> = Default::default();
    let mut seen_ends = std::collections::BTreeSet::new();
    let mut lat = Vec::new();
    let mut offset = 0u64;
    let mut last_wm = i64::MIN;
    let mut last_in = 0;
    let mut tick = 0u64;
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
        tick += 1;
        if tick.is_multiple_of(10) {
            for end in new_window_ends(out, &mut offset) {
                if seen_ends.insert(end) {
                    if let Some(t) = wm_passed.get(&end) {
                        lat.push(now.duration_since(*t).as_secs_f64() * 1000.0);
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    (first.unwrap_or(last), last, lat)
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

pub fn run(a: &BenchArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let (_broker, url) = match &a.mqtt {
        Some(u) => (None, u.clone()),
        None => {
            let b = start_mosquitto(dir.path())?;
            let u = b.url.clone();
            (Some(b), u)
        }
    };
    let n = a.events;
    eprintln!("broker {url}; {n} readings from {} sensors per phase", a.sensors);
    let ceil = ceiling(&url, n, a.sensors)?;
    eprintln!("plain QoS 1 subscriber: {:.0} events/s", ceil);
    let mut runs = Vec::new();
    for ms in [1000u64, 100] {
        let r = exactly_once(&url, dir.path(), n, a.sensors, Duration::from_millis(ms))?;
        eprintln!(
            "exactly-once, checkpoint every {ms} ms: {:.0} events/s ({:.0} % of the ceiling); committed result after the watermark passed: p50 {:.1} ms, p99 {:.1} ms over {} windows",
            r.rate,
            r.rate / ceil * 100.0,
            r.p50_ms,
            r.p99_ms,
            r.windows
        );
        runs.push((ms, r));
    }
    for (ms, r) in &runs {
        println!(
            "bench mode=mqtt events={n} sensors={} checkpoint={ms}ms: {:.0} events/s exactly-once vs {:.0} plain QoS 1 ({:.0} %), result delay p99 {:.1} ms",
            a.sensors,
            r.rate,
            ceil,
            r.rate / ceil * 100.0,
            r.p99_ms
        );
    }
    println!("peak RSS of the bench process (job + publisher + subscriber): {:.1} MiB", peak_rss_kib() as f64 / 1024.0);
    Ok(())
}
