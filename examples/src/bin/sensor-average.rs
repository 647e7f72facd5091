//! The seed job as a command: see `sensor-average --help`.

use clap::Parser;
use rivulet::time::parse_duration;
use rivulet::JobConfig;
use rivulet_examples::sensor::{run_sensor_average, Input, SensorAverage};
use std::path::PathBuf;
use std::process::ExitCode;

/// Per-sensor 5 s average temperature in °C from a CSV of °F readings,
/// with Flink's event-time semantics and exactly-once checkpoints.
///
/// Input lines: `sensor_id,ts_ms,temp_f`. Output lines:
/// `sensor_id,window_end_ms,avg_c,count`.
///
/// Exit codes: 0 done (or already done), 1 the job failed, 2 bad arguments,
/// 3 the state directory was refused (nothing was changed).
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Headerless CSV input.
    #[arg(long)]
    input: PathBuf,
    /// Output CSV (exactly once with --state-dir).
    #[arg(long)]
    output: PathBuf,
    /// Tumbling window size (e.g. 5s, 500ms).
    #[arg(long, default_value = "5s")]
    window: String,
    /// Watermark delay behind the largest timestamp seen.
    #[arg(long, default_value = "2s")]
    max_out_of_orderness: String,
    /// Parallel instances of the window operator.
    #[arg(long, default_value_t = 1)]
    parallelism: usize,
    /// Checkpoint here and resume from here after a crash; without it
    /// nothing but the output is written.
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Time between checkpoints.
    #[arg(long, default_value = "1s")]
    checkpoint_interval: String,
    /// Also write malformed input lines here.
    #[arg(long)]
    dead_letter: Option<PathBuf>,
    /// Memory for window state per instance, in MiB (the rest spills to disk).
    #[arg(long, default_value_t = 8)]
    state_cache_mb: usize,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sensor-average: {e:#}");
            let refused = e
                .downcast_ref::<rivulet::Error>()
                .is_some_and(|e| matches!(e, rivulet::Error::StateRefused { .. }));
            let config = e
                .downcast_ref::<rivulet::Error>()
                .is_some_and(|e| matches!(e, rivulet::Error::Config { .. }));
            ExitCode::from(if refused { 3 } else if config { 2 } else { 1 })
        }
    }
}

fn run(a: Args) -> anyhow::Result<()> {
    let mut job = JobConfig::new("sensor-average");
    job.parallelism = a.parallelism;
    job.state_dir = a.state_dir;
    job.checkpoint_interval = parse_duration("--checkpoint-interval", &a.checkpoint_interval)?;
    job.state_cache_bytes = a.state_cache_mb << 20;
    let cfg = SensorAverage {
        input: Input::Csv(a.input),
        output: a.output,
        window: parse_duration("--window", &a.window)?,
        max_out_of_orderness: parse_duration("--max-out-of-orderness", &a.max_out_of_orderness)?,
        dead_letter: a.dead_letter,
        job,
    };
    let out = run_sensor_average(&cfg)?;
    if out.already_finished {
        eprintln!("sensor-average: the job in this state directory already finished; output left as it is");
        return Ok(());
    }
    let m = out.metrics;
    eprintln!(
        "sensor-average: {} records in, {} rows out, {} late, {} malformed, {} checkpoints{} in {:.2?}",
        m.records_in,
        m.records_out,
        m.late,
        m.bad_input,
        out.checkpoints,
        out.resumed_from.map(|e| format!(" (resumed from epoch {e})")).unwrap_or_default(),
        out.elapsed
    );
    Ok(())
}
