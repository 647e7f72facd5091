//! `rivulet sql -f job.sql`: plans a Flink SQL job and runs it with the
//! engine flags (state directory, checkpoints, output mode) the seed job
//! has, so `kill -9` and the same command again is exactly once.

use crate::cli::SqlArgs;
use anyhow::Context;
use rivulet::{JobConfig, OutputMode};
use rivulet_agent::args::EngineDefaults;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

pub(crate) fn run(a: &SqlArgs) -> anyhow::Result<ExitCode> {
    // A first SIGINT/SIGTERM stops the job after a final checkpoint; a
    // second one exits at once with 128 + its number.
    let seen = Arc::new(AtomicBool::new(false));
    let which = Arc::new(AtomicUsize::new(0));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(sig, 128 + sig, seen.clone())?;
        signal_hook::flag::register(sig, seen.clone())?;
        signal_hook::flag::register_usize(sig, which.clone(), sig as usize)?;
    }
    let file = a.file.display().to_string();
    let text = std::fs::read_to_string(&a.file)
        .map_err(|e| rivulet::Error::Config { field: "--file", reason: format!("cannot read {file}: {e}") })?;
    let job = rivulet_sql::plan(&text).with_context(|| file.clone())?;
    if a.explain || job.is_explain() {
        print!("{}", job.explain());
        return Ok(ExitCode::SUCCESS);
    }
    let mut config = JobConfig::new("sql");
    a.engine.fill(&mut config, EngineDefaults { parallelism: 1, output_mode: OutputMode::Checkpoint })?;
    let state = config.state_dir.is_some();
    if job.reads_mqtt() && !state {
        eprintln!("rivulet: warning: without --state-dir MQTT messages are acked on receipt; a crash loses them");
    }
    let env = job.build(config)?;
    let stop = env.stop_flag();
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    if seen.load(Ordering::SeqCst) {
        stop.store(true, Ordering::SeqCst);
    }
    let out = env.execute()?;
    if out.already_finished {
        eprintln!("rivulet: the job in this state directory already finished; its output is complete");
        return Ok(ExitCode::SUCCESS);
    }
    let m = out.metrics;
    eprintln!(
        "rivulet: {} rows in, {} rows out, {} late, {} malformed, {} checkpoints{} in {:.2?}",
        m.records_in,
        m.records_out,
        m.late,
        m.bad_input,
        out.checkpoints,
        out.resumed_from.map(|e| format!(" (resumed from epoch {e})")).unwrap_or_default(),
        out.elapsed
    );
    let sig = which.load(Ordering::SeqCst);
    if sig == 0 {
        return Ok(ExitCode::SUCCESS);
    }
    let name = if sig == signal_hook::consts::SIGINT as usize { "SIGINT" } else { "SIGTERM" };
    let next = if state {
        "run the same command again to go on from its final checkpoint"
    } else {
        "without --state-dir a new run starts over"
    };
    eprintln!("rivulet: stopped by {name} before the end of the input; {next}");
    Ok(ExitCode::from(u8::try_from(128 + sig).unwrap_or(1)))
}
