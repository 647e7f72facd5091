//! `rivulet sql -f job.sql`: plans a Flink SQL job and runs it with the
//! engine flags (state directory, checkpoints, output mode, `--http`) the
//! seed job has, so `kill -9` and the same command again is exactly once.
//! `rivulet sql coordinator|worker|savepoint` run it on a cluster: the
//! coordinator hands the job's text and engine flags to the workers, which
//! plan the same job from them.

use crate::cli::{SqlArgs, SqlCommand, SqlRole};
use anyhow::Context;
use clap::Parser;
use rivulet::cluster::{CoordinatorOptions, EnvMaker};
use rivulet::{JobConfig, OutputMode};
use rivulet_agent::args::cluster::{cluster_token, job_args, CoordinatorArgs};
use rivulet_agent::args::{EngineArgs, EngineDefaults};
use rivulet_agent::endpoint::{self, Role};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// The job's name: in the checkpoint store, and what workers and
/// coordinator prove they run.
const JOB: &str = "sql";

const DEFAULTS: EngineDefaults = EngineDefaults { parallelism: 1, output_mode: OutputMode::Checkpoint };

pub(crate) fn run(c: &SqlCommand) -> anyhow::Result<ExitCode> {
    match &c.role {
        None => single(&c.job),
        Some(SqlRole::Coordinator { cluster, job }) => coordinator(cluster, job),
        Some(SqlRole::Worker { worker: w }) => {
            rivulet_agent::roles::worker(JOB, w, &[], &build_in_cluster)?;
            Ok(ExitCode::SUCCESS)
        }
        Some(SqlRole::Savepoint { savepoint: s }) => {
            rivulet_agent::roles::savepoint(JOB, s)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The job file's text and its plan.
fn read(a: &SqlArgs) -> anyhow::Result<(String, rivulet_sql::Job)> {
    let Some(path) = &a.file else {
        return Err(rivulet::Error::Config { field: "--file", reason: "required".into() }.into());
    };
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| rivulet::Error::Config { field: "--file", reason: format!("cannot read {file}: {e}") })?;
    let job = rivulet_sql::plan(&text).with_context(|| file.clone())?;
    Ok((text, job))
}

/// The sink's column names for the endpoint's result tap: fixed for the
/// process's life.
fn result_columns(job: &rivulet_sql::Job) -> &'static [&'static str] {
    let names: Vec<&'static str> = job.sink_columns().into_iter().map(|n| &*Box::leak(n.into_boxed_str())).collect();
    Box::leak(names.into_boxed_slice())
}

fn single(a: &SqlArgs) -> anyhow::Result<ExitCode> {
    // A first SIGINT/SIGTERM stops the job after a final checkpoint; a
    // second one exits at once with 128 + its number.
    let seen = Arc::new(AtomicBool::new(false));
    let which = Arc::new(AtomicUsize::new(0));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(sig, 128 + sig, seen.clone())?;
        signal_hook::flag::register(sig, seen.clone())?;
        signal_hook::flag::register_usize(sig, which.clone(), sig as usize)?;
    }
    let (_, job) = read(a)?;
    if a.explain || job.is_explain() {
        print!("{}", job.explain());
        return Ok(ExitCode::SUCCESS);
    }
    let http = a.engine.http_config()?;
    let mut config = JobConfig::new(JOB);
    a.engine.fill(&mut config, DEFAULTS)?;
    let state = config.state_dir.is_some();
    if job.reads_mqtt() && !state {
        eprintln!("rivulet: warning: without --state-dir MQTT messages are acked on receipt; a crash loses them");
    }
    let env = job.build(config)?;
    let served = endpoint::serve(http.as_ref(), JOB, env.metrics(), result_columns(&job))?;
    let stop = env.stop_flag();
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    if seen.load(Ordering::SeqCst) {
        stop.store(true, Ordering::SeqCst);
    }
    let out = env.execute();
    served.finish(out.is_ok());
    let out = match out {
        Ok(out) => out,
        Err(e) => {
            served.linger(&seen);
            return Err(e.into());
        }
    };
    if out.already_finished {
        eprintln!("rivulet: the job in this state directory already finished; its output is complete");
        served.linger(&seen);
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
    served.linger(&seen);
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

/// What a worker parses from the job arguments its coordinator sends: the
/// job's text and the engine flags.
#[derive(Parser, Debug)]
struct ClusterJob {
    /// The job's SQL text (it may start with `--`, a comment).
    #[arg(long, allow_hyphen_values = true)]
    sql: String,
    #[command(flatten)]
    engine: EngineArgs,
}

/// Builds the job in a process of the cluster from the job's arguments.
fn build_in_cluster(args: &[String], maker: EnvMaker<'_>) -> Result<rivulet::Env, String> {
    let a = ClusterJob::try_parse_from(std::iter::once(JOB.to_string()).chain(args.iter().cloned()))
        .map_err(|e| e.to_string())?;
    let job = rivulet_sql::plan(&a.sql).map_err(|e| e.to_string())?;
    let mut config = JobConfig::new(JOB);
    a.engine.fill(&mut config, DEFAULTS).map_err(|e| e.to_string())?;
    job.build_with(config, |c| maker.make(c)).map_err(|e| e.to_string())
}

/// The job arguments for the workers: the coordinator's own flags, the
/// file and `--explain` removed; the file's text in their place.
fn worker_args(after_role: &[String], text: &str) -> Vec<String> {
    // One argument: a text starting with a `--` comment is no flag.
    let mut out = vec![format!("--sql={text}")];
    let mut it = job_args(after_role).into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-f" | "--file" => {
                it.next();
            }
            "--explain" => {}
            _ if a.starts_with("--file=") || (a.starts_with("-f") && a.len() > 2) => {}
            _ => out.push(a),
        }
    }
    out
}

fn coordinator(c: &CoordinatorArgs, a: &SqlArgs) -> anyhow::Result<ExitCode> {
    if a.engine.state_dir.is_some() {
        return Err(rivulet::Error::Config {
            field: "--state-dir",
            reason: "the coordinator keeps its state in --checkpoint-store; workers take --state-dir".into(),
        }
        .into());
    }
    let (text, job) = read(a)?;
    let http = a.engine.http_config()?;
    let view = rivulet::cluster::ClusterView::new();
    let served = endpoint::serve_as(
        http.as_ref(),
        JOB,
        view.metrics.clone(),
        result_columns(&job),
        Role::Coordinator(view.clone()),
    )?;
    let argv: Vec<String> = std::env::args().skip_while(|s| s != "coordinator").skip(1).collect();
    let opts = CoordinatorOptions {
        listen: c.listen,
        workers: c.workers,
        store_url: c.checkpoint_store.clone(),
        worker_timeout: c.worker_timeout,
        token: cluster_token(c.cluster_token_file.as_ref())?,
        job_args: worker_args(&argv, &text),
        from_savepoint: c.from_savepoint.clone(),
        rollback_to: c.rollback_to.clone(),
        pin_savepoints: c.pin_savepoints,
        view,
        liveness: std::sync::Arc::new(rivulet::cluster::Liveness::at(c.alive_file.clone())),
    };
    let out = rivulet::cluster::run_coordinator(&opts, &build_in_cluster);
    served.finish(out.is_ok());
    let out = out?;
    rivulet_agent::args::cluster::report("rivulet", &out);
    served.linger(&AtomicBool::new(false));
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workers_get_the_text_and_the_engine_flags() {
        let argv: Vec<String> =
            ["--listen", "127.0.0.1:7000", "-f", "job.sql", "--workers", "2", "--parallelism", "4", "--explain"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        assert_eq!(worker_args(&argv, "-- c\nSELECT 1"), ["--sql=-- c\nSELECT 1", "--parallelism", "4"]);
        let argv: Vec<String> =
            ["--file=job.sql", "--checkpoint-interval", "1s"].iter().map(|s| s.to_string()).collect();
        assert_eq!(worker_args(&argv, "x"), ["--sql=x", "--checkpoint-interval", "1s"]);
        let parsed = ClusterJob::try_parse_from(["sql", "--sql=-- c\nSELECT 1", "--parallelism", "4"]).unwrap();
        assert_eq!(parsed.sql, "-- c\nSELECT 1");
    }
}
