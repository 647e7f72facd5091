//! The seed job as a command: see `sensor-average --help`.

use clap::Parser;
use rivulet::{JobConfig, OutputMode};
use rivulet_agent::args::{duration, mqtt_url, nonzero_duration, EngineArgs, EngineDefaults};
use rivulet_agent::seed::sensor::{build_sensor_average, Input, MqttInput, SensorAverage, RESULT_COLUMNS};
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
/// payloads `{"ts_ms": 1700000001234, "temp_f": 71.35}`; each is acked to the
/// broker only once it is durable in the state directory's ingest log.
/// Ctrl-C (SIGINT/SIGTERM) stops after a final checkpoint, leaving windows
/// open for the next run.
///
/// With --state-dir the last --retain-checkpoints complete checkpoints stay
/// restorable: --list-checkpoints shows them, --restore-checkpoint EPOCH
/// goes back to one (state, input positions and OUT.csv's length) and runs
/// on from there.
///
/// Exit codes: 0 done (or already done), 1 the job failed, 2 bad arguments
/// (the message names the flag; nothing was created), 3 the state directory
/// was refused, or the checkpoint to restore is not retained, 130/143
/// stopped by SIGINT/SIGTERM (after a final checkpoint; run the same
/// command again to go on).
#[derive(Parser, Debug)]
#[command(version)]
#[command(group(clap::ArgGroup::new("source").args(["input", "mqtt"])))]
struct Args {
    /// Headerless CSV input.
    #[arg(long)]
    input: Option<PathBuf>,
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
    let args = Args::parse();
    rivulet_agent::exit::report_code("sensor-average", run(args))
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
    if a.list_checkpoints {
        let Some(dir) = &a.engine.state_dir else {
            return Err(
                rivulet::Error::Config { field: "--state-dir", reason: "--list-checkpoints needs it".into() }.into()
            );
        };
        print!("{}", rivulet::state::Store::list_checkpoints(dir)?);
        return Ok(ExitCode::SUCCESS);
    }
    let Some(output) = a.output else {
        return Err(rivulet::Error::Config { field: "--output", reason: "required".into() }.into());
    };
    let mut job = JobConfig::new("sensor-average");
    let output_mode = if a.mqtt.is_some() { OutputMode::CommitOnOutput } else { OutputMode::Checkpoint };
    a.engine.fill(&mut job, EngineDefaults { parallelism: 1, output_mode })?;
    let http = a.engine.http_config()?;
    let (input, dead_letter) = match (a.input, a.mqtt) {
        (Some(p), _) => (Input::Csv(p), a.dead_letter.map(PathBuf::from)),
        (None, Some(url)) => {
            if job.state_dir.is_none() {
                eprintln!("sensor-average: warning: without --state-dir MQTT messages are acked on receipt; a crash loses them");
            }
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
    let cfg = SensorAverage {
        input,
        output,
        window: a.window,
        max_out_of_orderness: a.max_out_of_orderness,
        dead_letter,
        publish: a.publish,
        job,
    };
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
