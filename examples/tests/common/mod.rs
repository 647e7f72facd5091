//! Shared pieces of the MQTT tests: a real Mosquitto per test on a free
//! loopback port, data sets, the `--input` oracle, and engine processes.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

use rivulet_agent::seed::publish::{batch_message, reading_message, Batching, Publisher};
use rivulet_agent::seed::sensor::{synthetic_reading, Reading};
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_sensor-average");

/// A Mosquitto of this test's own, with persistence in `dir`.
pub(crate) struct Mosquitto {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

/// Mosquitto's binary: `RIVULET_MOSQUITTO` when set (a test of the
/// missing-broker message points it at a path that does not exist), else
/// the first of the usual install locations.
fn mosquitto_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("RIVULET_MOSQUITTO") {
        let p = PathBuf::from(p);
        return p.exists().then_some(p);
    }
    ["/usr/sbin/mosquitto", "/usr/bin/mosquitto", "/usr/local/sbin/mosquitto"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Whoever runs the tests opted out of the MQTT tests explicitly.
fn mqtt_tests_skipped() -> bool {
    std::env::var_os("RIVULET_SKIP_MQTT_TESTS").is_some_and(|v| v == "1")
}

/// A loopback port free to listen on. It lies below the kernel's
/// ephemeral range (Linux: 32768 and up), where a port bound to 0 would
/// lie: so no outgoing connection of a test running beside this one can
/// take it before the listener binds it. Each process starts at its own
/// place and counts up, so two tests of one binary never get the same one.
pub(crate) fn free_port() -> u16 {
    const FIRST: u32 = 20_000;
    const PORTS: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(97) % PORTS;
    for _ in 0..PORTS {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (FIRST + (start + n) % PORTS) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {FIRST}..{}", FIRST + PORTS);
}

impl Mosquitto {
    /// Starts Mosquitto. Without it the test fails saying what to install;
    /// `None` (after a loud line on stdout and stderr) only when
    /// `RIVULET_SKIP_MQTT_TESTS=1` opts out explicitly.
    pub(crate) fn start(dir: &Path) -> Option<Mosquitto> {
        if mqtt_tests_skipped() {
            let line = "\n**********\nSKIPPED (RIVULET_SKIP_MQTT_TESTS=1): this MQTT test did not run\n**********\n";
            println!("{line}");
            eprintln!("{line}");
            return None;
        }
        assert!(
            mosquitto_bin().is_some(),
            "mosquitto is not installed: `apt-get install -y mosquitto` (or set RIVULET_MOSQUITTO to its binary); \
             RIVULET_SKIP_MQTT_TESTS=1 skips the MQTT tests explicitly"
        );
        let port = free_port();
        // max_queued_messages: Mosquitto's default of 1000 silently drops
        // QoS 1 messages queued for an offline persistent session (a killed
        // engine); max_inflight_messages: the default 20 caps the unacked
        // window to a subscriber and so its throughput.
        // autosave_*: the persistence file is rewritten every 100 changes,
        // as examples/mosquitto.conf ships it, so a SIGKILL loses little.
        let conf = format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\nuser root\npersistence true\npersistence_location {}/\n\
             autosave_interval 100\nautosave_on_changes true\n\
             max_queued_messages 1000000\nmax_inflight_messages 1000\nset_tcp_nodelay true\nlog_dest file {}/mosquitto.log\n",
            dir.display(),
            dir.display()
        );
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("mosquitto.conf"), conf).unwrap();
        let mut m = Mosquitto { port, dir: dir.to_path_buf(), child: None };
        m.spawn();
        Some(m)
    }

    fn spawn(&mut self) {
        let bin = mosquitto_bin().expect("mosquitto was found at start");
        let child = Command::new(bin)
            .arg("-c")
            .arg(self.dir.join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "mosquitto did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// SIGTERM (Mosquitto saves its persistence file) and wait.
    pub(crate) fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe_sigterm(c.id());
            let _ = c.wait();
        }
    }

    pub(crate) fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// SIGKILL (no save on the way out) and start again on the same port
    /// and persistence file.
    pub(crate) fn kill_and_restart(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.spawn();
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn unsafe_sigterm(pid: u32) {
    let _ = Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
}

/// `n` readings from `sensors` sensors, repeated lines kept: the generator
/// repeats some by itself, and every 50th reading repeats the one before
/// (a stuck sensor), so the oracle comparisons cover genuine repeats.
pub(crate) fn dataset(n: u64, sensors: u32) -> Vec<Reading> {
    let mut v: Vec<Reading> = (0..n).map(|i| synthetic_reading(i, sensors)).collect();
    for i in (49..v.len()).step_by(50) {
        v[i] = v[i - 1].clone();
    }
    v
}

/// How many lines of `data` repeat an earlier line.
pub(crate) fn repeated_lines(data: &[Reading]) -> usize {
    let mut seen = HashSet::new();
    data.iter().filter(|r| !seen.insert(format!("{},{},{}", r.sensor_id, r.ts_ms, r.temp))).count()
}

pub(crate) fn write_csv(path: &Path, data: &[Reading]) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for r in data {
        writeln!(f, "{},{},{}", r.sensor_id, r.ts_ms, r.temp).unwrap();
    }
    f.flush().unwrap();
}

/// The rows `sensor-average --input` gives for `data`, sorted.
pub(crate) fn oracle(dir: &Path, data: &[Reading]) -> Vec<String> {
    oracle_with(dir, data, &[])
}

/// The same with `extra` arguments (e.g. a window size).
pub(crate) fn oracle_with(dir: &Path, data: &[Reading], extra: &[&str]) -> Vec<String> {
    let input = dir.join("oracle-in.csv");
    let out = dir.join("oracle-out.csv");
    write_csv(&input, data);
    let st = Command::new(BIN).arg("--input").arg(&input).arg("--output").arg(&out).args(extra).status().unwrap();
    assert!(st.success());
    sorted_rows(&out)
}

pub(crate) fn sorted_rows(path: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_to_string(path).unwrap_or_default().lines().map(str::to_string).collect();
    v.sort();
    v
}

/// The engine's command line for an MQTT run.
pub(crate) fn engine(url: &str, dir: &Path, name: &str, extra: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(["--mqtt", url, "--topic", "sensors/{sensor_id}/temp", "--client-id", name])
        .arg("--output")
        .arg(dir.join(format!("{name}.csv")))
        .arg("--state-dir")
        .arg(dir.join(format!("{name}-state")))
        .args(if extra.contains(&"--checkpoint-interval") { &[][..] } else { &["--checkpoint-interval", "300ms"][..] })
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

/// Waits for a child to exit (killing it after `timeout`); returns its
/// success and stderr.
pub(crate) fn finish(mut child: Child, timeout: Duration) -> (bool, String) {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            return (st.success(), err);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return (false, "timed out".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until every client in `ids` connected (Mosquitto's log says so),
/// then a moment for its SUBSCRIBE: a fresh session only queues what is
/// published after it subscribed.
pub(crate) fn wait_subscribed(m: &Mosquitto, dir: &Path, ids: &[&str]) {
    let log = dir.join("mosquitto.log");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if ids.iter().all(|id| text.contains(&format!(" as {id} "))) {
            std::thread::sleep(Duration::from_millis(300));
            return;
        }
        assert!(Instant::now() < deadline, "{ids:?} never connected to mosquitto on {}", m.port);
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One message per reading of `data`.
pub(crate) fn single_messages(data: &[Reading]) -> Vec<(String, Vec<u8>)> {
    data.iter().map(reading_message).collect()
}

/// `data` grouped `batch` readings per message as [`Batching`] says (JSON
/// arrays), and the readings as the engine reads them, in publish order:
/// each takes its message's topic, so its sensor is the topic's.
pub(crate) fn batched(data: &[Reading], batch: u64, sensors: u32) -> (Vec<(String, Vec<u8>)>, Vec<Reading>) {
    let b = Batching::new(batch, sensors, Some(data.len() as u64));
    let (mut msgs, mut read) = (Vec::new(), Vec::new());
    for m in 0..b.messages().unwrap() {
        let mut rs: Vec<Reading> = b.readings(m).map(|i| data[i as usize].clone()).collect();
        let id = rs[0].sensor_id;
        rs.iter_mut().for_each(|r| r.sensor_id = id);
        msgs.push(batch_message(&rs));
        read.extend(rs);
    }
    (msgs, read)
}

/// Publishes `data` at about `per_sec` messages per second; returns when
/// the broker acknowledged all of it.
pub(crate) fn publish(url: &str, id: &str, data: &[Reading], per_sec: f64) {
    publish_messages(url, id, &single_messages(data), per_sec);
}

/// Publishes `msgs` (topic, payload) at about `per_sec` per second;
/// returns when the broker acknowledged all of them.
pub(crate) fn publish_messages(url: &str, id: &str, msgs: &[(String, Vec<u8>)], per_sec: f64) {
    let mut p = Publisher::connect(url, id, false).unwrap();
    let t0 = Instant::now();
    for (i, (t, pl)) in msgs.iter().enumerate() {
        while (t0.elapsed().as_secs_f64() * per_sec) < i as f64 {
            std::thread::sleep(Duration::from_millis(1));
        }
        p.send(t, pl.clone()).unwrap();
        // rumqttc resends unacknowledged messages after a reconnect in
        // packet-id order, not send order (MQTT asks for send order); with
        // acks awaited every 500 messages its 1000-id cycle never wraps
        // inside the in-flight window, so resends keep the data set's order
        // and the averages' floating-point sums stay bit-identical.
        if (i + 1) % 500 == 0 {
            p.wait_acked(Duration::from_secs(60)).unwrap();
        }
    }
    p.wait_acked(Duration::from_secs(60)).unwrap();
}

/// A received message: topic, payload, `rivulet-msg-id`.
pub(crate) type Got = (String, String, Option<String>);

/// A plain subscriber collecting messages in a thread.
pub(crate) struct Collector {
    pub got: std::sync::Arc<std::sync::Mutex<Vec<Got>>>,
    client: rumqttc::v5::Client,
}

impl Collector {
    pub(crate) fn start(port: u16, id: &str, filter: &str) -> Collector {
        use rumqttc::v5::{mqttbytes::v5::Packet, mqttbytes::QoS, Client, Event, MqttOptions};
        let mut o = MqttOptions::new(id, "127.0.0.1", port);
        o.set_clean_start(true);
        let (client, mut conn) = Client::new(o, 100);
        client.subscribe(filter, QoS::AtLeastOnce).unwrap();
        let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let g = got.clone();
        let subscribed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = subscribed.clone();
        std::thread::spawn(move || {
            for ev in conn.iter() {
                match ev {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let id = p.properties.as_ref().and_then(|pr| {
                            pr.user_properties.iter().find(|(k, _)| k == "rivulet-msg-id").map(|(_, v)| v.clone())
                        });
                        g.lock().unwrap().push((
                            String::from_utf8_lossy(&p.topic).into_owned(),
                            String::from_utf8_lossy(&p.payload).into_owned(),
                            id,
                        ));
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => s.store(true, std::sync::atomic::Ordering::Release),
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while !subscribed.load(std::sync::atomic::Ordering::Acquire) {
            assert!(Instant::now() < deadline, "collector did not subscribe");
            std::thread::sleep(Duration::from_millis(10));
        }
        Collector { got, client }
    }

    /// Waits until at least `n` messages arrived (or `timeout`), then a
    /// little more for strays; returns them.
    pub(crate) fn wait(&self, n: usize, timeout: Duration) -> Vec<Got> {
        let deadline = Instant::now() + timeout;
        while self.got.lock().unwrap().len() < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(300));
        self.got.lock().unwrap().clone()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.client.disconnect();
    }
}

/// Runs engine `eng` (output `eng.csv` in `dir`) with `args` while
/// `publisher` sends `data` at 4,000 readings/s, SIGKILLs and restarts it
/// four times meanwhile, and waits for the last run to finish successfully.
pub(crate) fn publish_with_kills(
    m: &Mosquitto,
    broker_dir: &Path,
    dir: &Path,
    args: &[&str],
    data: &[Reading],
    publisher: &str,
) {
    publish_messages_with_kills(m, broker_dir, dir, args, &single_messages(data), 4000.0, publisher);
}

/// The same with messages of any form, sent at `per_sec` messages/s.
pub(crate) fn publish_messages_with_kills(
    m: &Mosquitto,
    broker_dir: &Path,
    dir: &Path,
    args: &[&str],
    msgs: &[(String, Vec<u8>)],
    per_sec: f64,
    publisher: &str,
) {
    let url = m.url();
    let mut child = engine(&url, dir, "eng", args).spawn().unwrap();
    wait_subscribed(m, broker_dir, &["eng"]);
    let pubr = {
        let (url, msgs, publisher) = (url.clone(), msgs.to_vec(), publisher.to_string());
        std::thread::spawn(move || publish_messages(&url, &publisher, &msgs, per_sec))
    };
    for delay in [700u64, 1100, 900, 1300] {
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        child = engine(&url, dir, "eng", args).spawn().unwrap();
    }
    pubr.join().unwrap();
    let (ok, err) = finish(child, Duration::from_secs(60));
    assert!(ok, "final run failed: {err}");
}

/// A plain MQTT 5 publisher (clean start, up to 1,000 messages in flight)
/// for tests that publish by hand, and the count of PUBACKs it received.
pub(crate) fn v5_publisher(
    port: u16,
    id: &str,
) -> (rumqttc::v5::Client, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use rumqttc::v5::{mqttbytes::v5::Packet, Client, Event, MqttOptions};
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_clean_start(true).set_outgoing_inflight_upper_limit(1000);
    let (client, mut conn) = Client::new(o, 10_000);
    let acks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let a = acks.clone();
    std::thread::spawn(move || {
        for ev in conn.iter() {
            match ev {
                Ok(Event::Incoming(Packet::PubAck(_))) => {
                    a.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    });
    (client, acks)
}

/// Each source's ingest log mirrored in the store at `store` (the seed
/// job's) holds every sequence number from its first to its last: a hole
/// would be messages acknowledged to the broker that a worker taking the
/// source over does not get. Returns how many entries they hold.
pub(crate) fn assert_mirror_dense(store: &Path) -> usize {
    let url = format!("file://{}", store.display());
    let mirror = rivulet::checkpoint::store::CheckpointStore::open(&url, "sensor-average").unwrap();
    let sources = std::fs::read_dir(store.join("sensor-average/ingest")).map_or(Vec::new(), |d| {
        d.flatten().filter_map(|e| e.file_name().to_string_lossy().parse::<u16>().ok()).collect()
    });
    let mut held = 0;
    for source in sources {
        let seqs: Vec<u64> = mirror.read_ingest(source, 0).unwrap().into_iter().map(|(s, _)| s).collect();
        let holes: Vec<&[u64]> = seqs.windows(2).filter(|w| w[1] != w[0] + 1).collect();
        assert!(holes.is_empty(), "source {source}'s ingest mirror has holes between {holes:?}");
        held += seqs.len();
    }
    held
}

/// The latest committed epoch of the `sensor-average` job in the `file://`
/// checkpoint store at `store` (0: none yet): the newest epoch directory
/// holding metadata, once `latest` exists.
#[allow(dead_code)] // not every test binary runs a cluster
pub(crate) fn latest_epoch(store: &Path) -> u64 {
    if !store.join("sensor-average/latest").exists() {
        return 0;
    }
    std::fs::read_dir(store.join("sensor-average/epochs"))
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    std::fs::read_dir(e.path())
                        .map(|m| m.flatten().any(|f| f.file_name().to_string_lossy().starts_with("meta-")))
                        .unwrap_or(false)
                })
                .filter_map(|e| e.file_name().to_string_lossy().parse::<u64>().ok())
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

/// Asks the coordinator on `port` for a savepoint into a new directory
/// under `dir`; its path. The coordinator refuses while its sink has not
/// yet published the latest checkpoint ("try again in a moment"): each
/// try goes into a directory of its own.
#[allow(dead_code)] // not every test binary runs a cluster
pub(crate) fn take_savepoint(port: u16, dir: &Path) -> PathBuf {
    for attempt in 1.. {
        let sp = dir.join(format!("savepoint-{attempt}"));
        let taken = Command::new(BIN)
            .arg("savepoint")
            .args(["--coordinator", &format!("127.0.0.1:{port}")])
            .arg("--to")
            .arg(&sp)
            .output()
            .unwrap();
        if taken.status.success() {
            assert!(String::from_utf8_lossy(&taken.stdout).contains("savepoint of epoch"));
            return sp;
        }
        assert!(attempt < 10, "{}", String::from_utf8_lossy(&taken.stderr));
        std::thread::sleep(Duration::from_millis(300));
    }
    unreachable!()
}
