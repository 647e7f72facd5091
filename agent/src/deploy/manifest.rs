//! `rivulet.toml`: what runs where. Parsed with `deny_unknown_fields`, then
//! checked as a whole ([`Manifest::load`]); every problem is an [`Invalid`]
//! naming the field, and nothing has been touched when one is returned.

use crate::args::{mqtt_url, nonzero_duration};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// A manifest field and what is wrong with it (exit 2).
#[derive(Debug)]
pub struct Invalid {
    /// The field, as written in the manifest (`job.workers`).
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid {}: {}", self.field, self.reason)
    }
}

impl std::error::Error for Invalid {}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Invalid {
    Invalid { field: field.into(), reason: reason.into() }
}

/// A deployment manifest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The job and its cluster shape.
    pub job: Job,
    /// Where checkpoints go: shared by the coordinator and every worker.
    pub checkpoint_store: CheckpointStore,
    /// The MQTT broker the job reads (and publishes results to); none for
    /// a job that reads files only.
    pub broker: Option<Broker>,
    /// Which nodes run which role.
    #[serde(default)]
    pub placement: Placement,
    /// Memory limits per role (`64MiB`); none: unlimited.
    #[serde(default)]
    pub memory: Memory,
    /// The image per platform: `amd64`, `arm64`, `armv7`.
    pub images: BTreeMap<String, String>,
    /// The overlay network.
    #[serde(default)]
    pub network: Network,
    /// Ports published on the swarm's nodes.
    #[serde(default)]
    pub ports: Ports,
}

/// `[job]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Job {
    /// The job's name: prefix of every service, volume, network, config
    /// and secret it owns (the stack name of `docker stack`).
    pub name: String,
    /// The job binary in the image (`sensor-average`).
    #[serde(default = "default_binary")]
    pub binary: String,
    /// Worker slots (one service each, with its own state volume).
    pub workers: u16,
    /// Parallel instances of the job's operators (default: `workers`).
    pub parallelism: Option<u16>,
    /// `--checkpoint-interval` (`1s`, `500ms`).
    #[serde(default = "default_interval")]
    pub checkpoint_interval: String,
    /// How long a lost worker may take to come back (`--worker-timeout`).
    pub worker_timeout: Option<String>,
    /// The job's other flags (`--topic`, `--publish`, `--window`, ...).
    /// Flags the deployment sets itself are refused here.
    #[serde(default)]
    pub args: Vec<String>,
    /// Where the coordinator writes the results CSV (on the job's
    /// `output` volume).
    #[serde(default = "default_output")]
    pub output: String,
    /// What the coordinator and workers log (`RUST_LOG`): `info` shows
    /// every checkpoint (`rivulet logs`), `warn` only trouble.
    #[serde(default = "default_log")]
    pub log: String,
}

fn default_binary() -> String {
    "sensor-average".into()
}
fn default_interval() -> String {
    "1s".into()
}
fn default_log() -> String {
    "info".into()
}
fn default_output() -> String {
    format!("{OUTPUT_DIR}/results.csv")
}

/// Where the coordinator's output volume is mounted.
pub const OUTPUT_DIR: &str = "/var/lib/rivulet/output";

/// `[checkpoint_store]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointStore {
    /// `volume` (a named volume: one node, or a volume driver that shares
    /// it), `nfs` (an NFS export every node mounts) or `s3`.
    pub kind: StoreKind,
    /// `nfs`: the NFS server's address.
    pub server: Option<String>,
    /// `nfs`: the exported path.
    pub path: Option<String>,
    /// `nfs`: mount options (default `rw,nfsvers=4`).
    pub options: Option<String>,
    /// `s3`: `s3://bucket/prefix`.
    pub url: Option<String>,
    /// `s3`: the endpoint of an S3-compatible store (Garage, MinIO).
    pub endpoint: Option<String>,
    /// `s3`: the region (default `us-east-1`).
    pub region: Option<String>,
    /// `s3`: the access key id.
    pub access_key_id: Option<String>,
    /// `s3`: the Swarm secret holding the secret access key (created
    /// beforehand: `printf %s KEY | docker secret create NAME -`).
    pub secret: Option<String>,
}

/// Kinds of checkpoint store.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// A named Docker volume.
    Volume,
    /// An NFS export mounted through the local volume driver.
    Nfs,
    /// An S3-compatible object store.
    S3,
}

/// `[broker]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Broker {
    /// `embedded` (`rivulet broker` in the Rivulet image: MQTT 3.1.1, in
    /// memory, for trials), `mosquitto` (the config Rivulet ships and
    /// tests, in `image`) or `external` (`url`).
    pub kind: BrokerKind,
    /// `mosquitto`: its image (built or loaded on the nodes beforehand).
    pub image: Option<String>,
    /// `external`: `mqtt://host:port`.
    pub url: Option<String>,
    /// `mosquitto`: whether Swarm checks the broker with `mosquitto_sub`
    /// from its image (default true; the image `deploy/images/mosquitto.sh`
    /// builds and Eclipse's `eclipse-mosquitto` hold it). Set false for an
    /// image without `mosquitto_sub`, whose check would fail and have
    /// Swarm replace the broker again and again.
    pub healthcheck: Option<bool>,
}

/// Kinds of broker.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BrokerKind {
    /// `rivulet broker`.
    Embedded,
    /// Mosquitto with the shipped config.
    Mosquitto,
    /// A broker outside the swarm.
    External,
}

/// `[placement]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    /// The coordinator (default: on a manager).
    #[serde(default)]
    pub coordinator: Role,
    /// The worker slots.
    #[serde(default)]
    pub workers: Role,
    /// The broker.
    #[serde(default)]
    pub broker: Role,
}

/// Placement of one role.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Role {
    /// Node labels the node must have (`docker node update --label-add`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Hostnames: the role runs on one of them; worker slot K on
    /// `hostnames[K % len]`, which spreads the slots over the nodes.
    #[serde(default)]
    pub hostnames: Vec<String>,
    /// The platform of its nodes (a key of `[images]`); needed when
    /// `[images]` names more than one.
    pub platform: Option<String>,
}

/// `[memory]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Memory {
    /// The coordinator's limit.
    pub coordinator: Option<String>,
    /// Each worker's limit.
    pub worker: Option<String>,
    /// The broker's limit.
    pub broker: Option<String>,
}

/// `[network]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// The nodes' LAN is trusted: the overlay network is not encrypted
    /// (IPsec between nodes costs Pis CPU).
    #[serde(default)]
    pub trusted_lan: bool,
}

/// `[ports]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ports {
    /// Publish the broker's MQTT port (1883 in the container) on this port
    /// of every node, for sensors outside the swarm.
    pub broker: Option<u16>,
    /// Serve the coordinator's `--http` (metrics, JSON API, page) and
    /// publish it on this port of the node it runs on; `rivulet status -f`
    /// reads it there.
    pub http: Option<u16>,
    /// With `http`: the Swarm secret (one you made: `printf %s TOKEN |
    /// docker secret create NAME -`) holding the bearer token the
    /// coordinator's endpoint asks for; `rivulet status -f` is given the
    /// same token (`--http-token FILE` or RIVULET_HTTP_TOKEN).
    pub http_token_secret: Option<String>,
}

/// Platforms an image can be given for, with the `node.platform.arch`
/// Swarm reports for them.
pub const PLATFORMS: [(&str, &str); 3] = [("amd64", "x86_64"), ("arm64", "aarch64"), ("armv7", "armv7l")];

/// Flags the deployment sets on the job itself.
const RESERVED_FLAGS: [&str; 12] = [
    "--mqtt",
    "--mqtt-v311",
    "--listen",
    "--workers",
    "--checkpoint-store",
    "--parallelism",
    "--checkpoint-interval",
    "--cluster-token-file",
    "--state-dir",
    "--output",
    "--worker-timeout",
    "--input",
];

impl Manifest {
    /// Reads and checks the manifest at `path`.
    ///
    /// # Errors
    /// [`Invalid`] naming the field (the file itself for one that cannot be
    /// read or parsed).
    pub fn load(path: &Path) -> Result<Manifest, Invalid> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| invalid(path.display().to_string(), format!("cannot read it: {e}")))?;
        Manifest::parse(&text).map_err(|e| {
            if e.field.is_empty() {
                invalid(path.display().to_string(), e.reason)
            } else {
                e
            }
        })
    }

    /// Parses and checks a manifest's text.
    ///
    /// # Errors
    /// [`Invalid`] naming the field (an empty field: a TOML syntax error,
    /// whose reason says where).
    pub fn parse(text: &str) -> Result<Manifest, Invalid> {
        let m: Manifest = toml::from_str(text).map_err(|e| toml_error(&e))?;
        m.check()?;
        Ok(m)
    }

    /// The parallelism the job runs with.
    pub fn parallelism(&self) -> u16 {
        self.job.parallelism.unwrap_or(self.job.workers)
    }

    fn check(&self) -> Result<(), Invalid> {
        let j = &self.job;
        if !valid_name(&j.name) {
            return Err(invalid(
                "job.name",
                format!("`{}` must be 1 to 40 lowercase letters, digits or `-`, starting with a letter", j.name),
            ));
        }
        if j.binary.is_empty() || j.binary.contains('/') {
            return Err(invalid("job.binary", "the name of a binary in the image's /usr/local/bin"));
        }
        if !(1..=256).contains(&j.workers) {
            return Err(invalid("job.workers", format!("{} is outside 1..=256", j.workers)));
        }
        if self.parallelism() == 0 {
            return Err(invalid("job.parallelism", "must be at least 1"));
        }
        nonzero_duration(&j.checkpoint_interval).map_err(|e| invalid("job.checkpoint_interval", e))?;
        if let Some(t) = &j.worker_timeout {
            nonzero_duration(t).map_err(|e| invalid("job.worker_timeout", e))?;
        }
        for a in &j.args {
            let flag = a.split('=').next().unwrap_or(a);
            if RESERVED_FLAGS.contains(&flag) {
                return Err(invalid("job.args", format!("`{flag}` is set by the deployment from the manifest")));
            }
        }
        if !j.output.starts_with(&format!("{OUTPUT_DIR}/")) {
            return Err(invalid("job.output", format!("must be a file under {OUTPUT_DIR}/ (the job's output volume)")));
        }
        self.check_store()?;
        self.check_broker()?;
        self.check_images()?;
        for (role, m) in [
            ("coordinator", &self.memory.coordinator),
            ("worker", &self.memory.worker),
            ("broker", &self.memory.broker),
        ] {
            if let Some(m) = m {
                memory_bytes(m).map_err(|e| invalid(format!("memory.{role}"), e))?;
            }
        }
        if self.ports.broker == Some(0) {
            return Err(invalid("ports.broker", "0 is not a port"));
        }
        if self.ports.http == Some(0) {
            return Err(invalid("ports.http", "0 is not a port"));
        }
        match (&self.ports.http, &self.ports.http_token_secret) {
            (Some(_), None) => {
                return Err(invalid(
                    "ports.http_token_secret",
                    "required with ports.http: the endpoint is reached from outside the node, so it asks for a \
                     bearer token; name a Swarm secret holding it (`printf %s TOKEN | docker secret create NAME -`)",
                ))
            }
            (None, Some(_)) => return Err(invalid("ports.http_token_secret", "needs ports.http")),
            (Some(_), Some(n)) if n.trim().is_empty() => {
                return Err(invalid("ports.http_token_secret", "must name a Swarm secret"))
            }
            _ => {}
        }
        if self.ports.http.is_some() && self.ports.http == self.ports.broker {
            return Err(invalid("ports.http", "is the broker's port too"));
        }
        if self.ports.http.is_some() && j.args.iter().any(|a| a.split('=').next() == Some("--http")) {
            return Err(invalid("job.args", "`--http` is set by the deployment from ports.http"));
        }
        if j.log.trim().is_empty() {
            return Err(invalid("job.log", "must be a log filter such as `info` or `warn`"));
        }
        if self.ports.broker.is_some()
            && !matches!(self.broker.as_ref().map(|b| b.kind), Some(BrokerKind::Embedded | BrokerKind::Mosquitto))
        {
            return Err(invalid("ports.broker", "needs a [broker] of kind embedded or mosquitto in the swarm"));
        }
        Ok(())
    }

    fn check_store(&self) -> Result<(), Invalid> {
        let s = &self.checkpoint_store;
        let need = |v: &Option<String>, f: &str| -> Result<(), Invalid> {
            match v {
                Some(x) if !x.is_empty() => Ok(()),
                _ => Err(invalid(
                    format!("checkpoint_store.{f}"),
                    format!("required for kind = \"{}\"", kind_name(s.kind)),
                )),
            }
        };
        let refuse = |v: &Option<String>, f: &str| -> Result<(), Invalid> {
            match v {
                Some(_) => Err(invalid(
                    format!("checkpoint_store.{f}"),
                    format!("does not apply to kind = \"{}\"", kind_name(s.kind)),
                )),
                None => Ok(()),
            }
        };
        let nfs = [(&s.server, "server"), (&s.path, "path"), (&s.options, "options")];
        let s3 = [
            (&s.url, "url"),
            (&s.endpoint, "endpoint"),
            (&s.region, "region"),
            (&s.access_key_id, "access_key_id"),
            (&s.secret, "secret"),
        ];
        match s.kind {
            StoreKind::Volume => nfs.iter().chain(s3.iter()).try_for_each(|(v, f)| refuse(v, f)),
            StoreKind::Nfs => {
                s3.iter().try_for_each(|(v, f)| refuse(v, f))?;
                need(&s.server, "server")?;
                need(&s.path, "path")?;
                if !s.path.as_deref().unwrap_or("").starts_with('/') {
                    return Err(invalid("checkpoint_store.path", "must be an absolute path on the NFS server"));
                }
                Ok(())
            }
            StoreKind::S3 => {
                nfs.iter().try_for_each(|(v, f)| refuse(v, f))?;
                need(&s.url, "url")?;
                need(&s.access_key_id, "access_key_id")?;
                need(&s.secret, "secret")?;
                let url = s.url.as_deref().unwrap_or("");
                if url.strip_prefix("s3://").is_none_or(|b| b.is_empty()) {
                    return Err(invalid("checkpoint_store.url", format!("`{url}` is not s3://bucket[/prefix]")));
                }
                Ok(())
            }
        }
    }

    fn check_broker(&self) -> Result<(), Invalid> {
        let Some(b) = &self.broker else { return Ok(()) };
        match b.kind {
            BrokerKind::Embedded => {
                if b.image.is_some() || b.url.is_some() || b.healthcheck.is_some() {
                    return Err(invalid("broker", "kind = \"embedded\" takes neither image, url nor healthcheck"));
                }
            }
            BrokerKind::Mosquitto => {
                if b.image.as_deref().unwrap_or("").is_empty() {
                    return Err(invalid("broker.image", "required for kind = \"mosquitto\""));
                }
                if b.url.is_some() {
                    return Err(invalid("broker.url", "does not apply to kind = \"mosquitto\""));
                }
            }
            BrokerKind::External => {
                let url = b.url.as_deref().ok_or_else(|| invalid("broker.url", "required for kind = \"external\""))?;
                mqtt_url(url).map_err(|e| invalid("broker.url", e))?;
                if b.image.is_some() {
                    return Err(invalid("broker.image", "does not apply to kind = \"external\""));
                }
                if b.healthcheck.is_some() {
                    return Err(invalid("broker.healthcheck", "does not apply to kind = \"external\""));
                }
            }
        }
        Ok(())
    }

    fn check_images(&self) -> Result<(), Invalid> {
        if self.images.is_empty() {
            return Err(invalid("images", "give at least one, e.g. amd64 = \"rivulet:0.1.0-amd64\""));
        }
        for (p, image) in &self.images {
            if arch_of(p).is_none() {
                return Err(invalid(format!("images.{p}"), "unknown platform (amd64, arm64 or armv7)"));
            }
            if image.is_empty() || image.contains(char::is_whitespace) {
                return Err(invalid(format!("images.{p}"), format!("`{image}` is not an image reference")));
            }
        }
        for (role, r) in [
            ("coordinator", &self.placement.coordinator),
            ("workers", &self.placement.workers),
            ("broker", &self.placement.broker),
        ] {
            match &r.platform {
                Some(p) if !self.images.contains_key(p) => {
                    return Err(invalid(
                        format!("placement.{role}.platform"),
                        format!("`{p}` has no image in [images]"),
                    ))
                }
                None if self.images.len() > 1 => {
                    return Err(invalid(
                        format!("placement.{role}.platform"),
                        "required: [images] names several platforms, and a service runs one image",
                    ))
                }
                _ => {}
            }
            for (k, v) in &r.labels {
                if k.is_empty() || k.contains(char::is_whitespace) || v.contains(char::is_whitespace) {
                    return Err(invalid(
                        format!("placement.{role}.labels"),
                        format!("`{k} = {v}` is not a node label"),
                    ));
                }
            }
            if r.hostnames.iter().any(|h| h.is_empty() || h.contains(char::is_whitespace)) {
                return Err(invalid(format!("placement.{role}.hostnames"), "a hostname is empty or has spaces"));
            }
        }
        if self.placement.coordinator.hostnames.len() > 1 {
            return Err(invalid(
                "placement.coordinator.hostnames",
                "the coordinator runs on one node: give one hostname",
            ));
        }
        if self.placement.broker.hostnames.len() > 1 {
            return Err(invalid("placement.broker.hostnames", "the broker runs on one node: give one hostname"));
        }
        Ok(())
    }

    /// The image and `node.platform.arch` of a role.
    pub fn image_for(&self, role: &Role) -> (String, Option<&'static str>) {
        let (p, image) = match &role.platform {
            Some(p) => (p.as_str(), self.images.get(p).cloned().unwrap_or_default()),
            None => self.images.iter().next().map(|(p, i)| (p.as_str(), i.clone())).unwrap_or_default(),
        };
        (image, arch_of(p))
    }
}

fn kind_name(k: StoreKind) -> &'static str {
    match k {
        StoreKind::Volume => "volume",
        StoreKind::Nfs => "nfs",
        StoreKind::S3 => "s3",
    }
}

/// `node.platform.arch` of a platform key.
pub fn arch_of(platform: &str) -> Option<&'static str> {
    PLATFORMS.iter().find(|(p, _)| *p == platform).map(|(_, a)| *a)
}

/// A memory limit in bytes: at least 4 MiB (Docker's minimum is 6 MB).
///
/// # Errors
/// Not a size, or too small.
pub fn memory_bytes(text: &str) -> Result<u64, String> {
    let size: bytesize::ByteSize =
        text.trim().parse().map_err(|e| format!("`{text}` is not a size like 64MiB or 1GiB ({e})"))?;
    if size.as_u64() < 6 << 20 {
        return Err(format!("`{text}` is below Docker's minimum of 6MiB"));
    }
    Ok(size.as_u64())
}

fn valid_name(s: &str) -> bool {
    (1..=40).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// A TOML or serde error as [`Invalid`]: the field from serde's message
/// where it names one, the line and column always.
fn toml_error(e: &toml::de::Error) -> Invalid {
    let msg = e.message().to_string();
    let at = e.span().map(|_| e.to_string()).unwrap_or_default();
    let line = at.lines().next().unwrap_or("").trim_start_matches("TOML parse error ").to_string();
    let reason = if line.is_empty() { msg.clone() } else { format!("{msg} ({line})") };
    // `missing field `job``, `unknown field `foo`, expected ...`
    let field = msg.split('`').nth(1).filter(|_| msg.contains("field")).unwrap_or("").to_string();
    invalid(field, reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        [job]
        name = "sensors"
        workers = 3
        args = ["--topic", "sensors/{sensor_id}/temp"]
        [checkpoint_store]
        kind = "volume"
        [broker]
        kind = "embedded"
        [images]
        amd64 = "rivulet:0.1.0-amd64"
    "#;

    #[test]
    fn a_good_manifest_parses() {
        let m = Manifest::parse(GOOD).unwrap();
        assert_eq!(m.parallelism(), 3);
        assert_eq!(m.image_for(&m.placement.workers), ("rivulet:0.1.0-amd64".into(), Some("x86_64")));
    }

    fn err(text: &str) -> Invalid {
        Manifest::parse(text).unwrap_err()
    }

    // Guards issue 14: an unknown field, a missing job and a bad value are
    // refused naming the field.
    #[test]
    fn problems_name_the_field() {
        let e = err(&GOOD.replace("workers = 3", "workers = 3\nworkerz = 2"));
        assert!(e.reason.contains("unknown field `workerz`"), "{e}");
        assert_eq!(e.field, "workerz");
        let e = err(&GOOD.replace("[job]", "[jobs]"));
        assert!(e.to_string().contains("unknown field `jobs`"), "{e}");
        let e = err(&GOOD.replace("workers = 3", "workers = 0"));
        assert_eq!(e.field, "job.workers");
        let e = err(&GOOD.replace("\"--topic\"", "\"--mqtt\""));
        assert_eq!(e.field, "job.args");
        let e = err(&GOOD.replace("kind = \"volume\"", "kind = \"nfs\""));
        assert_eq!(e.field, "checkpoint_store.server");
        let e = err(&GOOD.replace("amd64 = ", "arm64 = \"x\"\namd64 = "));
        assert_eq!(e.field, "placement.coordinator.platform");
        let e = err(&GOOD.replace("[images]", "[memory]\nworker = \"1KiB\"\n[images]"));
        assert_eq!(e.field, "memory.worker");
        let e = err(&GOOD.replace("name = \"sensors\"", "name = \"Sensors\""));
        assert_eq!(e.field, "job.name");
        let e = err(&format!("{GOOD}\n[ports]\nhttp = 0\n"));
        assert_eq!(e.field, "ports.http");
        let e = err(&format!(
            "{}\n[ports]\nhttp = 9464\nhttp_token_secret = \"t\"\n",
            GOOD.replace("\"--topic\"", "\"--http\", \":1\", \"--topic\"")
        ));
        assert_eq!(e.field, "job.args");
        let e = err(&format!("{GOOD}\n[ports]\nhttp = 9464\n"));
        assert_eq!(e.field, "ports.http_token_secret");
        let e = err(&GOOD.replace("workers = 3", "workers = 3\nlog = \" \""));
        assert_eq!(e.field, "job.log");
        let external = "kind = \"external\"\nurl = \"mqtt://h:1883\"\nhealthcheck = true";
        let e = err(&GOOD.replace("kind = \"embedded\"", external));
        assert_eq!(e.field, "broker.healthcheck");
        let e = err(&GOOD.replace("kind = \"embedded\"", "kind = \"embedded\"\nhealthcheck = false"));
        assert_eq!(e.field, "broker");
    }

    // Guards that the example shipped in deploy/ stays valid.
    #[test]
    fn the_shipped_example_is_valid() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/rivulet.toml")).unwrap();
        Manifest::parse(&text).unwrap();
    }
}
