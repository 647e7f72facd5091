//! `rivulet run`: the seed job live (see `live`), or with `--generated` on
//! generated data in memory.

use crate::cli::{RunArgs, RUN_PARALLELISM};
use anyhow::Context;
use rivulet::JobConfig;
use rivulet_agent::args::EngineDefaults;
use rivulet_agent::endpoint::serve;
use rivulet_agent::seed::sensor::{build_sensor_average, Input, SensorAverage, RESULT_COLUMNS};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

pub(crate) fn run(a: &RunArgs) -> anyhow::Result<()> {
    if a.generated {
        run_generated(a)
    } else {
        super::live::run(a)
    }
}

fn run_generated(a: &RunArgs) -> anyhow::Result<()> {
    let events = a.events.unwrap_or(2_000_000);
    let mut job = JobConfig::new("sensor-average-demo");
    a.engine.fill(
        &mut job,
        EngineDefaults { parallelism: RUN_PARALLELISM, output_mode: rivulet::OutputMode::Checkpoint },
    )?;
    let http = a.engine.http_config()?;
    let output = a.output.clone().unwrap_or_else(|| tempfile_path("rivulet-run.csv"));
    let cfg = SensorAverage {
        input: Input::Synthetic { n: events, sensors: a.sensors },
        output: output.clone(),
        window: std::time::Duration::from_secs(5),
        max_out_of_orderness: std::time::Duration::from_secs(2),
        input_rate: None,
        dead_letter: None,
        publish: None,
        job,
    };
    println!(
        "rivulet: seed job on {} generated readings from {} sensors (°F → °C, key by sensor, 5 s tumbling average, watermark delay 2 s)",
        events, a.sensors
    );
    let env = build_sensor_average(&cfg)?;
    let served = serve(http.as_ref(), &cfg.job.name, env.metrics(), &RESULT_COLUMNS)?;
    // With an endpoint, a first Ctrl-C stops the job (or the linger after
    // it) so the endpoint closes cleanly; a second exits at once.
    let interrupted = Arc::new(AtomicBool::new(false));
    if http.is_some() {
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register_conditional_shutdown(sig, 130, interrupted.clone())?;
            signal_hook::flag::register(sig, interrupted.clone())?;
            signal_hook::flag::register(sig, env.stop_flag())?;
        }
    }
    let out = env.execute();
    served.finish(out.is_ok());
    let out = out?;
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
    served.linger(&interrupted);
    Ok(())
}

fn tempfile_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("{}-{name}", std::process::id()))
}
