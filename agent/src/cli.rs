//! What `rivulet` accepts: the subcommands and their arguments. Parsing
//! only; `commands` acts. Every value is parsed and checked here, by clap,
//! before any command starts anything.

use clap::{Args, Parser, Subcommand};
use rivulet_agent::args::{
    fraction, http_addr, mqtt_url, nonzero_duration, positive_rate, state_cache_size, EngineArgs, DEFAULT_STATE_CACHE,
};
use std::path::PathBuf;
use std::time::Duration;

/// Rivulet: stateful stream processing for the edge.
///
/// Exit codes: 0 success, 1 the job or command failed, 2 bad arguments or
/// config (the message names the flag; nothing was started or created),
/// 3 a state directory was refused, or a checkpoint to restore is not
/// retained (nothing in it was changed), 4 `status` found no job (or
/// none is deployed), 5 `status -f`: a service has no task running.
#[derive(Parser, Debug)]
#[command(version, propagate_version = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Run the seed job live: a broker (embedded unless --mqtt), a sensor
    /// simulator and sensor-average, with a refreshing view of window
    /// averages. `--generated` runs it on generated data instead.
    Run(RunArgs),
    /// Publish simulated sensor readings to an MQTT broker.
    Simulate(SimulateArgs),
    /// Write synthetic sensor readings as CSV (`sensor_id,ts_ms,temp_f`).
    Generate(GenerateArgs),
    /// Measure the seed job: events/s, peak RSS, checkpoint overhead.
    Bench(BenchArgs),
    /// List the retained checkpoints of a state directory (epoch and
    /// completion time), changing nothing in it.
    Checkpoints(CheckpointsArgs),
    /// Show a running job (read from its --http endpoint's /api/v1/job);
    /// with -f, a deployed job's services and tasks on the Swarm, and the
    /// coordinator's view when its --http is published (ports.http) or at
    /// --url. Exit 4 when no job answers at the address or none is
    /// deployed; with -f, 5 when a service has no task running.
    Status(StatusArgs),
    /// Print the logs of a deployed job's tasks (all services, or one),
    /// each line prefixed with service.task@node.
    Logs(LogsArgs),
    /// Rescale a deployed job to N worker slots: a savepoint first, then
    /// the coordinator restarts with --workers N from the latest
    /// checkpoint, slots created or removed.
    Scale(ScaleArgs),
    /// Roll a deployed job's coordinator and worker slots to another image
    /// after a savepoint; the job resumes from the latest checkpoint.
    Upgrade(UpgradeArgs),
    /// Take a deployed job back to a savepoint `scale` or `upgrade` wrote
    /// (with --image: also back to that image): the coordinator restarts
    /// with --rollback-to, the savepoint's state becomes the job's next
    /// checkpoint, and the job processes again everything since (MQTT
    /// input from its pinned ingest log), publishing those results again.
    Rollback(RollbackArgs),
    /// Run a Flink SQL job: CREATE TABLE statements and one INSERT INTO
    /// (`EXPLAIN INSERT ...` prints the plan and runs nothing). A bad job
    /// exits 2 naming line and column. `sql coordinator` and `sql worker`
    /// run it on a cluster, as the seed job's roles do.
    Sql(SqlCommand),
    /// Print the Swarm stack (compose v3.8) of a deployment manifest, for
    /// `docker stack deploy -c - JOB`. A bad manifest exits 2 naming the field.
    Stack(StackArgs),
    /// Run an MQTT broker (rumqttd: MQTT 3.1.1, in memory) on ADDR until
    /// stopped: the `embedded` broker of a deployment, for trials (a
    /// message it resends after a reconnect looks new: use Mosquitto for
    /// exactly-once).
    Broker(BrokerArgs),
    /// Create or update the job of a deployment manifest on a Docker Swarm
    /// (the engine at DOCKER_HOST, a manager): network, cluster token,
    /// configs, broker, coordinator and one service per worker slot. Only
    /// what changed is updated. Exit 2: a bad manifest, no swarm manager, a
    /// placement no node fits or a port in use (nothing was created).
    Deploy(DeployArgs),
    /// Remove a deployed job's services, network and configs; volumes, the
    /// cluster token and the checkpoint store stay unless --purge.
    Down(DownArgs),
    /// Check a process of a job, as its container's healthcheck (the
    /// images have no shell): exit 0 when it is alive, 1 saying why not.
    Health(HealthArgs),
}

#[derive(Args, Debug)]
pub(crate) struct HealthArgs {
    /// The liveness file a coordinator or worker keeps (its --alive-file):
    /// alive when written within --max-age.
    #[arg(long, value_name = "PATH", required_unless_present = "mqtt", conflicts_with = "mqtt")]
    pub file: Option<PathBuf>,
    /// An MQTT broker (`HOST:PORT`): alive when it accepts a connection
    /// (CONNECT answered by a CONNACK accepting it) within --timeout.
    #[arg(long, value_name = "ADDR")]
    pub mqtt: Option<String>,
    /// How old the liveness file may be.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = nonzero_duration)]
    pub max_age: Duration,
    /// How long the broker may take to answer.
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = nonzero_duration)]
    pub timeout: Duration,
}

#[derive(Args, Debug)]
pub(crate) struct DeployArgs {
    /// The deployment manifest.
    #[arg(short = 'f', long = "file", value_name = "MANIFEST", default_value = "rivulet.toml")]
    pub file: PathBuf,
    /// Print what would be created or updated, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Args, Debug)]
pub(crate) struct DownArgs {
    /// The deployment manifest (for the job's name).
    #[arg(short = 'f', long = "file", value_name = "MANIFEST", default_value = "rivulet.toml")]
    pub file: PathBuf,
    /// Also remove the job's volumes on this node (worker state, output, a
    /// volume checkpoint store) and its cluster token.
    #[arg(long)]
    pub purge: bool,
}

#[derive(Args, Debug)]
pub(crate) struct StackArgs {
    /// The deployment manifest.
    #[arg(short = 'f', long = "file", value_name = "MANIFEST", default_value = "rivulet.toml")]
    pub file: PathBuf,
    /// Print the content of this config of the stack instead (to create it
    /// with `docker config create NAME -`).
    #[arg(long, value_name = "NAME")]
    pub config: Option<String>,
}

#[derive(Args, Debug)]
pub(crate) struct BrokerArgs {
    /// Where to accept MQTT connections.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:1883")]
    pub listen: std::net::SocketAddr,
}

#[derive(Args, Debug)]
pub(crate) struct LogsArgs {
    /// The deployment manifest (for the job's name).
    #[arg(short = 'f', long = "file", value_name = "MANIFEST", default_value = "rivulet.toml")]
    pub file: PathBuf,
    /// One service (`coordinator`, `worker-0`, `broker`); all when left out.
    #[arg(value_name = "SERVICE")]
    pub service: Option<String>,
    /// The last N lines of each task.
    #[arg(long, value_name = "N")]
    pub tail: Option<u64>,
    /// Keep printing what is written, by the running tasks and the ones Swarm
    /// starts later, until interrupted.
    #[arg(long)]
    pub follow: bool,
}

#[derive(Args, Debug)]
pub(crate) struct ScaleArgs {
    /// The deployment manifest.
    #[arg(short = 'f', long = "file", value_name = "MANIFEST", default_value = "rivulet.toml")]
    pub file: PathBuf,
    /// Worker slots (1..=256).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: u16,
}

#[derive(Args, Debug)]
pub(crate) struct UpgradeArgs {
    /// The deployment manifest.
    #[arg(short = 'f', long = "file", value_name = "MANIFEST", default_value = "rivulet.toml")]
    pub file: PathBuf,
    /// The image for the coordinator and the worker slots (every
    /// node must have it: `docker load` or a registry).
    #[arg(long, value_name = "IMAGE")]
    pub image: String,
}

#[derive(Args, Debug)]
pub(crate) struct RollbackArgs {
    /// The deployment manifest.
    #[arg(short = 'f', long = "file", value_name = "MANIFEST", default_value = "rivulet.toml")]
    pub file: PathBuf,
    /// The savepoint, as `scale`/`upgrade` printed it (on the checkpoint
    /// store's volume as the containers see it, `file:///var/lib/rivulet/
    /// checkpoints/savepoints/...`, or an S3 URL).
    #[arg(long, value_name = "PATH|URL")]
    pub to: String,
    /// Also roll the coordinator and the worker slots to this image.
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
}

#[derive(Args, Debug)]
pub(crate) struct StatusArgs {
    /// A deployment manifest: show the job's services and tasks on the
    /// Swarm (the engine at DOCKER_HOST), then the coordinator's view.
    #[arg(short = 'f', long = "file", value_name = "MANIFEST")]
    pub file: Option<PathBuf>,
    /// The job's --http address (IP:PORT or a port on 127.0.0.1).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9464", value_parser = http_addr)]
    pub http: std::net::SocketAddr,
    /// The job's endpoint as a URL, `http://HOST:PORT/` (a single process,
    /// a cluster's coordinator or a worker); overrides --http.
    #[arg(long, value_name = "URL", value_parser = rivulet_agent::args::http_url, conflicts_with = "http")]
    pub url: Option<std::net::SocketAddr>,
    /// A file whose first line is the endpoint's bearer token (or the
    /// RIVULET_HTTP_TOKEN environment variable).
    #[arg(long, value_name = "FILE")]
    pub http_token: Option<PathBuf>,
    /// Print the job's JSON document as it came.
    #[arg(long)]
    pub json: bool,
}

/// `rivulet sql`: the job in one process, or a role of it on a cluster.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub(crate) struct SqlCommand {
    #[command(subcommand)]
    pub role: Option<SqlRole>,
    #[command(flatten)]
    pub job: SqlArgs,
}

/// A role of an SQL job in a cluster.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum SqlRole {
    /// Coordinates the job across worker slots (runs no task itself):
    /// reads the SQL file and hands its text and the engine flags to the
    /// workers; checkpoints into the shared store. No --state-dir.
    Coordinator {
        #[command(flatten)]
        cluster: rivulet_agent::args::cluster::CoordinatorArgs,
        #[command(flatten)]
        job: Box<SqlArgs>,
    },
    /// Runs the subtasks the coordinator places on this slot.
    Worker {
        #[command(flatten)]
        worker: rivulet_agent::args::cluster::WorkerArgs,
    },
    /// Asks the coordinator for a savepoint of the job's latest complete
    /// checkpoint.
    Savepoint {
        #[command(flatten)]
        savepoint: rivulet_agent::args::cluster::SavepointArgs,
    },
}

#[derive(Args, Debug)]
pub(crate) struct SqlArgs {
    /// The job's SQL file.
    #[arg(short = 'f', long = "file", value_name = "JOB.sql", required = true)]
    pub file: Option<PathBuf>,
    /// Print the plan and exit, as `EXPLAIN` in the file does.
    #[arg(long)]
    pub explain: bool,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// Sensors: at least one (readings are spread over them).
/// Readings per MQTT message: up to 1,000 (far below the 256 KiB payload limit).
fn batch() -> clap::builder::RangedU64ValueParser<u64> {
    clap::builder::RangedU64ValueParser::<u64>::new().range(1..=1000)
}

fn sensors() -> clap::builder::RangedU64ValueParser<u32> {
    clap::builder::RangedU64ValueParser::<u32>::new().range(1..=u64::from(u32::MAX))
}

#[derive(Args, Debug)]
pub(crate) struct CheckpointsArgs {
    /// The job's state directory.
    #[arg(long)]
    pub state_dir: PathBuf,
}

#[derive(Args, Debug)]
pub(crate) struct GenerateArgs {
    /// Number of readings.
    #[arg(long, default_value_t = 1_000_000)]
    pub lines: u64,
    /// Number of sensors.
    #[arg(long, default_value_t = 1000, value_parser = sensors())]
    pub sensors: u32,
    /// Output file (`-` for stdout).
    #[arg(long, default_value = "-")]
    pub output: PathBuf,
}

#[derive(Args, Debug)]
pub(crate) struct SimulateArgs {
    /// Broker URL (`mqtt://host:port`).
    #[arg(long, default_value = "mqtt://127.0.0.1:1883", value_parser = mqtt_url)]
    pub mqtt: String,
    /// Speak MQTT 3.1.1 instead of 5.
    #[arg(long)]
    pub mqtt_v311: bool,
    /// Number of sensors (topics `sensors/<id>/temp`).
    #[arg(long, default_value_t = 1000, value_parser = sensors())]
    pub sensors: u32,
    /// Readings per second over all sensors.
    #[arg(long, default_value_t = 10_000.0, value_parser = positive_rate)]
    pub rate: f64,
    /// Stop after this many readings (default: until Ctrl-C).
    #[arg(long)]
    pub count: Option<u64>,
    /// Share of readings stamped 10 s late (0 to 1).
    #[arg(long, default_value_t = 0.0, value_parser = fraction)]
    pub late_fraction: f64,
    /// Share of readings with a malformed payload (0 to 1).
    #[arg(long, default_value_t = 0.0, value_parser = fraction)]
    pub malformed_fraction: f64,
    /// Readings per message: N > 1 publishes each sensor's next N readings
    /// as one JSON array (1: one JSON object per message).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = batch())]
    pub batch: u64,
}

/// `rivulet run --parallelism` when not given.
pub(crate) const RUN_PARALLELISM: usize = 2;

#[derive(Args, Debug)]
pub(crate) struct RunArgs {
    /// The seed job over generated data in memory (no MQTT, no simulator):
    /// prints throughput and the first results.
    #[arg(long)]
    pub generated: bool,
    /// Live: stop after this many readings were published (the stream
    /// ends 2 s after the last). With --generated: readings to process
    /// (default 2000000).
    #[arg(long)]
    pub events: Option<u64>,
    /// Live: stop after this long (e.g. 30s), with a final checkpoint.
    #[arg(long, value_name = "DURATION", value_parser = nonzero_duration)]
    pub duration: Option<Duration>,
    /// Live: use this broker (`mqtt://host:port`) instead of the embedded one.
    #[arg(long, value_parser = mqtt_url)]
    pub mqtt: Option<String>,
    /// Live: readings per second from the simulator.
    #[arg(long, default_value_t = 2000.0, value_parser = positive_rate)]
    pub rate: f64,
    /// Live: share of readings stamped 10 s late (0 to 1).
    #[arg(long, default_value_t = 0.001, value_parser = fraction)]
    pub late_fraction: f64,
    /// Live: share of malformed readings, sent to the dead-letter topic (0 to 1).
    #[arg(long, default_value_t = 0.001, value_parser = fraction)]
    pub malformed_fraction: f64,
    /// Number of sensors.
    #[arg(long, default_value_t = 100, value_parser = sensors())]
    pub sensors: u32,
    /// Results file (default: a temporary file).
    #[arg(long)]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Args, Debug)]
pub(crate) struct BenchArgs {
    /// Readings to process.
    #[arg(long, default_value_t = 10_000_000)]
    pub events: u64,
    /// Number of sensors.
    #[arg(long, default_value_t = 1000, value_parser = sensors())]
    pub sensors: u32,
    /// Parallel window instances.
    #[arg(long, default_value_t = 1, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=u64::from(rivulet::key::DEFAULT_KEY_GROUPS)))]
    pub parallelism: usize,
    /// What to measure.
    #[arg(long, value_enum, default_value_t = BenchMode::Csv)]
    pub mode: BenchMode,
    /// Reuse this CSV instead of generating one.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// `--mode mqtt`: use this broker (`mqtt://host:port`) instead of
    /// starting a Mosquitto.
    #[arg(long, value_parser = mqtt_url)]
    pub mqtt: Option<String>,
    /// `--mode mqtt`: publisher connections sending the readings (one
    /// client's QoS 1 pipeline is slower than the broker).
    #[arg(long, default_value_t = 1, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1024))]
    pub publishers: usize,
    /// `--mode mqtt`: readings per second over all publishers (0: as fast
    /// as they go). Below the broker's ceiling the result delay is the
    /// engine's, not the broker's queue.
    #[arg(long, default_value_t = 0.0, value_parser = non_negative_rate)]
    pub rate: f64,
    /// `--mode mqtt`: readings per message (each sensor's next N readings
    /// as one JSON array; 1: one JSON object per message).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = batch())]
    pub batch: u64,
    /// `--mode csv-checkpoint`: complete checkpoints kept restorable (1:
    /// only the last).
    #[arg(long, value_name = "N", default_value_t = rivulet::state::DEFAULT_RETAIN_CHECKPOINTS, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    pub retain_checkpoints: usize,
    /// `--mode csv-checkpoint`: memory for keyed state per window instance
    /// (as `rivulet run --state-cache`, whose default it shares).
    #[arg(long, value_name = "SIZE", default_value = DEFAULT_STATE_CACHE.as_str(), value_parser = state_cache_size)]
    pub state_cache: usize,
    /// Memory, csv, csv-checkpoint: serve the job's HTTP endpoint here
    /// while it runs (metrics, API, result tap), to measure its cost.
    #[arg(long, value_name = "ADDR", value_parser = http_addr)]
    pub http: Option<std::net::SocketAddr>,
    /// Repetitions; the median is reported.
    #[arg(long, default_value_t = 3, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1000))]
    pub runs: usize,
}

/// What `rivulet bench` measures.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BenchMode {
    /// The generator, in memory.
    Memory,
    /// A generated CSV file.
    Csv,
    /// A CSV file with checkpoints every second into a temporary state dir.
    CsvCheckpoint,
    /// End to end through a local Mosquitto, exactly once, against a plain
    /// QoS 1 subscriber.
    Mqtt,
}

impl BenchMode {
    /// The spelling on the command line.
    pub(crate) fn name(self) -> &'static str {
        match self {
            BenchMode::Memory => "memory",
            BenchMode::Csv => "csv",
            BenchMode::CsvCheckpoint => "csv-checkpoint",
            BenchMode::Mqtt => "mqtt",
        }
    }
}

/// A rate of 0 (unpaced) or more.
fn non_negative_rate(text: &str) -> Result<f64, String> {
    if text.trim().parse::<f64>().is_ok_and(|v| v == 0.0) {
        return Ok(0.0);
    }
    positive_rate(text)
}
