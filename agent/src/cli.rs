//! Subcommands and their arguments.

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use rivulet::time::parse_duration;
use rivulet::JobConfig;
use rivulet_examples::sensor::{run_sensor_average, synthetic_reading, Input, SensorAverage};
use std::io::Write;
use std::path::PathBuf;

/// Rivulet: stateful stream processing for the edge.
///
/// Exit codes: 0 success, 1 the job or command failed, 2 bad arguments or
/// config (the message names the field), 3 a state directory was refused,
/// or a checkpoint to restore is not retained (nothing in it was changed).
#[derive(Parser, Debug)]
#[command(version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the seed job live: a broker (embedded unless --mqtt), a sensor
    /// simulator and sensor-average, with a refreshing view of window
    /// averages. `--generated` runs it on generated data instead.
    Run(RunArgs),
    /// Publish simulated sensor readings to an MQTT broker.
    Simulate(SimulateArgs),
    /// Write synthetic sensor readings as CSV (`sensor_id,ts_ms,temp_f`).
    Generate(GenerateArgs),
    /// Measure the seed job: events/s, peak RSS, checkpoint overhead.
    Bench(crate::bench::BenchArgs),
    /// List the retained checkpoints of a state directory (epoch and
    /// completion time), changing nothing in it.
    Checkpoints(CheckpointsArgs),
}

#[derive(Args, Debug)]
pub struct CheckpointsArgs {
    /// The job's state directory.
    #[arg(long)]
    pub state_dir: PathBuf,
}

#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// Number of readings.
    #[arg(long, default_value_t = 1_000_000)]
    pub lines: u64,
    /// Number of sensors.
    #[arg(long, default_value_t = 1000)]
    pub sensors: u32,
    /// Output file (`-` for stdout).
    #[arg(long, default_value = "-")]
    pub output: PathBuf,
}

#[derive(Args, Debug)]
pub struct SimulateArgs {
    /// Broker URL.
    #[arg(long, default_value = "mqtt://127.0.0.1:1883")]
    pub mqtt: String,
    /// Speak MQTT 3.1.1 instead of 5.
    #[arg(long)]
    pub mqtt_v311: bool,
    /// Number of sensors (topics `sensors/<id>/temp`).
    #[arg(long, default_value_t = 1000)]
    pub sensors: u32,
    /// Readings per second over all sensors.
    #[arg(long, default_value_t = 10_000.0)]
    pub rate: f64,
    /// Stop after this many readings (default: until Ctrl-C).
    #[arg(long)]
    pub count: Option<u64>,
    /// Share of readings stamped 10 s late.
    #[arg(long, default_value_t = 0.0)]
    pub late_fraction: f64,
    /// Share of readings with a malformed payload.
    #[arg(long, default_value_t = 0.0)]
    pub malformed_fraction: f64,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The previous quick start: the seed job over generated data in
    /// memory (no MQTT), printing the first results.
    #[arg(long)]
    pub generated: bool,
    /// Live: stop after this many readings were published (the stream
    /// ends 2 s after the last). With --generated: readings to process
    /// (default 2000000).
    #[arg(long)]
    pub events: Option<u64>,
    /// Live: stop after this long (e.g. 30s), with a final checkpoint.
    #[arg(long)]
    pub duration: Option<String>,
    /// Live: use this broker instead of the embedded one.
    #[arg(long)]
    pub mqtt: Option<String>,
    /// Live: readings per second from the simulator.
    #[arg(long, default_value_t = 2000.0)]
    pub rate: f64,
    /// Live: share of readings stamped 10 s late.
    #[arg(long, default_value_t = 0.001)]
    pub late_fraction: f64,
    /// Live: share of malformed readings (sent to the dead-letter topic).
    #[arg(long, default_value_t = 0.001)]
    pub malformed_fraction: f64,
    /// Number of sensors.
    #[arg(long, default_value_t = 100)]
    pub sensors: u32,
    /// Parallel window instances.
    #[arg(long, default_value_t = 2)]
    pub parallelism: usize,
    /// Results file (default: a temporary file).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Checkpoint to this directory.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Time between checkpoints.
    #[arg(long, default_value = "1s")]
    pub checkpoint_interval: String,
    /// Complete checkpoints kept restorable (1: only the last).
    #[arg(long, value_name = "N", default_value_t = rivulet::state::DEFAULT_RETAIN_CHECKPOINTS, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    pub retain_checkpoints: usize,
    /// Restore this retained checkpoint of --state-dir before running (see
    /// `rivulet checkpoints`).
    #[arg(long, value_name = "EPOCH", requires = "state_dir")]
    pub restore_checkpoint: Option<u64>,
    /// When results leave: `checkpoint`, `commit-on-output` or `eager` (see
    /// `sensor-average --help`). Default: commit-on-output live,
    /// checkpoint with --generated.
    #[arg(long)]
    pub output_mode: Option<String>,
    /// Least time between the end of a checkpoint and the next one started
    /// for new results (commit-on-output).
    #[arg(long, default_value = "5ms")]
    pub min_checkpoint_pause: String,
}

impl RunArgs {
    /// Output mode and minimum pause from the flags, `default` unless
    /// given; checkpoint retention and restore.
    pub fn output(&self, job: &mut JobConfig, default: rivulet::OutputMode) -> anyhow::Result<()> {
        job.store.retain_checkpoints = self.retain_checkpoints;
        job.restore_checkpoint = self.restore_checkpoint;
        job.min_checkpoint_pause = parse_duration("--min-checkpoint-pause", &self.min_checkpoint_pause)?;
        job.output_mode = match self.output_mode.as_deref() {
            Some(m) => m.parse()?,
            None => default,
        };
        Ok(())
    }
}

pub fn exit_code(e: &anyhow::Error) -> u8 {
    match e.downcast_ref::<rivulet::Error>() {
        Some(rivulet::Error::StateRefused { .. }) => 3,
        Some(rivulet::Error::Config { .. }) => 2,
        _ => 1,
    }
}

pub fn checkpoints(a: &CheckpointsArgs) -> anyhow::Result<()> {
    print!("{}", rivulet::state::Store::list_checkpoints(&a.state_dir)?);
    Ok(())
}

pub fn generate(a: &GenerateArgs) -> anyhow::Result<()> {
    let out: Box<dyn Write> = if a.output.as_os_str() == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(std::fs::File::create(&a.output).with_context(|| format!("creating {}", a.output.display()))?)
    };
    write_csv(out, a.lines, a.sensors)
}

/// Writes `lines` synthetic readings as CSV.
pub fn write_csv(out: impl Write, lines: u64, sensors: u32) -> anyhow::Result<()> {
    let mut w = std::io::BufWriter::with_capacity(1 << 20, out);
    for i in 0..lines {
        let r = synthetic_reading(i, sensors);
        writeln!(w, "{},{},{}", r.sensor_id, r.ts_ms, r.temp)?;
    }
    w.flush()?;
    Ok(())
}

pub fn simulate(a: &SimulateArgs) -> anyhow::Result<()> {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    let sim = rivulet_examples::publish::Simulation {
        url: a.mqtt.clone(),
        v311: a.mqtt_v311,
        sensors: a.sensors,
        rate: a.rate,
        count: a.count,
        late_fraction: a.late_fraction,
        malformed_fraction: a.malformed_fraction,
    };
    let n = rivulet_examples::publish::simulate(&sim, &stop)?;
    eprintln!("rivulet simulate: published {n} readings to {}", a.mqtt);
    Ok(())
}

pub fn run(a: &RunArgs) -> anyhow::Result<()> {
    if a.generated {
        run_seed(a)
    } else {
        crate::live::run_live(a)
    }
}

pub fn run_seed(a: &RunArgs) -> anyhow::Result<()> {
    let events = a.events.unwrap_or(2_000_000);
    let tmp = tempfile_path("rivulet-run.csv");
    let output = a.output.clone().unwrap_or(tmp);
    let mut job = JobConfig::new("sensor-average-demo");
    job.parallelism = a.parallelism;
    job.state_dir = a.state_dir.clone();
    job.checkpoint_interval = parse_duration("--checkpoint-interval", &a.checkpoint_interval)?;
    a.output(&mut job, rivulet::OutputMode::Checkpoint)?;
    let cfg = SensorAverage {
        input: Input::Synthetic { n: events, sensors: a.sensors },
        output: output.clone(),
        window: std::time::Duration::from_secs(5),
        max_out_of_orderness: std::time::Duration::from_secs(2),
        dead_letter: None,
        publish: None,
        job,
    };
    println!(
        "rivulet: seed job on {} generated readings from {} sensors (°F → °C, key by sensor, 5 s tumbling average, watermark delay 2 s)",
        events, a.sensors
    );
    let out = run_sensor_average(&cfg)?;
    let m = out.metrics;
    let secs = out.elapsed.as_secs_f64();
    println!(
        "processed {} events in {:.2} s ({:.2} M events/s); {} window results, {} late events dropped, {} checkpoints",
        m.records_in,
        secs,
        m.records_in as f64 / secs / 1e6,
        m.records_out,
        m.late,
        out.checkpoints
    );
    let text = std::fs::read_to_string(&output).with_context(|| format!("reading {}", output.display()))?;
    println!("first results (sensor_id,window_end_ms,avg_c,count) from {}:", output.display());
    for line in text.lines().take(8) {
        println!("  {line}");
    }
    Ok(())
}

fn tempfile_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("{}-{name}", std::process::id()))
}
