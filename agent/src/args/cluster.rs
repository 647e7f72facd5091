//! The flags of the two cluster roles every job binary has
//! (`JOB coordinator ...`, `JOB worker ...`), and the job arguments the
//! coordinator hands its workers.

use super::duration::nonzero_duration;
use clap::Args;
use rivulet::net::ClusterToken;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// `coordinator`: runs no task; places the job's subtasks on the worker
/// slots, coordinates checkpoints into the checkpoint store, publishes the
/// results, and restarts the job from the latest checkpoint when a worker
/// is lost.
#[derive(Args, Debug, Clone)]
pub struct CoordinatorArgs {
    /// Where workers connect (`HOST:PORT`).
    #[arg(long, value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Worker slots of the job (`0..N`).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: u16,
    /// The checkpoint store shared by all nodes: `file:///abs/path` (a
    /// shared volume or NFS mount) or `s3://bucket/prefix` (builds with the
    /// `s3` feature).
    #[arg(long, value_name = "URL")]
    pub checkpoint_store: String,
    /// How long a lost worker slot may take to come back before the job
    /// goes on without it (its key groups move to the others).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = nonzero_duration)]
    pub worker_timeout: Duration,
    /// The cluster's shared secret (e.g. a Swarm secret); workers must
    /// hold the same. May be left out only on loopback.
    #[arg(long, value_name = "PATH")]
    pub cluster_token_file: Option<PathBuf>,
    /// Start from this savepoint (a directory or store URL written by
    /// `savepoint --to`) when the checkpoint store holds no checkpoint of
    /// the job yet; later starts resume from the checkpoint store.
    #[arg(long, value_name = "PATH|URL", value_parser = store_url)]
    pub from_savepoint: Option<String>,
    /// Go back to this savepoint (a directory or store URL written by
    /// `savepoint --to`) before starting: its state and input positions
    /// become the job's next checkpoint in the store, so the job processes
    /// again everything since the savepoint (MQTT input included: a
    /// savepoint pins the ingest log) and publishes its results again.
    /// Done once per savepoint; later starts with the flag resume from the
    /// store. The running coordinator, if any, is fenced off.
    #[arg(long, value_name = "PATH|URL", value_parser = existing_store_url, conflicts_with = "from_savepoint")]
    pub rollback_to: Option<String>,
    /// How long a savepoint's checkpoint stays pinned: the job's MQTT
    /// sources keep their ingest logs (on the worker and in the store)
    /// from it on, so `--rollback-to` it replays every message since; the
    /// newest 2 savepoints are pinned. `0s` pins nothing (a rollback of an
    /// MQTT job is then refused).
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = super::duration::duration)]
    pub pin_savepoints: Duration,
    /// Keep a liveness file here: the control loop writes the time into
    /// it every second, and `rivulet health --file PATH` fails when it
    /// stops (a container's healthcheck; `/dev/shm` keeps it in memory).
    #[arg(long, value_name = "PATH")]
    pub alive_file: Option<PathBuf>,
}

/// `savepoint`: asks a running coordinator for a full, portable copy of the
/// job's latest complete checkpoint.
#[derive(Args, Debug, Clone)]
pub struct SavepointArgs {
    /// The coordinator's address (`HOST:PORT`).
    #[arg(long, value_name = "ADDR")]
    pub coordinator: String,
    /// Where to write it: a directory (created if missing; must hold no
    /// checkpoint of the job) or a store URL.
    #[arg(long, value_name = "PATH|URL", value_parser = store_url)]
    pub to: String,
    /// The cluster's shared secret.
    #[arg(long, value_name = "PATH")]
    pub cluster_token_file: Option<PathBuf>,
}

/// A checkpoint store given as a URL (`file://`, `s3://`) or a directory
/// path (made absolute; created if missing).
///
/// # Errors
/// The directory cannot be created or resolved.
pub fn store_url(s: &str) -> Result<String, String> {
    if s.contains("://") {
        return Ok(s.to_owned());
    }
    std::fs::create_dir_all(s).map_err(|e| format!("{s}: {e}"))?;
    existing_store_url(s)
}

/// A savepoint given as a URL or an existing directory (made absolute).
///
/// # Errors
/// The directory does not exist.
pub fn existing_store_url(s: &str) -> Result<String, String> {
    if s.contains("://") {
        return Ok(s.to_owned());
    }
    let abs = std::fs::canonicalize(s).map_err(|e| format!("{s}: {e}"))?;
    Ok(format!("file://{}", abs.display()))
}

/// Prints how a coordinator's run ended, as `PROGRAM: ...` on stderr.
pub fn report(program: &str, out: &rivulet::cluster::ClusterOutcome) {
    if let Some(r) = &out.rolled_back {
        if r.already {
            eprintln!("{program}: already rolled back to this savepoint (as epoch {}): not again", r.at.epoch);
        } else {
            eprintln!(
                "{program}: rolled back from epoch {} to the savepoint of epoch {}, as epoch {} ({} keys set, {} deleted)",
                r.from.epoch, r.savepoint.epoch, r.at.epoch, r.set, r.deleted
            );
        }
    }
    if out.already_finished {
        eprintln!("{program}: the job in this checkpoint store already finished; its output is complete");
    } else {
        eprintln!(
            "{program}: finished at epoch {} after {} checkpoints in {} generation(s)",
            out.finished_at.epoch, out.checkpoints, out.generations
        );
    }
}

/// `worker`: runs the subtasks the coordinator places on its slot.
#[derive(Args, Debug, Clone)]
pub struct WorkerArgs {
    /// The coordinator's address (`HOST:PORT`, resolved again at every
    /// attempt).
    #[arg(long, value_name = "ADDR")]
    pub coordinator: String,
    /// This worker's slot, `0..N`: its identity across restarts.
    #[arg(long, value_name = "K")]
    pub slot: u16,
    /// Node-local state (a cache of the checkpoint store; may be lost).
    #[arg(long, value_name = "DIR")]
    pub state_dir: PathBuf,
    /// Where to listen for the other workers' data links.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// The address other workers dial (default: the bound --listen
    /// address), e.g. the container's name on an overlay network.
    #[arg(long, value_name = "HOST:PORT")]
    pub advertise: Option<String>,
    /// The cluster's shared secret; the coordinator's must match.
    #[arg(long, value_name = "PATH")]
    pub cluster_token_file: Option<PathBuf>,
    /// Serve this worker's own Prometheus metrics and JSON API on
    /// `HOST:PORT` (or a port on 127.0.0.1); the coordinator's --http
    /// serves the whole job. A non-loopback address needs --http-token.
    #[arg(long, value_name = "ADDR", value_parser = super::http::http_addr)]
    pub http: Option<SocketAddr>,
    /// A file whose first line is the bearer token for --http (or set
    /// RIVULET_HTTP_TOKEN).
    #[arg(long, value_name = "FILE", requires = "http")]
    pub http_token: Option<PathBuf>,
    /// Keep a liveness file here: the control loop writes the time into
    /// it every second, and `rivulet health --file PATH` fails when it
    /// stops (a container's healthcheck; `/dev/shm` keeps it in memory).
    #[arg(long, value_name = "PATH")]
    pub alive_file: Option<PathBuf>,
}

impl WorkerArgs {
    /// The worker's HTTP endpoint settings, or `None` without `--http`.
    ///
    /// # Errors
    /// [`rivulet::Error::Config`] naming `--http-token`.
    pub fn http_config(&self) -> Result<Option<super::HttpConfig>, rivulet::Error> {
        let Some(addr) = self.http else { return Ok(None) };
        super::http::resolve(addr, self.http_token.as_deref(), Duration::ZERO).map(Some)
    }
}

/// The cluster token from `--cluster-token-file`, if given.
///
/// # Errors
/// The file is unreadable or empty (named, never quoted).
pub fn cluster_token(path: Option<&PathBuf>) -> rivulet::Result<Option<ClusterToken>> {
    path.map(|p| ClusterToken::from_file(p)).transpose()
}

/// Credentials of an S3 checkpoint store that may come from files (Swarm
/// secrets): `VAR_FILE=/run/secrets/x` sets `VAR` to the file's first line.
const SECRET_FILE_VARS: [&str; 2] = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"];

/// Sets each of the S3 credential variables that is unset from its
/// `_FILE` variant, if given. Call it before any thread starts.
///
/// # Errors
/// A `_FILE` names a file that cannot be read (named, never quoted).
pub fn credentials_from_files() -> rivulet::Result<()> {
    for var in SECRET_FILE_VARS {
        if std::env::var_os(var).is_some() {
            continue;
        }
        let Some(path) = std::env::var_os(format!("{var}_FILE")) else { continue };
        let text = std::fs::read_to_string(&path).map_err(|e| rivulet::Error::Config {
            field: "checkpoint_store",
            reason: format!("cannot read {var}_FILE `{}`: {e}", PathBuf::from(&path).display()),
        })?;
        std::env::set_var(var, text.lines().next().unwrap_or("").trim());
    }
    Ok(())
}

/// Flags of the coordinator role that take a value: what is left of its
/// command line is the job's arguments, sent to the workers. The HTTP
/// endpoint's flags are the coordinator's own too.
const COORDINATOR_FLAGS: [&str; 12] = [
    "--listen",
    "--workers",
    "--checkpoint-store",
    "--worker-timeout",
    "--cluster-token-file",
    "--from-savepoint",
    "--rollback-to",
    "--pin-savepoints",
    "--http",
    "--http-token",
    "--http-linger",
    "--alive-file",
];

/// The job's arguments from the arguments after `coordinator`: the
/// coordinator's own flags (`--flag VALUE` and `--flag=VALUE`) removed.
pub fn job_args(after_role: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut it = after_role.iter();
    while let Some(a) = it.next() {
        if COORDINATOR_FLAGS.contains(&a.as_str()) {
            it.next();
        } else if !COORDINATOR_FLAGS.iter().any(|f| a.starts_with(&format!("{f}="))) {
            out.push(a.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_args_drop_the_coordinators_flags() {
        let argv: Vec<String> = [
            "--listen",
            "127.0.0.1:7000",
            "--input",
            "in.csv",
            "--workers=3",
            "--checkpoint-store",
            "file:///x",
            "--output",
            "out.csv",
            "--alive-file=/dev/shm/alive",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(job_args(&argv), ["--input", "in.csv", "--output", "out.csv"]);
    }
}
