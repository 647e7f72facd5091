//! `rivulet deploy` on the machine's real Docker Engine: a one-node swarm
//! (made with `docker swarm init` when none is active, and left again),
//! the linux/amd64 image built FROM scratch by cross/image.sh, the seed job
//! with Mosquitto (an image of the machine's Debian mosquitto built by
//! deploy/images/mosquitto.sh), a coordinator and three worker slots.
//! Mosquitto, not the embedded broker: after a reconnect the embedded
//! broker (rumqttd) resends what was unacknowledged under new packet ids
//! with DUP clear, so a source killed between logging a message and the
//! broker's receipt of its ack cannot tell the resend from a new reading.
//! The embedded broker's healthcheck is checked on the stack deployed at
//! the end.
//!
//! - Bad manifests (unknown field, impossible placement) exit 2 and create
//!   nothing.
//! - Readings published over MQTT while worker-0's container is killed
//!   (`docker kill`), then the coordinator's, then worker-1's state volume
//!   removed while its slot is scaled to 0 (it comes back with empty local
//!   state and restores from the checkpoint store), then the job scaled
//!   3 -> 2 -> 4 and upgraded, give the same results as the
//!   single-process run of the same data read from a file, both in the
//!   committed output file and as published on MQTT (deduplicated by
//!   `rivulet-msg-id`).
//! - Rolled back to the upgrade's savepoint once it finished, the job runs
//!   again from it to the same results (those since the savepoint
//!   published again); the same rollback again changes nothing.
//! - A redeploy of the same manifest changes nothing; a changed flag
//!   updates the coordinator only.
//! - `rivulet stack` output is accepted by `docker stack deploy`.
//! - `rivulet down --purge` leaves no service, network, config, secret or
//!   volume of the job.
//!
//! Docker missing is a failure saying what to install, never a skip.
#![cfg(feature = "deploy")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

use rivulet_agent::seed::publish::{reading_message, Publisher};
use rivulet_agent::seed::synthetic_reading;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const RIVULET: &str = env!("CARGO_BIN_EXE_rivulet");
/// What the image is built with (cross/image.sh): the two binaries, without
/// the Docker client.
const IMAGE_CARGO_ARGS: &str =
    "-p rivulet-agent -p rivulet-examples --bins --no-default-features --features embedded-broker,http";
const READINGS: u64 = 12_000;
const SENSORS: u32 = 30;
/// The stream is published in this many parts, one operation between two.
const STEPS: u64 = 8;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("docker not found: install the Docker Engine (apt-get install docker.io)")
}

fn docker_ok(args: &[&str]) -> String {
    let o = docker(args);
    assert!(o.status.success(), "docker {}: {}", args.join(" "), String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn rivulet(args: &[&str]) -> Output {
    Command::new(RIVULET).args(args).output().unwrap()
}

/// Leaves the swarm at the end when this test made it.
struct Swarm {
    made: bool,
}

impl Swarm {
    fn ensure() -> Swarm {
        let v = Command::new("docker").arg("version").output();
        let Ok(v) = v else { panic!("docker not found: install the Docker Engine (apt-get install docker.io)") };
        assert!(
            v.status.success(),
            "the Docker Engine is not reachable (start it: systemctl start docker): {}",
            String::from_utf8_lossy(&v.stderr)
        );
        let state = docker_ok(&["info", "--format", "{{.Swarm.LocalNodeState}}"]);
        if state.trim() == "active" {
            return Swarm { made: false };
        }
        docker_ok(&["swarm", "init", "--advertise-addr", "127.0.0.1"]);
        Swarm { made: true }
    }
}

impl Drop for Swarm {
    fn drop(&mut self) {
        if self.made {
            let _ = docker(&["swarm", "leave", "--force"]);
        }
    }
}

/// Removes the job when the test ends, however it ends.
struct Job<'a> {
    manifest: &'a Path,
    name: String,
}

impl Drop for Job<'_> {
    fn drop(&mut self) {
        let _ = rivulet(&["down", "--purge", "-f", self.manifest.to_str().unwrap()]);
        let _ = docker(&["stack", "rm", &format!("{}-stack", self.name)]);
        let _ = docker(&["secret", "rm", &format!("{}-http-token", self.name)]);
    }
}

fn build_image() -> String {
    let o = Command::new("bash")
        .arg(root().join("cross/image.sh"))
        .arg("x86_64")
        .env("IMAGE_TAG", "deploy-test")
        .env("IMAGE_CARGO_ARGS", IMAGE_CARGO_ARGS)
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(o.status.success(), "cross/image.sh x86_64 failed");
    String::from_utf8_lossy(&o.stdout).lines().last().unwrap().trim().to_string()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Builds the Mosquitto image (deploy/images/mosquitto.sh) and returns the
/// manifest's `[broker]` body for it.
fn mosquitto_broker() -> String {
    let o =
        Command::new("bash").arg(root().join("deploy/images/mosquitto.sh")).stderr(Stdio::inherit()).output().unwrap();
    assert!(o.status.success(), "deploy/images/mosquitto.sh failed (it needs Debian's mosquitto package and Docker)");
    let image = String::from_utf8_lossy(&o.stdout).lines().last().unwrap().trim().to_string();
    format!("kind = \"mosquitto\"\nimage = \"{image}\"")
}

const EMBEDDED: &str = "kind = \"embedded\"";

fn manifest(name: &str, image: &str, broker: &str, port: u16, extra_args: &str, placement: &str) -> String {
    format!(
        r#"
[job]
name = "{name}"
workers = 3
parallelism = 3
checkpoint_interval = "300ms"
worker_timeout = "20s"
args = ["--topic", "sensors/{{sensor_id}}/temp", "--client-id", "{name}-engine", "--stop-after-idle", "20s", "--publish", "averages/{{sensor_id}}"{extra_args}]
[checkpoint_store]
kind = "volume"
[broker]
{broker}
[images]
amd64 = "{image}"
[network]
trusted_lan = true
[ports]
broker = {port}
[memory]
worker = "256MiB"
{placement}
"#
    )
}

/// What the job's objects on the engine are, by kind.
/// A message received: topic, payload, `rivulet-msg-id`.
type Got = (String, String, Option<String>);

/// Results published on MQTT (`averages/#`), collected by a thread.
struct Results {
    got: std::sync::Arc<std::sync::Mutex<Vec<Got>>>,
    _client: rumqttc::v5::Client,
}

impl Results {
    fn subscribe(port: u16, id: &str) -> Results {
        use rumqttc::v5::{mqttbytes::v5::Packet, mqttbytes::QoS, Client, Event, MqttOptions};
        let mut o = MqttOptions::new(id, "127.0.0.1", port);
        o.set_clean_start(true);
        o.set_max_packet_size(Some(1 << 20));
        let (client, mut conn) = Client::new(o, 100);
        client.subscribe("averages/#", QoS::AtLeastOnce).unwrap();
        let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (g, subscribed) = (got.clone(), std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)));
        let s = subscribed.clone();
        std::thread::spawn(move || {
            for ev in conn.iter() {
                match ev {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let id = p.properties.as_ref().and_then(|pr| {
                            pr.user_properties.iter().find(|(k, _)| k == "rivulet-msg-id").map(|(_, v)| v.clone())
                        });
                        let topic = String::from_utf8_lossy(&p.topic).into_owned();
                        g.lock().unwrap().push((topic, String::from_utf8_lossy(&p.payload).into_owned(), id));
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => s.store(true, std::sync::atomic::Ordering::Release),
                    Ok(_) => {}
                    // The broker's published port resets connections until its task is up.
                    Err(_) => std::thread::sleep(Duration::from_millis(200)),
                }
            }
        });
        wait_for("the results subscriber's SUBACK", Duration::from_secs(60), || {
            subscribed.load(std::sync::atomic::Ordering::Acquire)
        });
        Results { got, _client: client }
    }

    /// Waits for `n` distinct message ids and returns their rows
    /// (`sensor,window_end,avg,count`), sorted. Copies of one id must be
    /// byte-identical.
    fn distinct(&self, n: usize, timeout: Duration) -> Vec<String> {
        let start = Instant::now();
        loop {
            let got = self.got.lock().unwrap().clone();
            let mut by_id = std::collections::BTreeMap::new();
            for (topic, payload, id) in &got {
                let id = id.clone().unwrap_or_else(|| panic!("a result without rivulet-msg-id: {topic} {payload}"));
                let first = by_id.entry(id.clone()).or_insert_with(|| (topic.clone(), payload.clone()));
                assert_eq!(first, &(topic.clone(), payload.clone()), "two results under message id {id}");
            }
            if by_id.len() >= n || start.elapsed() > timeout {
                let mut rows: Vec<String> = by_id
                    .values()
                    .map(|(topic, payload)| {
                        let v: serde_json::Value = serde_json::from_str(payload).unwrap();
                        let id = v["sensor_id"].as_str().unwrap().to_string();
                        assert_eq!(topic, &format!("averages/{id}"));
                        format!("{id},{},{},{}", v["window_end_ms"], v["avg_c"].as_f64().unwrap(), v["count"])
                    })
                    .collect();
                rows.sort();
                return rows;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Waits for the task of `service` to pass its healthcheck, whose output
/// holds `says` (`rivulet health` prints `alive: ...`; `mosquitto_sub -E`
/// prints nothing).
fn wait_healthy(service: &str, says: &str) {
    let mut last = String::new();
    let start = Instant::now();
    while !last.contains(r#""Status":"healthy""#) {
        assert!(start.elapsed() < Duration::from_secs(120), "{service} is not healthy within 120 s: {last}");
        std::thread::sleep(Duration::from_secs(1));
        let label = format!("label=com.docker.swarm.service.name={service}");
        let id = docker_ok(&["ps", "-q", "--filter", &label]);
        let Some(id) = id.lines().next() else { continue };
        last = docker_ok(&["inspect", "--format", "{{json .State.Health}}", id]);
    }
    assert!(last.contains(says), "{service}'s healthcheck said: {last}");
}

fn job_objects(name: &str) -> Vec<String> {
    let label = format!("label=com.docker.stack.namespace={name}");
    let mut all = Vec::new();
    for kind in ["service", "network", "config", "secret"] {
        let out = docker_ok(&[kind, "ls", "-q", "--filter", &label]);
        all.extend(out.lines().map(|l| format!("{kind} {l}")));
    }
    all
}

fn volume_dir(volume: &str) -> PathBuf {
    PathBuf::from(docker_ok(&["volume", "inspect", "--format", "{{.Mountpoint}}", volume]).trim())
}

fn sorted_lines(p: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_to_string(p).unwrap().lines().map(str::to_string).collect();
    v.sort();
    v
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn task_state(service: &str) -> String {
    docker_ok(&["service", "ps", "--no-trunc", "--format", "{{.DesiredState}} {{.CurrentState}}", service])
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

/// The single-process run of the same readings, read from a file, with
/// the static binary the image holds.
fn oracle(dir: &Path) -> Vec<String> {
    let input = dir.join("in.csv");
    rivulet_agent::dataset::write_csv(std::fs::File::create(&input).unwrap(), READINGS, SENSORS).unwrap();
    let out = dir.join("oracle.csv");
    let bin = std::env::var("RIVULET_CROSS_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/rivulet/cross-target"))
        .join("x86_64-unknown-linux-gnu/release/sensor-average");
    let o = Command::new(bin)
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(&out)
        .args(["--parallelism", "3"])
        .output()
        .unwrap();
    assert!(o.status.success(), "oracle run: {}", String::from_utf8_lossy(&o.stderr));
    sorted_lines(&out)
}

#[test]
fn the_seed_job_deploys_survives_kills_and_a_lost_volume_and_redeploys_idempotently() {
    let image = build_image();
    let mq = mosquitto_broker();
    let dir = tempfile::tempdir().unwrap();
    let name = format!("rvt{}", std::process::id());
    let port = free_port();
    let path = dir.path().join("rivulet.toml");
    let m = |path: &Path, text: String| {
        std::fs::write(path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    // No swarm: exit 2 saying how to make one. Checked when the test makes
    // the swarm itself (it leaves an existing one as it is).
    if docker_ok(&["info", "--format", "{{.Swarm.LocalNodeState}}"]).trim() == "active" {
        eprintln!("NOT CHECKED: `deploy` without a swarm (this engine was in a swarm before the test)");
    } else {
        let o = rivulet(&["deploy", "-f", &m(&path, manifest(&name, &image, &mq, port, "", ""))]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains("not in a swarm") && err.contains("docker swarm init"), "{err}");
    }
    let _swarm = Swarm::ensure();
    let job = Job { manifest: &path, name: name.clone() };

    // Bad manifests: exit 2 naming the field, nothing created.
    let bad = m(
        &dir.path().join("bad.toml"),
        manifest(&name, &image, &mq, port, "", "").replace("[network]", "[network]\nencrypt = true"),
    );
    let o = rivulet(&["deploy", "-f", &bad]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("unknown field `encrypt`"), "{err}");
    let nowhere = m(
        &dir.path().join("nowhere.toml"),
        manifest(&name, &image, &mq, port, "", "[placement.workers]\nhostnames = [\"no-such-pi\"]"),
    );
    let o = rivulet(&["deploy", "-f", &nowhere]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("placement.workers") && err.contains("no-such-pi"), "{err}");
    assert_eq!(job_objects(&name), Vec::<String>::new(), "a refused manifest created something");

    // Deploy, with the coordinator's --http published.
    let http = free_port();
    let http_secret = format!("{name}-http-token");
    let with_http = |text: String| {
        text.replace("[ports]\n", &format!("[ports]\nhttp = {http}\nhttp_token_secret = \"{http_secret}\"\n"))
    };
    let http_token = dir.path().join("http-token");
    std::fs::write(&http_token, "http-token-of-the-test").unwrap();
    docker_ok(&["secret", "create", &http_secret, http_token.to_str().unwrap()]);
    let good = m(&path, with_http(manifest(&name, &image, &mq, port, "", "")));
    let t = Instant::now();
    let o = rivulet(&["deploy", "-f", &good]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains(&format!("create service {name}_worker-2")), "{out}");
    // Another job publishing the same broker port: exit 2 naming the
    // field, nothing of it created.
    let other = format!("{name}b");
    let clash = m(&dir.path().join("clash.toml"), manifest(&other, &image, &mq, port, "", ""));
    let o = rivulet(&["deploy", "-f", &clash]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("ports.broker") && err.contains(&format!("published by service {name}_broker")), "{err}");
    assert_eq!(job_objects(&other), Vec::<String>::new(), "a refused manifest created something");

    // The job runs once a checkpoint is in the store: its source is subscribed.
    let store = volume_dir_when_created(&format!("{name}_checkpoints"));
    wait_for("the first checkpoint", Duration::from_secs(90), || store.join("sensor-average/latest").exists());
    eprintln!("deploy to the first checkpoint: {:?}", t.elapsed());

    // logs: the coordinator's checkpoint lines, prefixed with service.task@node.
    let o = rivulet(&["logs", "-f", &good, "coordinator", "--tail", "50"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        out.lines().any(|l| l.starts_with("coordinator.") && l.contains(" | ") && l.contains("checkpoint complete")),
        "rivulet logs coordinator:\n{out}"
    );
    assert!(out.lines().count() <= 50, "--tail 50 printed {} lines", out.lines().count());
    let o = rivulet(&["logs", "-f", &good, "no-such-service"]);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));

    // Every task's healthcheck passes: `rivulet health` (the liveness file
    // of the coordinator and the workers) and Mosquitto's `mosquitto_sub`.
    for svc in ["coordinator", "worker-0", "worker-1", "worker-2"] {
        wait_healthy(&format!("{name}_{svc}"), "alive: ");
    }
    wait_healthy(&format!("{name}_broker"), "");

    // The results on MQTT, from before the first reading.
    let results = Results::subscribe(port, &format!("{name}-results"));

    // Publish from a thread, up to a limit the test raises step by step,
    // so each operation below happens between readings of one stream.
    let step = |k: u64| k * READINGS / STEPS;
    let limit = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(step(1)));
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let publisher = {
        let (limit, sent, url, id) =
            (limit.clone(), sent.clone(), format!("mqtt://127.0.0.1:{port}"), format!("{name}-sensors"));
        std::thread::spawn(move || {
            use std::sync::atomic::Ordering::SeqCst;
            let mut p = Publisher::connect(&url, &id, false).unwrap();
            p.wait_connected(Duration::from_secs(30)).unwrap();
            for i in 0..READINGS {
                while i >= limit.load(SeqCst) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                let (topic, payload) = reading_message(&synthetic_reading(i, SENSORS));
                p.send(&topic, payload).unwrap();
                sent.store(i + 1, SeqCst);
                if i % 20 == 0 {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            p.wait_acked(Duration::from_secs(120)).unwrap();
        })
    };
    let reach = |n: u64| {
        wait_for(&format!("{n} readings published"), Duration::from_secs(300), || {
            sent.load(std::sync::atomic::Ordering::SeqCst) >= n
        })
    };
    let allow = |n: u64| limit.store(n, std::sync::atomic::Ordering::SeqCst);
    // A checkpoint completes after `since`: the job runs again.
    let latest = store.join("sensor-average/latest");
    let coordinator = format!("{name}_coordinator");
    // (or the job's end: once the last readings are in, it stops after
    // --stop-after-idle). What the job said is printed when it times out.
    let checkpointing_after = |what: &str, since: std::time::SystemTime| {
        let start = Instant::now();
        while !std::fs::metadata(&latest).and_then(|m| m.modified()).is_ok_and(|t| t > since)
            && !task_state(&coordinator).contains("Complete")
        {
            if start.elapsed() > Duration::from_secs(180) {
                let status = rivulet(&["status", "-f", &good]);
                let logs = rivulet(&["logs", "-f", &good, "--tail", "15"]);
                panic!(
                    "no checkpoint within 180s after {what}\n{}{}",
                    String::from_utf8_lossy(&status.stdout),
                    String::from_utf8_lossy(&logs.stdout)
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    };

    // Kill worker-0's container; Swarm restarts it, and status shows it.
    reach(step(1));
    allow(step(2));
    let id = docker_ok(&["ps", "-q", "--filter", &format!("label=com.docker.swarm.service.name={name}_worker-0")]);
    docker_ok(&["kill", id.trim()]);
    let worker0 = format!("{name}_worker-0");
    wait_for("Swarm to restart worker-0", Duration::from_secs(60), || {
        let tasks = docker_ok(&["service", "ps", "--format", "{{.CurrentState}}", &worker0]);
        tasks.lines().count() >= 2 && tasks.lines().next().is_some_and(|l| l.starts_with("Running"))
    });
    let killed_at = std::time::SystemTime::now();
    checkpointing_after("the kill", killed_at);
    let o = rivulet(&["status", "-f", &good, "--http-token", http_token.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}{}", String::from_utf8_lossy(&o.stderr));
    let line = out.lines().find(|l| l.contains(&format!("{worker0} "))).unwrap_or_default();
    assert!(line.contains("running on") && line.contains("1 restarts") && line.contains("failed"), "{out}");
    let line = out.lines().find(|l| l.contains(&format!("{name}_worker-1 "))).unwrap_or_default();
    assert!(line.contains("running on") && line.contains("0 restarts"), "{out}");
    assert!(out.contains("the coordinator at http://"), "{out}");
    assert!(out.contains("workers: ") && out.contains("checkpoints: "), "the coordinator's view:\n{out}");

    // Kill the coordinator's container mid-stream: Swarm restarts it (at
    // another address behind the same name), the workers find it again and
    // the job resumes from the latest checkpoint in the store.
    reach(step(2));
    allow(step(3));
    let id = docker_ok(&["ps", "-q", "--filter", &format!("label=com.docker.swarm.service.name={coordinator}")]);
    let t = Instant::now();
    docker_ok(&["kill", id.trim()]);
    wait_for("Swarm to restart the coordinator", Duration::from_secs(60), || {
        let tasks = docker_ok(&["service", "ps", "--format", "{{.CurrentState}}", &coordinator]);
        tasks.lines().count() >= 2 && tasks.lines().next().is_some_and(|l| l.starts_with("Running"))
    });
    let restarted = std::time::SystemTime::now();
    checkpointing_after("the coordinator's kill", restarted);
    eprintln!("coordinator killed to the next checkpoint: {:?}", t.elapsed());

    // Remove worker-1's state volume before its restart, as a user would
    // (a volume in use cannot be removed): its slot scaled to 0, the
    // volume removed, the slot scaled back. It starts with empty local
    // state and restores its key groups from the checkpoint store.
    reach(step(3));
    allow(step(4));
    let worker1 = format!("{name}_worker-1");
    let state1 = format!("{name}_state-1");
    let t = Instant::now();
    docker_ok(&["service", "scale", "--detach", &format!("{worker1}=0")]);
    wait_for("worker-1's container to go", Duration::from_secs(60), || {
        docker_ok(&["ps", "-aq", "--filter", &format!("label=com.docker.swarm.service.name={worker1}")])
            .trim()
            .is_empty()
    });
    docker_ok(&["volume", "rm", &state1]);
    docker_ok(&["service", "scale", "--detach", &format!("{worker1}=1")]);
    wait_for("worker-1 to run again", Duration::from_secs(60), || task_state(&worker1).starts_with("Running Running"));
    let back = std::time::SystemTime::now();
    assert!(
        docker(&["volume", "inspect", &state1]).status.success(),
        "Swarm did not create worker-1's state volume again"
    );
    checkpointing_after("worker-1's volume removal", back);
    eprintln!("worker-1 volume removed to the next checkpoint: {:?}", t.elapsed());
    let task = docker_ok(&["service", "ps", "-q", "--no-trunc", "--filter", "desired-state=running", &worker1]);
    let task = format!("worker-1.{}", task.trim().get(..8).unwrap_or_default());
    let logs = rivulet(&["logs", "-f", &good, "worker-1"]);
    let logs = String::from_utf8_lossy(&logs.stdout);
    assert!(
        logs.lines()
            .filter(|l| l.starts_with(&task))
            .any(|l| l.contains("restored this slot's key groups from the checkpoint store")),
        "worker-1's task {task}, started without its volume, did not restore from the checkpoint store:\n{logs}"
    );

    // logs --follow goes on across the coordinator's restart by the scale below.
    let mut follow = Command::new(RIVULET)
        .args(["logs", "-f", &good, "coordinator", "--follow", "--tail", "5"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let followed = {
        let out = follow.stdout.take().unwrap();
        std::thread::spawn(move || std::io::read_to_string(out).unwrap_or_default())
    };

    // Scale 3 -> 2 -> 4 while the stream goes on.
    reach(step(4));
    allow(step(5));
    let t = Instant::now();
    let o = rivulet(&["scale", "-f", &good, "--workers", "2"]);
    // It returns once the services run their new tasks.
    let before = std::time::SystemTime::now();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("savepoint of epoch"), "{out}");
    assert!(out.contains(&format!("update service {name}_coordinator")), "{out}");
    assert!(out.contains(&format!("remove service {name}_worker-2")), "{out}");
    checkpointing_after("scale 3 -> 2", before);
    eprintln!("scale 3 -> 2 to the next checkpoint: {:?}\n{out}", t.elapsed());
    follow.kill().unwrap();
    follow.wait().unwrap();
    let followed = followed.join().unwrap();
    let tasks: std::collections::BTreeSet<&str> =
        followed.lines().filter(|l| l.contains("checkpoint complete")).filter_map(|l| l.split(" | ").next()).collect();
    assert!(tasks.len() >= 2, "logs --follow saw checkpoints of {tasks:?} only:\n{followed}");
    let sp = store.join("savepoints");
    assert!(sp.is_dir() && std::fs::read_dir(&sp).unwrap().count() >= 1, "no savepoint in {}", sp.display());
    // A plain deploy of the manifest's 3 workers is refused, naming the field.
    let o = rivulet(&["deploy", "-f", &good]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("job.workers") && err.contains("rivulet scale"), "{err}");

    reach(step(5));
    allow(step(6));
    let t = Instant::now();
    let o = rivulet(&["scale", "-f", &good, "--workers", "4"]);
    // It returns once the services run their new tasks.
    let before = std::time::SystemTime::now();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}{}", String::from_utf8_lossy(&o.stderr));
    for w in [2, 3] {
        assert!(out.contains(&format!("create service {name}_worker-{w}")), "{out}");
    }
    checkpointing_after("scale 2 -> 4", before);
    eprintln!("scale 2 -> 4 to the next checkpoint: {:?}\n{out}", t.elapsed());

    // Upgrade to the same image under another tag while the stream goes on.
    reach(step(6));
    allow(READINGS);
    let upgraded = format!("{}-up", image);
    docker_ok(&["tag", &image, &upgraded]);
    let t = Instant::now();
    let o = rivulet(&["upgrade", "-f", &good, "--image", &upgraded]);
    // It returns once the services run their new tasks.
    let before = std::time::SystemTime::now();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(out.lines().filter(|l| l.starts_with("update service")).count(), 5, "coordinator and 4 slots: {out}");
    assert!(!out.contains(&format!("update service {name}_broker")), "{out}");
    checkpointing_after("the upgrade", before);
    eprintln!("upgrade to the next checkpoint: {:?}\n{out}", t.elapsed());
    let upgrade_savepoint = out
        .lines()
        .find_map(|l| l.split(" written to ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("upgrade printed no savepoint path: {out}"))
        .to_string();
    publisher.join().unwrap();

    // The coordinator ends after --stop-after-idle with the job complete.
    let start = Instant::now();
    while !task_state(&coordinator).contains("Complete") {
        if start.elapsed() > Duration::from_secs(180) {
            let status = rivulet(&["status", "-f", &good]);
            let logs = rivulet(&["logs", "-f", &good, "--tail", "15"]);
            panic!(
                "the coordinator did not complete within 180s\n{}{}",
                String::from_utf8_lossy(&status.stdout),
                String::from_utf8_lossy(&logs.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    eprintln!("upgrade to the job's end: {:?}", t.elapsed());
    let got = sorted_lines(&volume_dir(&format!("{name}_output")).join("results.csv"));
    let want = oracle(dir.path());
    assert!(!want.is_empty());
    let what = "a worker's and the coordinator's kill, a worker's volume removed, two rescales and an upgrade";
    assert_eq!(got.len(), want.len(), "rows after {what}");
    assert_eq!(got, want, "results after {what} differ from the single-process run");
    // What was published on MQTT: the same rows, once each by message id
    // (a coordinator killed between publishing an epoch and recording it
    // publishes it again, under the same ids).
    let published = results.distinct(want.len(), Duration::from_secs(60));
    assert_eq!(published, want, "results published on MQTT after {what}, deduplicated by rivulet-msg-id");
    // The store's mirror of the source's ingest log holds every message
    // from the first on, without a hole: a worker that takes the source
    // over (at the rollback below, any slot may) replays all of them.
    let url = format!("file://{}", store.display());
    let mirror = rivulet::checkpoint::store::CheckpointStore::open(&url, "sensor-average").unwrap();
    let source = std::fs::read_dir(store.join("sensor-average/ingest"))
        .unwrap()
        .flatten()
        .find_map(|e| e.file_name().to_string_lossy().parse::<u16>().ok())
        .expect("no mirrored ingest log in the store");
    let seqs: Vec<u64> = mirror.read_ingest(source, 0).unwrap().into_iter().map(|(s, _)| s).collect();
    let holes: Vec<&[u64]> = seqs.windows(2).filter(|w| w[1] != w[0] + 1).collect();
    assert!(seqs.first() == Some(&0) && holes.is_empty(), "the ingest mirror has holes between {holes:?}");
    assert!(seqs.len() as u64 >= READINGS, "the ingest mirror holds {} of {READINGS} readings", seqs.len());
    for s in ["coordinator", "worker-0", "worker-3"] {
        let img = docker_ok(&[
            "service",
            "inspect",
            "--format",
            "{{.Spec.TaskTemplate.ContainerSpec.Image}}",
            &format!("{name}_{s}"),
        ]);
        assert_eq!(img.trim(), upgraded, "{s} runs {img}");
    }

    // Back to the upgrade's savepoint, after the job finished: it runs
    // again from there (the readings since come from the source's pinned
    // ingest log, the broker has none left) to the same results, those
    // since the savepoint published again.
    let bad = rivulet(&["rollback", "-f", &good, "--to", "/elsewhere/sp"]);
    assert_eq!(bad.status.code(), Some(2), "{}", String::from_utf8_lossy(&bad.stderr));
    let t = Instant::now();
    let o = rivulet(&["rollback", "-f", &good, "--to", &upgrade_savepoint]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("to the savepoint of epoch") || out.contains("rolled back to a savepoint"), "{out}");
    assert_eq!(out.lines().filter(|l| l.starts_with("update service")).count(), 5, "coordinator and 4 slots: {out}");
    let start = Instant::now();
    while !task_state(&coordinator).contains("Complete") {
        assert!(start.elapsed() < Duration::from_secs(180), "the rolled back job did not complete within 180s");
        std::thread::sleep(Duration::from_millis(250));
    }
    eprintln!("rollback to the job's end: {:?}\n{out}", t.elapsed());
    let again = sorted_lines(&volume_dir(&format!("{name}_output")).join("results.csv"));
    let mut unique = again.clone();
    unique.dedup();
    assert_eq!(unique, want, "results after the rollback differ from the single-process run");
    assert!(again.len() > want.len(), "no result was published again after the rollback");
    let o = rivulet(&["rollback", "-f", &good, "--to", &upgrade_savepoint]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success() && out.contains("nothing changed"), "{out}{}", String::from_utf8_lossy(&o.stderr));

    // The manifest brought in line with what scale and upgrade set (the
    // broker keeps its own image): a deploy changes nothing.
    let good = m(&path, with_http(manifest(&name, &upgraded, &mq, port, "", "")).replace("workers = 3", "workers = 4"));
    let o = rivulet(&["deploy", "--dry-run", "-f", &good]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(out.trim(), format!("job {name}: nothing changed"), "dry run after scale and upgrade");
    let before = docker_ok(&["service", "inspect", "--format", "{{.Version.Index}}", &format!("{name}_worker-1")]);
    let o = rivulet(&["deploy", "-f", &good]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success() && out.contains("nothing changed"), "{out}{}", String::from_utf8_lossy(&o.stderr));
    let after = docker_ok(&["service", "inspect", "--format", "{{.Version.Index}}", &format!("{name}_worker-1")]);
    assert_eq!(before, after, "an unchanged redeploy updated a worker");

    // One flag changed: only the coordinator (which holds the job's flags) is updated.
    let changed = m(
        &path,
        with_http(manifest(&name, &upgraded, &mq, port, ", \"--window\", \"10s\"", ""))
            .replace("workers = 3", "workers = 4"),
    );
    let o = rivulet(&["deploy", "--dry-run", "-f", &changed]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}");
    assert_eq!(out.trim(), format!("would update service {name}_coordinator"), "dry run");
    let o = rivulet(&["deploy", "-f", &changed]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.lines()
            .filter(|l| l.starts_with("update service"))
            .eq([format!("update service {name}_coordinator").as_str()]),
        "{out}"
    );

    // The same job as a compose stack: `docker stack deploy` takes it.
    let stack_name = format!("{name}-stack");
    let stack_manifest =
        m(&dir.path().join("stack.toml"), manifest(&stack_name, &image, EMBEDDED, free_port(), "", ""));
    let o = rivulet(&["stack", "-f", &stack_manifest]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let compose = dir.path().join("stack.yml");
    std::fs::write(&compose, &o.stdout).unwrap();
    let token = Command::new("docker")
        .args(["secret", "create", &format!("{stack_name}_cluster-token"), "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b"0123456789abcdef0123456789abcdef")?;
            c.wait()
        })
        .unwrap();
    assert!(token.success());
    docker_ok(&["stack", "deploy", "-c", compose.to_str().unwrap(), &stack_name]);
    let services = docker_ok(&["stack", "services", "--format", "{{.Name}}", &stack_name]);
    assert_eq!(services.lines().count(), 5, "{services}");
    // The embedded broker's healthcheck (`rivulet health --mqtt`, an MQTT
    // connection to it) passes.
    wait_healthy(&format!("{stack_name}_broker"), "alive: ");
    // Its healthchecks are the deployment's.
    let check = |svc: &str| {
        let f = "{{json .Spec.TaskTemplate.ContainerSpec.Healthcheck}}";
        docker_ok(&["service", "inspect", "--format", f, &format!("{svc}_worker-1")])
    };
    assert_eq!(check(&stack_name), check(&name), "the stack's healthcheck differs from rivulet deploy's");
    assert!(check(&name).contains("/dev/shm/rivulet.alive"), "{}", check(&name));
    docker_ok(&["stack", "rm", &stack_name]);
    wait_for("the stack's network to go", Duration::from_secs(60), || {
        docker_ok(&["network", "ls", "-q", "--filter", &format!("name={stack_name}_net")]).trim().is_empty()
    });
    docker_ok(&["secret", "rm", &format!("{stack_name}_cluster-token")]);
    remove_volumes(&stack_name);

    // Down: nothing of the job is left.
    let o = rivulet(&["down", "--purge", "-f", &good]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(job_objects(&name), Vec::<String>::new(), "left after down --purge");
    docker_ok(&["secret", "rm", &http_secret]);
    docker_ok(&["rmi", &upgraded]);
    let vols = docker_ok(&["volume", "ls", "-q", "--filter", &format!("name={name}_")]);
    assert!(vols.trim().is_empty(), "volumes left: {vols}");
    drop(job);
}

/// Removes a stack's volumes once its containers are gone.
fn remove_volumes(stack: &str) {
    let vols = docker_ok(&["volume", "ls", "-q", "--filter", &format!("label=com.docker.stack.namespace={stack}")]);
    for v in vols.lines() {
        wait_for(&format!("volume {v} to be free"), Duration::from_secs(60), || {
            docker(&["volume", "rm", v]).status.success()
        });
    }
}

fn volume_dir_when_created(volume: &str) -> PathBuf {
    wait_for(volume, Duration::from_secs(60), || docker(&["volume", "inspect", volume]).status.success());
    volume_dir(volume)
}
