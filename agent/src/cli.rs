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
/// config (the message names the field), 3 a state directory was refused
/// (nothing in it was changed).
#[derive(Parser, Debug)]
#[command(version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the seed job (per-sensor 5 s average) on generated data and show
    /// the first results.
    Run(RunArgs),
    /// Write synthetic sensor readings as CSV (`sensor_id,ts_ms,temp_f`).
    Generate(GenerateArgs),
    /// Measure the seed job: events/s, peak RSS, checkpoint overhead.
    Bench(crate::bench::BenchArgs),
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
pub struct RunArgs {
    /// Generated readings to process.
    #[arg(long, default_value_t = 2_000_000)]
    pub events: u64,
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
}

pub fn exit_code(e: &anyhow::Error) -> u8 {
    match e.downcast_ref::<rivulet::Error>() {
        Some(rivulet::Error::StateRefused { .. }) => 3,
        Some(rivulet::Error::Config { .. }) => 2,
        _ => 1,
    }
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

pub fn run_seed(a: &RunArgs) -> anyhow::Result<()> {
    let tmp = tempfile_path("rivulet-run.csv");
    let output = a.output.clone().unwrap_or(tmp);
    let mut job = JobConfig::new("sensor-average-demo");
    job.parallelism = a.parallelism;
    job.state_dir = a.state_dir.clone();
    job.checkpoint_interval = parse_duration("--checkpoint-interval", &a.checkpoint_interval)?;
    let cfg = SensorAverage {
        input: Input::Synthetic {
            n: a.events,
            sensors: a.sensors,
        },
        output: output.clone(),
        window: std::time::Duration::from_secs(5),
        max_out_of_orderness: std::time::Duration::from_secs(2),
        dead_letter: None,
        publish: None,
        job,
    };
    println!(
        "rivulet: seed job on {} generated readings from {} sensors (°F → °C, key by sensor, 5 s tumbling average, watermark delay 2 s)",
        a.events, a.sensors
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
