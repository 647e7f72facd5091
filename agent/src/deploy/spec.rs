//! What a manifest deploys, in Swarm's terms: the network, volumes,
//! configs, secrets and services of the job. Both the compose stack file
//! (`rivulet stack`) and `rivulet deploy` are rendered from this one
//! model, so they cannot drift apart.
//!
//! Names follow `docker stack deploy NAME`: `<job>_<short>` for every
//! object, and the label `com.docker.stack.namespace=<job>`, so `docker
//! stack ps <job>` shows a job `rivulet deploy` made.

use super::manifest::{BrokerKind, Manifest, Role, StoreKind, OUTPUT_DIR};
use std::collections::BTreeMap;

/// The port the coordinator listens on for workers.
pub const COORDINATOR_PORT: u16 = 7000;
/// The port each worker listens on for the others' data links.
pub const WORKER_PORT: u16 = 7100;
/// The broker's MQTT port in the swarm.
pub const MQTT_PORT: u16 = 1883;
/// Where the checkpoint store is mounted (file stores).
pub const STORE_DIR: &str = "/var/lib/rivulet/checkpoints";
/// Where a worker's state volume is mounted.
pub const STATE_DIR: &str = "/var/lib/rivulet/state";
/// The secret holding the cluster token, by its short name.
pub const TOKEN_SECRET: &str = "cluster-token";
/// The label every object of a job carries, with the job's name.
pub const NAMESPACE_LABEL: &str = "com.docker.stack.namespace";
/// The coordinator's `--http` port in its container.
pub const HTTP_PORT: u16 = 9464;
/// The file (under /run/secrets) of the coordinator's `--http-token`.
pub const HTTP_TOKEN_FILE: &str = "http-token";
/// The label on the coordinator holding the worker count `rivulet scale`
/// set, when it is not the manifest's.
pub const WORKERS_LABEL: &str = "io.rivulet.scaled-workers";
/// The label on the coordinator holding the image `rivulet upgrade` set.
pub const IMAGE_LABEL: &str = "io.rivulet.upgraded-image";
/// The coordinator label recording the savepoint `rivulet rollback` went
/// back to (the coordinator's `--rollback-to`, which the store makes
/// happen once).
pub const ROLLBACK_LABEL: &str = "io.rivulet.rolled-back-to";
/// The label holding the hash of a service's spec, so a redeploy can tell
/// what changed.
pub const HASH_LABEL: &str = "io.rivulet.spec-hash";
/// The liveness file of the coordinator and the workers (`--alive-file`),
/// in the container's `/dev/shm`: in memory, never on the SD card.
pub const ALIVE_FILE: &str = "/dev/shm/rivulet.alive";
/// How old the liveness file may be before the task is unhealthy: long
/// enough for a worker restoring its state from the checkpoint store on a
/// Pi (its control loop waits for the restore).
pub const ALIVE_MAX_AGE: &str = "120s";
/// When Swarm runs the healthcheck, how long it may take, how many
/// failures in a row make a task unhealthy (Swarm replaces it), and how
/// long after a start failures do not count, in seconds. Swarm gives a
/// task its DNS name once a first check passed, one interval after the
/// start (engines before API 1.44 know no faster start interval): the
/// interval is what a restarted task's peers wait on top.
pub const HEALTH_TIMING: Health = Health { interval_s: 5, timeout_s: 3, retries: 3, start_period_s: 60 };

/// The Mosquitto config shipped and tested with Rivulet, listening on
/// every interface of the container.
const MOSQUITTO_CONF: &str = include_str!("../../../examples/mosquitto.conf");

/// Everything a job deploys.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The job's name (the stack's namespace).
    pub job: String,
    /// The overlay network's short name and whether it is encrypted.
    pub network: (String, bool),
    /// Volumes: short name and driver options (empty: the local driver's defaults).
    pub volumes: Vec<(String, BTreeMap<String, String>)>,
    /// Configs: full (content-hash) name and content.
    pub configs: Vec<(String, String)>,
    /// The cluster token secret's short name (generated once).
    pub token_secret: String,
    /// Secrets the user created beforehand: (the manifest field naming
    /// it, its full name).
    pub external_secrets: Vec<(String, String)>,
    /// The services, in start order.
    pub services: Vec<Service>,
    /// The checkpoint store's URL as the job's containers see it.
    pub store_url: String,
    /// What `rivulet scale` / `upgrade` set instead of the manifest.
    pub overrides: Overrides,
}

/// Values set by `rivulet scale` and `rivulet upgrade` in place of the
/// manifest's; recorded as labels on the coordinator ([`WORKERS_LABEL`],
/// [`IMAGE_LABEL`]), so a later `rivulet deploy` can tell.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `job.workers`.
    pub workers: Option<u16>,
    /// The image of the coordinator and the worker slots (every platform).
    pub image: Option<String>,
    /// The savepoint `rivulet rollback` went back to: the coordinator's
    /// `--rollback-to`.
    pub rollback_to: Option<String>,
}

/// One Swarm service (one replica).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Service {
    /// Short name (`coordinator`, `worker-0`, `broker`): its DNS name on
    /// the job's network.
    pub name: String,
    /// Image reference.
    pub image: String,
    /// The process's argv (`argv[0]` is the binary's path in the image).
    pub command: Vec<String>,
    /// Environment.
    pub env: BTreeMap<String, String>,
    /// Volume mounts: short volume name -> target.
    pub volumes: Vec<(String, String)>,
    /// Secrets: (name, short name?, target file name under /run/secrets).
    pub secrets: Vec<SecretRef>,
    /// Configs: (full name, target path).
    pub configs: Vec<(String, String)>,
    /// Placement constraints.
    pub constraints: Vec<String>,
    /// Memory limit in bytes.
    pub memory: Option<u64>,
    /// Published port: (published, target).
    pub publish: Option<(u16, u16)>,
    /// The healthcheck's test in Docker's exec form (`CMD`, then the argv:
    /// the images have no shell), run with [`HEALTH_TIMING`].
    pub health: Option<Vec<String>>,
}

/// A healthcheck's timing, in seconds (retries: failures in a row).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    /// Between two checks.
    pub interval_s: u32,
    /// How long one check may take.
    pub timeout_s: u32,
    /// Failures in a row that make the task unhealthy.
    pub retries: u32,
    /// After a start, failures in this window do not count.
    pub start_period_s: u32,
}

/// A secret a service reads.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SecretRef {
    /// The job's own (short name, prefixed with the job) or one the user
    /// made (full name).
    pub owned: bool,
    /// Short name (owned) or full name.
    pub name: String,
    /// File name under /run/secrets.
    pub target: String,
}

impl Spec {
    /// The full name of a job-owned object.
    pub fn full(&self, short: &str) -> String {
        format!("{}_{short}", self.job)
    }

    /// Builds the spec of a checked manifest.
    pub fn of(m: &Manifest) -> Spec {
        Spec::with(m, Overrides::default())
    }

    /// The spec of a checked manifest with the worker count or image of
    /// `o` in place of the manifest's.
    pub fn with(m: &Manifest, o: Overrides) -> Spec {
        let mut m = m.clone();
        if let Some(n) = o.workers {
            // The parallelism stays the manifest's (or its worker count):
            // rescaling moves key groups, it does not change the job.
            m.job.parallelism = Some(m.parallelism());
            m.job.workers = n;
        }
        let mut spec = Spec::build(&m);
        if let Some(image) = &o.image {
            for s in spec.services.iter_mut().filter(|s| s.name != "broker") {
                s.image = image.clone();
            }
        }
        let rollback = o.rollback_to.clone();
        spec.overrides = o;
        match rollback {
            Some(to) => spec.rolled_back_to(to),
            None => spec,
        }
    }

    /// This spec with its coordinator going back to the savepoint `to`
    /// (`--rollback-to`), as `rivulet rollback` sets it. The worker slots
    /// name it in their environment (`RIVULET_ROLLED_BACK_TO`), so they
    /// are started again with it: a finished job's slots have exited.
    pub fn rolled_back_to(mut self, to: String) -> Spec {
        for s in &mut self.services {
            if s.name == "coordinator" {
                s.command.extend(["--rollback-to".to_string(), to.clone()]);
            } else if s.name.starts_with("worker-") {
                s.env.insert("RIVULET_ROLLED_BACK_TO".into(), to.clone());
            }
        }
        self.overrides.rollback_to = Some(to);
        self
    }

    fn build(m: &Manifest) -> Spec {
        let job = m.job.name.clone();
        let mut volumes = vec![("output".to_string(), BTreeMap::new())];
        let mut configs = Vec::new();
        let mut external_secrets = Vec::new();
        let mut services = Vec::new();
        let token = SecretRef { owned: true, name: TOKEN_SECRET.into(), target: TOKEN_SECRET.into() };
        let token_file = format!("/run/secrets/{TOKEN_SECRET}");

        // The checkpoint store: a mount for file stores, env for S3.
        let s = &m.checkpoint_store;
        let mut store_mount = None;
        let mut store_env = BTreeMap::new();
        let mut store_secrets = Vec::new();
        let store_url = match s.kind {
            StoreKind::Volume | StoreKind::Nfs => {
                let mut opts = BTreeMap::new();
                if s.kind == StoreKind::Nfs {
                    let server = s.server.clone().unwrap_or_default();
                    let o = s.options.clone().unwrap_or_else(|| "rw,nfsvers=4".into());
                    opts.insert("type".into(), "nfs".into());
                    opts.insert("o".into(), format!("addr={server},{o}"));
                    opts.insert("device".into(), format!(":{}", s.path.clone().unwrap_or_default()));
                }
                volumes.push(("checkpoints".into(), opts));
                store_mount = Some(("checkpoints".to_string(), STORE_DIR.to_string()));
                format!("file://{STORE_DIR}")
            }
            StoreKind::S3 => {
                let secret = s.secret.clone().unwrap_or_default();
                store_env.insert("AWS_ACCESS_KEY_ID".to_string(), s.access_key_id.clone().unwrap_or_default());
                store_env.insert("AWS_SECRET_ACCESS_KEY_FILE".to_string(), format!("/run/secrets/{secret}"));
                store_env
                    .insert("AWS_DEFAULT_REGION".to_string(), s.region.clone().unwrap_or_else(|| "us-east-1".into()));
                if let Some(e) = &s.endpoint {
                    store_env.insert("AWS_ENDPOINT_URL".to_string(), e.clone());
                    if e.starts_with("http://") {
                        store_env.insert("AWS_ALLOW_HTTP".to_string(), "true".into());
                    }
                }
                store_secrets.push(SecretRef { owned: false, name: secret.clone(), target: secret.clone() });
                external_secrets.push(("checkpoint_store.secret".to_string(), secret));
                s.url.clone().unwrap_or_default()
            }
        };

        // The broker.
        let mut mqtt = None;
        if let Some(b) = &m.broker {
            let (image, arch) = m.image_for(&m.placement.broker);
            let mut svc = Service {
                name: "broker".into(),
                image: image.clone(),
                command: vec![],
                env: BTreeMap::new(),
                volumes: vec![],
                secrets: vec![],
                configs: vec![],
                constraints: constraints(&m.placement.broker, arch, None),
                memory: m.memory.broker.as_deref().and_then(|t| super::manifest::memory_bytes(t).ok()),
                publish: m.ports.broker.map(|p| (p, MQTT_PORT)),
                health: None,
            };
            match b.kind {
                BrokerKind::Embedded => {
                    svc.command = vec![
                        "/usr/local/bin/rivulet".into(),
                        "broker".into(),
                        "--listen".into(),
                        format!("0.0.0.0:{MQTT_PORT}"),
                    ];
                    svc.health = Some(probe(&["--mqtt", &format!("127.0.0.1:{MQTT_PORT}")]));
                    services.push(svc);
                    mqtt = Some((format!("mqtt://broker:{MQTT_PORT}"), true));
                }
                BrokerKind::Mosquitto => {
                    let conf = mosquitto_conf();
                    let name = format!("{job}_mosquitto-{:016x}", fnv1a(conf.as_bytes()));
                    configs.push((name.clone(), conf));
                    svc.image = b.image.clone().unwrap_or_default();
                    svc.constraints = constraints(&m.placement.broker, None, None);
                    svc.command = vec!["mosquitto".into(), "-c".into(), "/mosquitto/config/mosquitto.conf".into()];
                    svc.configs.push((name, "/mosquitto/config/mosquitto.conf".into()));
                    svc.volumes.push(("broker".into(), "/var/lib/mosquitto".into()));
                    if b.healthcheck.unwrap_or(true) {
                        svc.health = Some(mosquitto_probe());
                    }
                    volumes.push(("broker".into(), BTreeMap::new()));
                    services.push(svc);
                    mqtt = Some((format!("mqtt://broker:{MQTT_PORT}"), false));
                }
                BrokerKind::External => mqtt = Some((b.url.clone().unwrap_or_default(), false)),
            }
        }

        // The coordinator.
        let bin = format!("/usr/local/bin/{}", m.job.binary);
        let mut cmd = vec![
            bin.clone(),
            "coordinator".into(),
            "--listen".into(),
            format!("0.0.0.0:{COORDINATOR_PORT}"),
            "--workers".into(),
            m.job.workers.to_string(),
            "--checkpoint-store".into(),
            store_url.clone(),
            "--cluster-token-file".into(),
            token_file.clone(),
            "--alive-file".into(),
            ALIVE_FILE.into(),
        ];
        let mut http_secret = None;
        if let (Some(_), Some(secret)) = (m.ports.http, &m.ports.http_token_secret) {
            cmd.extend(["--http".into(), format!("0.0.0.0:{HTTP_PORT}")]);
            cmd.extend(["--http-token".into(), format!("/run/secrets/{HTTP_TOKEN_FILE}")]);
            http_secret = Some(SecretRef { owned: false, name: secret.clone(), target: HTTP_TOKEN_FILE.into() });
            external_secrets.push(("ports.http_token_secret".to_string(), secret.clone()));
        }
        if let Some(t) = &m.job.worker_timeout {
            cmd.extend(["--worker-timeout".into(), t.clone()]);
        }
        if let Some((url, v311)) = &mqtt {
            cmd.extend(["--mqtt".into(), url.clone()]);
            if *v311 {
                cmd.push("--mqtt-v311".into());
            }
        }
        cmd.extend([
            "--parallelism".into(),
            m.parallelism().to_string(),
            "--checkpoint-interval".into(),
            m.job.checkpoint_interval.clone(),
            "--output".into(),
            m.job.output.clone(),
        ]);
        cmd.extend(m.job.args.iter().cloned());
        let (image, arch) = m.image_for(&m.placement.coordinator);
        let mut vols = vec![("output".to_string(), OUTPUT_DIR.to_string())];
        vols.extend(store_mount.clone());
        let mut secrets = vec![token.clone()];
        secrets.extend(store_secrets.iter().cloned());
        let mut coordinator_secrets = secrets.clone();
        coordinator_secrets.extend(http_secret);
        let mut env = store_env.clone();
        env.insert("RUST_LOG".into(), m.job.log.clone());
        services.push(Service {
            name: "coordinator".into(),
            image,
            command: cmd,
            env: env.clone(),
            volumes: vols,
            secrets: coordinator_secrets,
            configs: vec![],
            constraints: {
                let mut c = constraints(&m.placement.coordinator, arch, None);
                if m.placement.coordinator.hostnames.is_empty() && m.placement.coordinator.labels.is_empty() {
                    c.insert(0, "node.role == manager".into());
                }
                c
            },
            memory: m.memory.coordinator.as_deref().and_then(|t| super::manifest::memory_bytes(t).ok()),
            publish: m.ports.http.map(|p| (p, HTTP_PORT)),
            health: Some(alive_probe()),
        });

        // The worker slots: one service each, with its own state volume.
        let (image, arch) = m.image_for(&m.placement.workers);
        for k in 0..m.job.workers {
            let name = format!("worker-{k}");
            let state = format!("state-{k}");
            volumes.push((state.clone(), BTreeMap::new()));
            let mut vols = vec![(state, STATE_DIR.to_string())];
            vols.extend(store_mount.clone());
            services.push(Service {
                name: name.clone(),
                image: image.clone(),
                command: vec![
                    bin.clone(),
                    "worker".into(),
                    "--coordinator".into(),
                    format!("coordinator:{COORDINATOR_PORT}"),
                    "--slot".into(),
                    k.to_string(),
                    "--state-dir".into(),
                    STATE_DIR.into(),
                    "--listen".into(),
                    format!("0.0.0.0:{WORKER_PORT}"),
                    "--advertise".into(),
                    format!("{name}:{WORKER_PORT}"),
                    "--cluster-token-file".into(),
                    token_file.clone(),
                    "--alive-file".into(),
                    ALIVE_FILE.into(),
                ],
                env: env.clone(),
                volumes: vols,
                secrets: secrets.clone(),
                configs: vec![],
                constraints: constraints(&m.placement.workers, arch, Some(usize::from(k))),
                memory: m.memory.worker.as_deref().and_then(|t| super::manifest::memory_bytes(t).ok()),
                publish: None,
                health: Some(alive_probe()),
            });
        }
        external_secrets.sort_by(|a, b| a.1.cmp(&b.1));
        external_secrets.dedup_by(|a, b| a.1 == b.1);
        Spec {
            job,
            network: ("net".into(), !m.network.trusted_lan),
            volumes,
            configs,
            token_secret: TOKEN_SECRET.into(),
            external_secrets,
            services,
            store_url,
            overrides: Overrides::default(),
        }
    }

    /// The hash of a service's spec (with the names it resolves to), kept
    /// in [`HASH_LABEL`].
    pub fn hash(&self, s: &Service) -> String {
        format!("{:016x}", fnv1a(format!("{}|{s:?}|{:?}", self.job, self.network).as_bytes()))
    }
}

/// `rivulet health` with `args`, as a healthcheck's test.
fn probe(args: &[&str]) -> Vec<String> {
    exec_form(&[&["/usr/local/bin/rivulet", "health"], args].concat())
}

/// `argv` as a healthcheck's test in Docker's exec form.
fn exec_form(argv: &[&str]) -> Vec<String> {
    std::iter::once("CMD").chain(argv.iter().copied()).map(str::to_string).collect()
}

/// The healthcheck of a `mosquitto` broker: `mosquitto_sub` from its image
/// connects, subscribes, and exits 0 once the broker acknowledged the
/// subscription (`-E`); a broker that refuses or does not answer fails it.
fn mosquitto_probe() -> Vec<String> {
    let port = MQTT_PORT.to_string();
    exec_form(&["mosquitto_sub", "-h", "127.0.0.1", "-p", &port, "-i", "rivulet-health", "-t", "rivulet/health", "-E"])
}

/// The healthcheck of the coordinator and the workers: their liveness file.
fn alive_probe() -> Vec<String> {
    probe(&["--file", ALIVE_FILE, "--max-age", ALIVE_MAX_AGE])
}

fn constraints(r: &Role, arch: Option<&str>, slot: Option<usize>) -> Vec<String> {
    let mut c: Vec<String> = r.labels.iter().map(|(k, v)| format!("node.labels.{k} == {v}")).collect();
    if !r.hostnames.is_empty() {
        let h = &r.hostnames[slot.unwrap_or(0) % r.hostnames.len()];
        c.push(format!("node.hostname == {h}"));
    }
    if let Some(a) = arch {
        c.push(format!("node.platform.arch == {a}"));
    }
    c
}

/// The shipped Mosquitto config, listening on the container's interfaces.
pub fn mosquitto_conf() -> String {
    MOSQUITTO_CONF.replace("listener 1883 127.0.0.1", &format!("listener {MQTT_PORT} 0.0.0.0"))
}

/// FNV-1a 64: content hashes for names and change detection (not security).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const MANIFEST: &str = r#"
        [job]
        name = "sensors"
        workers = 3
        [checkpoint_store]
        kind = "volume"
        [broker]
        kind = "embedded"
        [images]
        amd64 = "rivulet:1-amd64"
        [ports]
        http = 9000
        http_token_secret = "sensors-http"
    "#;

    fn arg_after<'a>(s: &'a Service, flag: &str) -> &'a str {
        let i = s.command.iter().position(|a| a == flag).unwrap();
        &s.command[i + 1]
    }

    // Guards `rivulet scale`: the worker count changes, the parallelism
    // (the manifest's, here its worker count) does not; the coordinator's
    // hash changes with it, so a deploy sees the difference.
    #[test]
    fn a_worker_override_keeps_the_parallelism() {
        let m = Manifest::parse(MANIFEST).unwrap();
        let plain = Spec::of(&m);
        let scaled = Spec::with(&m, Overrides { workers: Some(5), ..Overrides::default() });
        let workers = |s: &Spec| s.services.iter().filter(|s| s.name.starts_with("worker-")).count();
        assert_eq!((workers(&plain), workers(&scaled)), (3, 5));
        let coord = |s: &Spec| s.services.iter().find(|s| s.name == "coordinator").unwrap().clone();
        assert_eq!(arg_after(&coord(&scaled), "--workers"), "5");
        assert_eq!(arg_after(&coord(&scaled), "--parallelism"), "3");
        assert_eq!(arg_after(&coord(&plain), "--http"), format!("0.0.0.0:{HTTP_PORT}"));
        assert_eq!(coord(&plain).publish, Some((9000, HTTP_PORT)));
        assert_ne!(plain.hash(&coord(&plain)), scaled.hash(&coord(&scaled)));
    }

    // Guards `rivulet upgrade`: the job's processes take the image, the
    // (in-memory, embedded) broker keeps the manifest's.
    #[test]
    fn an_image_override_leaves_the_broker() {
        let m = Manifest::parse(MANIFEST).unwrap();
        let up = Spec::with(&m, Overrides { image: Some("rivulet:2".into()), ..Overrides::default() });
        for s in &up.services {
            let want = if s.name == "broker" { "rivulet:1-amd64" } else { "rivulet:2" };
            assert_eq!(s.image, want, "{}", s.name);
        }
        assert_eq!(up.services.iter().find(|s| s.name == "worker-0").unwrap().env["RUST_LOG"], "info");
    }

    // Guards `rivulet rollback`: the coordinator gets `--rollback-to` (its
    // job arguments unchanged), every worker slot is started again, the
    // broker is left alone, and the worker count and image set before stay.
    #[test]
    fn a_rollback_restarts_the_coordinator_with_the_savepoint_and_the_slots() {
        let m = Manifest::parse(MANIFEST).unwrap();
        let before = Spec::with(&m, Overrides { workers: Some(4), ..Overrides::default() });
        let to = "/var/lib/rivulet/checkpoints/savepoints/1-1".to_string();
        let back =
            Spec::with(&m, Overrides { workers: Some(4), rollback_to: Some(to.clone()), ..Overrides::default() });
        assert_eq!(back.services.len(), before.services.len());
        for (a, b) in before.services.iter().zip(&back.services) {
            match a.name.as_str() {
                "coordinator" => {
                    assert_eq!(b.command[..a.command.len()], a.command[..]);
                    assert_eq!(b.command[a.command.len()..], ["--rollback-to".to_string(), to.clone()]);
                }
                "broker" => assert_eq!(a, b),
                w => assert_eq!(b.env["RIVULET_ROLLED_BACK_TO"], to, "{w}"),
            }
            assert_eq!(a.name == "broker", before.hash(a) == back.hash(b), "{}", a.name);
        }
        assert_eq!(back.overrides.workers, Some(4));
        assert_eq!(before.rolled_back_to(to.clone()).services, back.services);
    }

    // A `mosquitto` broker gets `mosquitto_sub` as its healthcheck unless
    // the manifest turns it off (an image without it would be replaced
    // again and again by Swarm).
    #[test]
    fn a_mosquitto_broker_is_checked_with_mosquitto_sub_unless_turned_off() {
        let broker = |extra: &str| {
            let text =
                MANIFEST.replace("kind = \"embedded\"", &format!("kind = \"mosquitto\"\nimage = \"m:1\"\n{extra}"));
            let m = Manifest::parse(&text).unwrap();
            Spec::of(&m).services.into_iter().find(|s| s.name == "broker").unwrap()
        };
        let checked = broker("");
        let test = checked.health.as_deref().unwrap();
        assert_eq!(&test[..2], ["CMD", "mosquitto_sub"]);
        assert_eq!(test[test.iter().position(|a| a == "-p").unwrap() + 1], MQTT_PORT.to_string());
        assert!(test.contains(&"-E".to_string()), "{test:?}");
        assert_eq!(broker("healthcheck = true").health, checked.health);
        assert_eq!(broker("healthcheck = false").health, None);
    }
}
