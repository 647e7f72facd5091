//! The seed job as a command: see `sensor-average --help`.

use clap::Parser;
use rivulet::cluster::{CoordinatorOptions, EnvMaker};
use rivulet::{JobConfig, OutputMode};
use rivulet_agent::args::cluster::{cluster_token, job_args, CoordinatorArgs, SavepointArgs, WorkerArgs};
use rivulet_agent::args::{duration, mqtt_url, nonzero_duration, positive_rate, EngineArgs, EngineDefaults};
use rivulet_agent::seed::sensor::{
    build_sensor_average, build_sensor_average_with, Input, MqttInput, SensorAverage, RESULT_COLUMNS,
};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Per-sensor 5 s average temperature in °C from a CSV of °F readings,
/// with Flink's event-time semantics and exactly-once checkpoints.
///
/// Input lines: `sensor_id,ts_ms,temp_f`. Output lines:
/// `sensor_id,window_end_ms,avg_c,count`.
///
/// With `--mqtt`, readings arrive as MQTT messages on `--topic` with JSON
/// payloads `{"ts_ms": 1700000001234, "temp_f": 71.35}` (or many readings in
/// one message: a JSON array of them, or one per line); each message is
/// acked to the broker only once it is durable in the state directory's
/// ingest log.
/// Ctrl-C (SIGINT/SIGTERM) stops after a final checkpoint, leaving windows
/// open for the next run.
///
/// With --state-dir the last --retain-checkpoints complete checkpoints stay
/// restorable: --list-checkpoints shows them, --restore-checkpoint EPOCH
/// goes back to one (state, input positions and OUT.csv's length) and runs
/// on from there.
///
/// On several nodes: `sensor-average coordinator --listen ADDR --workers N
/// --checkpoint-store URL [the job's flags]` and, per slot K,
/// `sensor-average worker --coordinator ADDR --slot K --state-dir DIR`
/// (see `sensor-average coordinator --help`).
///
/// Exit codes: 0 done (or already done), 1 the job failed, 2 bad arguments
/// (the message names the flag; nothing was created), 3 the state directory
/// or checkpoint store was refused, or the checkpoint to restore is not
/// retained, 130/143 stopped by SIGINT/SIGTERM (after a final checkpoint;
/// run the same command again to go on).
#[derive(Parser, Debug)]
#[command(version, args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
struct Cli {
    #[command(subcommand)]
    role: Option<Role>,
    #[command(flatten)]
    job: Args,
}

/// A role in a cluster.
#[derive(clap::Subcommand, Debug)]
enum Role {
    /// Coordinates the job across worker slots (runs no task itself):
    /// checkpoints into the shared store, results published here, a lost
    /// worker restarts the job from the latest checkpoint. Takes the job's
    /// flags as the single-process form does (no --state-dir).
    Coordinator {
        #[command(flatten)]
        cluster: CoordinatorArgs,
        #[command(flatten)]
        job: Box<Args>,
    },
    /// Runs the subtasks the coordinator places on this slot.
    Worker {
        #[command(flatten)]
        worker: WorkerArgs,
    },
    /// Asks the coordinator for a savepoint: a full, portable copy of the
    /// job's latest complete checkpoint (restart the coordinator with
    /// --from-savepoint to start from it, e.g. with other --workers).
    Savepoint {
        #[command(flatten)]
        savepoint: SavepointArgs,
    },
}

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("source").args(["input", "mqtt"])))]
struct Args {
    /// Headerless CSV input.
    #[arg(long)]
    input: Option<PathBuf>,
    /// Replay --input at most this many readings per second (e.g. at the
    /// pace it was recorded) [default: as fast as it is read].
    #[arg(long, value_name = "READINGS/S", requires = "input", value_parser = positive_rate)]
    input_rate: Option<f64>,
    /// Read from this MQTT broker instead (`mqtt://host:port`).
    #[arg(long, value_parser = mqtt_url)]
    mqtt: Option<String>,
    /// Topic template; `{sensor_id}` captures the sensor from the topic.
    #[arg(long, default_value = "sensors/{sensor_id}/temp", requires = "mqtt")]
    topic: String,
    /// MQTT client id: the broker keeps the session (and queues messages
    /// while the job is down) under it, so restarts must reuse it.
    #[arg(long, default_value = "rivulet-sensor-average", requires = "mqtt")]
    client_id: String,
    /// Speak MQTT 3.1.1 (old brokers) instead of MQTT 5.
    #[arg(long, requires = "mqtt")]
    mqtt_v311: bool,
    /// Share the subscription with other instances (`$share/<group>/...`).
    #[arg(long, requires = "mqtt")]
    share_group: Option<String>,
    /// End of stream after this long without a message: every window fires,
    /// the last epoch commits, exit 0.
    #[arg(long, value_name = "DURATION", requires = "mqtt", value_parser = nonzero_duration)]
    stop_after_idle: Option<Duration>,
    /// Also publish each committed result to this topic template, e.g.
    /// `averages/{sensor_id}` (QoS 1, JSON, with a deterministic message id).
    #[arg(long, requires = "mqtt")]
    publish: Option<String>,
    /// Output CSV (exactly once with --state-dir).
    #[arg(long, required_unless_present = "list_checkpoints")]
    output: Option<PathBuf>,
    /// Tumbling window size (e.g. 5s, 500ms; at least 1ms).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = nonzero_duration)]
    window: Duration,
    /// Watermark delay behind the largest timestamp seen (0 allowed: no
    /// out-of-order readings expected).
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = duration)]
    max_out_of_orderness: Duration,
    /// Print the retained checkpoints of --state-dir with their completion
    /// times and exit, changing nothing.
    #[arg(long, requires = "state_dir", conflicts_with_all = ["restore_checkpoint", "input", "mqtt"])]
    list_checkpoints: bool,
    /// Malformed input goes here too: a file with --input, a topic with --mqtt.
    #[arg(long)]
    dead_letter: Option<String>,
    #[command(flatten)]
    engine: EngineArgs,
}

fn main() -> ExitCode {
    rivulet::memory::limit_malloc_arenas();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    if cli.role.is_some() {
        if let Err(e) = rivulet_agent::args::cluster::credentials_from_files() {
            return rivulet_agent::exit::report_code("sensor-average", Err(e.into()));
        }
    }
    let outcome = match cli.role {
        None => run(cli.job),
        Some(Role::Coordinator { cluster, job }) => coordinator(&cluster, *job),
        Some(Role::Worker { worker: w }) => {
            rivulet_agent::roles::worker("sensor-average", &w, &RESULT_COLUMNS, &build_in_cluster)
                .map(|()| ExitCode::SUCCESS)
        }
        Some(Role::Savepoint { savepoint: s }) => {
            rivulet_agent::roles::savepoint("sensor-average", &s).map(|()| ExitCode::SUCCESS)
        }
    };
    rivulet_agent::exit::report_code("sensor-average", outcome)
}

/// The job's settings from its flags; `None` for `--list-checkpoints`
/// (printed here).
fn settings(a: Args) -> anyhow::Result<Option<SensorAverage>> {
    if a.list_checkpoints {
        let Some(dir) = &a.engine.state_dir else {
            return Err(
                rivulet::Error::Config { field: "--state-dir", reason: "--list-checkpoints needs it".into() }.into()
            );
        };
        print!("{}", rivulet::state::Store::list_checkpoints(dir)?);
        return Ok(None);
    }
    let Some(output) = a.output else {
        return Err(rivulet::Error::Config { field: "--output", reason: "required".into() }.into());
    };
    let mut job = JobConfig::new("sensor-average");
    let output_mode = if a.mqtt.is_some() { OutputMode::CommitOnOutput } else { OutputMode::Checkpoint };
    a.engine.fill(&mut job, EngineDefaults { parallelism: 1, output_mode })?;
    let (input, dead_letter) = match (a.input, a.mqtt) {
        (Some(p), _) => (Input::Csv(p), a.dead_letter.map(PathBuf::from)),
        (None, Some(url)) => {
            let m = MqttInput {
                url,
                topic: a.topic,
                client_id: a.client_id,
                v311: a.mqtt_v311,
                stop_after_idle: a.stop_after_idle,
                dead_letter: a.dead_letter,
                share_group: a.share_group,
            };
            (Input::Mqtt(m), None)
        }
        (None, None) => {
            return Err(rivulet::Error::Config { field: "--input", reason: "give --input or --mqtt".into() }.into())
        }
    };
    Ok(Some(SensorAverage {
        input,
        output,
        window: a.window,
        max_out_of_orderness: a.max_out_of_orderness,
        dead_letter,
        input_rate: a.input_rate,
        publish: a.publish,
        job,
    }))
}

/// Builds the job in a process of the cluster from the job's arguments.
fn build_in_cluster(args: &[String], maker: EnvMaker<'_>) -> Result<rivulet::Env, String> {
    let a = Args::try_parse_from_args(args).map_err(|e| e.to_string())?;
    let cfg = settings(a).map_err(|e| e.to_string())?.ok_or("--list-checkpoints is not a job")?;
    build_sensor_average_with(&cfg, |c| maker.make(c)).map_err(|e| format!("{e:#}"))
}

impl Args {
    fn try_parse_from_args(args: &[String]) -> Result<Args, clap::Error> {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            job: Args,
        }
        Only::try_parse_from(std::iter::once("sensor-average".to_string()).chain(args.iter().cloned())).map(|o| o.job)
    }
}

fn coordinator(c: &CoordinatorArgs, a: Args) -> anyhow::Result<ExitCode> {
    if a.engine.state_dir.is_some() || a.list_checkpoints {
        return Err(rivulet::Error::Config {
            field: "--state-dir",
            reason: "the coordinator keeps its state in --checkpoint-store; workers take --state-dir".into(),
        }
        .into());
    }
    // Checks the job's flags here, before any worker is asked to.
    let http = a.engine.http_config()?;
    settings(a)?;
    let view = rivulet::cluster::ClusterView::new();
    let served = rivulet_agent::endpoint::serve_as(
        http.as_ref(),
        "sensor-average",
        view.metrics.clone(),
        &RESULT_COLUMNS,
        rivulet_agent::endpoint::Role::Coordinator(view.clone()),
    )?;
    let argv: Vec<String> = std::env::args().skip_while(|s| s != "coordinator").skip(1).collect();
    let opts = CoordinatorOptions {
        listen: c.listen,
        workers: c.workers,
        store_url: c.checkpoint_store.clone(),
        worker_timeout: c.worker_timeout,
        token: cluster_token(c.cluster_token_file.as_ref())?,
        job_args: job_args(&argv),
        from_savepoint: c.from_savepoint.clone(),
        rollback_to: c.rollback_to.clone(),
        pin_savepoints: c.pin_savepoints,
        view,
        liveness: std::sync::Arc::new(rivulet::cluster::Liveness::at(c.alive_file.clone())),
    };
    let out = rivulet::cluster::run_coordinator(&opts, &build_in_cluster);
    served.finish(out.is_ok());
    let out = out?;
    rivulet_agent::args::cluster::report("sensor-average", &out);
    served.linger(&std::sync::atomic::AtomicBool::new(false));
    Ok(ExitCode::SUCCESS)
}

fn run(a: Args) -> anyhow::Result<ExitCode> {
    // From the start, a first SIGINT/SIGTERM is recorded (and stops the job
    // once it runs); a second one exits at once with 128 + its number.
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let which = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(sig, 128 + sig, seen.clone())?;
        signal_hook::flag::register(sig, seen.clone())?;
        signal_hook::flag::register_usize(sig, which.clone(), sig as usize)?;
    }
    let mqtt_without_state = a.mqtt.is_some() && a.engine.state_dir.is_none();
    let http = a.engine.http_config()?;
    let Some(cfg) = settings(a)? else {
        return Ok(ExitCode::SUCCESS);
    };
    if mqtt_without_state {
        eprintln!(
            "sensor-average: warning: without --state-dir MQTT messages are acked on receipt; a crash loses them"
        );
    }
    let env = build_sensor_average(&cfg)?;
    let served = rivulet_agent::endpoint::serve(http.as_ref(), &cfg.job.name, env.metrics(), &RESULT_COLUMNS)?;
    let stop = env.stop_flag();
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    // A signal received while the job was being built stops it too.
    if seen.load(std::sync::atomic::Ordering::SeqCst) {
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
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
        eprintln!("sensor-average: the job in this state directory already finished; its output is complete");
        served.linger(&seen);
        return Ok(ExitCode::SUCCESS);
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
    let sig = which.load(std::sync::atomic::Ordering::SeqCst);
    // A signal during the linger ends it; the job's own outcome stands.
    served.linger(&seen);
    if sig == 0 {
        return Ok(ExitCode::SUCCESS);
    }
    let name = if sig == signal_hook::consts::SIGINT as usize { "SIGINT" } else { "SIGTERM" };
    let next = if cfg.job.state_dir.is_some() {
        "run the same command again to go on from its final checkpoint"
    } else {
        "without --state-dir a new run starts over"
    };
    eprintln!("sensor-average: stopped by {name} before the end of the input; {next}");
    Ok(ExitCode::from(u8::try_from(128 + sig).unwrap_or(1)))
}
