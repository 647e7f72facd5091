//! `rivulet bench`: the seed job end to end, with events/s, peak RSS and
//! the cost of checkpointing.

use crate::cli::write_csv;
use anyhow::Context;
use clap::Args;
use rivulet::JobConfig;
use rivulet_examples::sensor::{run_sensor_average, Input, SensorAverage};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Readings to process.
    #[arg(long, default_value_t = 10_000_000)]
    pub events: u64,
    /// Number of sensors.
    #[arg(long, default_value_t = 1000)]
    pub sensors: u32,
    /// Parallel window instances.
    #[arg(long, default_value_t = 1)]
    pub parallelism: usize,
    /// `memory` (generator), `csv` (a generated file), `csv-checkpoint`
    /// (a file with checkpoints every second into a temporary state dir),
    /// or `mqtt` (end to end through a local Mosquitto, exactly-once, vs. a
    /// plain QoS 1 subscriber).
    #[arg(long, default_value = "csv")]
    pub mode: String,
    /// Reuse this CSV instead of generating one.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// `--mode mqtt`: use this broker instead of starting a Mosquitto.
    #[arg(long)]
    pub mqtt: Option<String>,
    /// `--mode mqtt`: publisher connections sending the readings (one
    /// client's QoS 1 pipeline is slower than the broker).
    #[arg(long, default_value_t = 1)]
    pub publishers: usize,
    /// `--mode mqtt`: readings per second over all publishers (0: as fast
    /// as they go). Below the broker's ceiling the result delay is the
    /// engine's, not the broker's queue.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// `--mode csv-checkpoint`: complete checkpoints kept restorable (1:
    /// only the last, no undo records).
    #[arg(long, value_name = "N", default_value_t = rivulet::state::DEFAULT_RETAIN_CHECKPOINTS, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    pub retain_checkpoints: usize,
    /// Repetitions; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
}

pub fn run(a: &BenchArgs) -> anyhow::Result<()> {
    if a.mode == "mqtt" {
        return crate::bench_mqtt::run(a);
    }
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let input = match (&a.input, a.mode.as_str()) {
        (_, "memory") => None,
        (Some(p), _) => Some(p.clone()),
        (None, "csv" | "csv-checkpoint") => {
            let p = dir.path().join("input.csv");
            eprintln!("generating {} readings into {} ...", a.events, p.display());
            write_csv(std::fs::File::create(&p)?, a.events, a.sensors)?;
            Some(p)
        }
        (None, m) => anyhow::bail!("unknown --mode {m} (use memory, csv or csv-checkpoint)"),
    };
    let mut rates = Vec::new();
    for run in 0..a.runs.max(1) {
        let mut job = JobConfig::new("bench");
        job.parallelism = a.parallelism;
        if a.mode == "csv-checkpoint" {
            job.state_dir = Some(dir.path().join(format!("state-{run}")));
            job.checkpoint_interval = Duration::from_secs(1);
            job.store.retain_checkpoints = a.retain_checkpoints;
        }
        let cfg = SensorAverage {
            input: match &input {
                Some(p) => Input::Csv(p.clone()),
                None => Input::Synthetic { n: a.events, sensors: a.sensors },
            },
            output: dir.path().join("out.csv"),
            window: Duration::from_secs(5),
            max_out_of_orderness: Duration::from_secs(2),
            dead_letter: None,
            publish: None,
            job,
        };
        let out = run_sensor_average(&cfg)?;
        let rate = out.metrics.records_in as f64 / out.elapsed.as_secs_f64();
        eprintln!(
            "run {}: {} events in {:.3} s = {:.2} M events/s, {} checkpoints",
            run + 1,
            out.metrics.records_in,
            out.elapsed.as_secs_f64(),
            rate / 1e6,
            out.checkpoints
        );
        rates.push(rate);
    }
    rates.sort_by(f64::total_cmp);
    let median = rates[rates.len() / 2];
    println!(
        "bench mode={}{} events={} sensors={} parallelism={}: median {:.2} M events/s, peak RSS {:.1} MiB",
        a.mode,
        if a.mode == "csv-checkpoint" { format!(" retain={}", a.retain_checkpoints) } else { String::new() },
        a.events,
        a.sensors,
        a.parallelism,
        median / 1e6,
        peak_rss_kib() as f64 / 1024.0
    );
    Ok(())
}

/// Peak resident set size of this process (VmHWM), in KiB.
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}
