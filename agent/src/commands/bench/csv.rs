//! `rivulet bench --mode memory|csv|csv-checkpoint`: the seed job end to
//! end, with events/s, peak RSS and the cost of checkpointing.

use super::rss::peak_rss_kib;
use crate::cli::{BenchArgs, BenchMode};
use anyhow::Context;
use rivulet::JobConfig;
use rivulet_agent::args::HttpConfig;
use rivulet_agent::dataset::write_csv;
use rivulet_agent::endpoint::serve;
use rivulet_agent::seed::sensor::{build_sensor_average, Input, SensorAverage, RESULT_COLUMNS};
use std::time::Duration;

pub(super) fn run(a: &BenchArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let input = match (&a.input, a.mode) {
        (_, BenchMode::Memory) => None,
        (Some(p), _) => Some(p.clone()),
        (None, _) => {
            let p = dir.path().join("input.csv");
            eprintln!("generating {} readings into {} ...", a.events, p.display());
            write_csv(std::fs::File::create(&p)?, a.events, a.sensors)?;
            Some(p)
        }
    };
    let mut rates = Vec::new();
    for run in 0..a.runs.max(1) {
        let mut job = JobConfig::new("bench");
        job.parallelism = a.parallelism;
        if a.mode == BenchMode::CsvCheckpoint {
            job.state_dir = Some(dir.path().join(format!("state-{run}")));
            job.checkpoint_interval = Duration::from_secs(1);
            job.store.retain_checkpoints = a.retain_checkpoints;
            job.state_cache_bytes = a.state_cache;
        }
        let cfg = SensorAverage {
            input: match &input {
                Some(p) => Input::Csv(p.clone()),
                None => Input::Synthetic { n: a.events, sensors: a.sensors },
            },
            output: dir.path().join("out.csv"),
            window: Duration::from_secs(5),
            max_out_of_orderness: Duration::from_secs(2),
            input_rate: None,
            dead_letter: None,
            publish: None,
            job,
        };
        let env = build_sensor_average(&cfg)?;
        let http = a.http.map(|addr| HttpConfig { addr, token: None, linger: Duration::ZERO });
        let served = serve(http.as_ref(), &cfg.job.name, env.metrics(), &RESULT_COLUMNS)?;
        let reader = served.addr().map(super::scrape::Reader::start);
        let out = env.execute()?;
        served.finish(true);
        if let Some(r) = reader {
            let n = r.stop();
            eprintln!("  the endpoint answered {n} requests during the run");
        }
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
        "bench mode={}{}{} events={} sensors={} parallelism={}: median {:.2} M events/s, peak RSS {:.1} MiB",
        a.mode.name(),
        if a.mode == BenchMode::CsvCheckpoint {
            format!(" retain={} state-cache={:.1}MiB", a.retain_checkpoints, a.state_cache as f64 / 1048576.0)
        } else {
            String::new()
        },
        if a.http.is_some() { " http=on" } else { "" },
        a.events,
        a.sensors,
        a.parallelism,
        median / 1e6,
        peak_rss_kib() as f64 / 1024.0
    );
    Ok(())
}
