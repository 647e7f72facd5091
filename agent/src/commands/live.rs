//! `rivulet run`: the seed job live — a broker (embedded unless `--mqtt`),
//! the sensor simulator and `sensor-average` in one process, with a compact
//! view that refreshes every second: the latest closed windows, throughput
//! and watermark lag. Ctrl-C stops after a final checkpoint.

use crate::cli::{RunArgs, RUN_PARALLELISM};
use anyhow::Context;
use rivulet::JobConfig;
use rivulet_agent::args::EngineDefaults;
use rivulet_agent::endpoint::serve;
use rivulet_agent::seed::publish::{simulate, Simulation};
use rivulet_agent::seed::sensor::{build_sensor_average, Input, MqttInput, SensorAverage, RESULT_COLUMNS};
use std::io::{IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) fn run(a: &RunArgs) -> anyhow::Result<()> {
    // The job's settings first: a bad one stops here, before a broker,
    // a thread or a file exists.
    let mut job = JobConfig::new("sensor-average-live");
    a.engine.fill(
        &mut job,
        EngineDefaults { parallelism: RUN_PARALLELISM, output_mode: rivulet::OutputMode::CommitOnOutput },
    )?;
    let http = a.engine.http_config()?;
    let (url, embedded) = match &a.mqtt {
        Some(u) => (u.clone(), false),
        None => (embedded_broker()?, true),
    };
    let tmp = tempfile::tempdir().context("creating a temporary directory")?;
    let output = a.output.clone().unwrap_or_else(|| tmp.path().join("averages.csv"));
    if job.state_dir.is_none() {
        job.state_dir = Some(tmp.path().join("state"));
    }
    let bounded_by_events = a.events.is_some();
    let input = MqttInput {
        url: url.clone(),
        topic: "sensors/{sensor_id}/temp".into(),
        client_id: "rivulet-run".into(),
        // rumqttd's MQTT 5 support is partial: speak 3.1.1 to it.
        v311: embedded,
        // With --events the stream ends once the simulator has sent them all.
        stop_after_idle: bounded_by_events.then_some(Duration::from_secs(2)),
        dead_letter: Some("sensors/dead-letter".into()),
        share_group: None,
    };
    let cfg = SensorAverage {
        input: Input::Mqtt(input),
        output: output.clone(),
        window: Duration::from_secs(5),
        max_out_of_orderness: Duration::from_secs(2),
        input_rate: None,
        dead_letter: None,
        publish: Some("averages/{sensor_id}".into()),
        job,
    };
    let env = build_sensor_average(&cfg)?;
    let served = serve(http.as_ref(), &cfg.job.name, env.metrics(), &RESULT_COLUMNS)?;
    let stop = env.stop_flag();
    let sim_stop = Arc::new(AtomicBool::new(false));
    let interrupted = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, interrupted.clone())?;
        signal_hook::flag::register_conditional_shutdown(sig, 130, stop.clone())?;
        signal_hook::flag::register(sig, stop.clone())?;
        signal_hook::flag::register(sig, sim_stop.clone())?;
    }
    let metrics = env.metrics();
    println!(
        "rivulet run: {} sensors publishing {} readings/s to {}{} → sensor-average (°F → °C, 5 s tumbling average per sensor, watermark delay 2 s) → {} and averages/<sensor>",
        a.sensors,
        a.rate,
        url,
        if embedded { " (embedded broker)" } else { "" },
        output.display()
    );
    println!("Ctrl-C stops after a final checkpoint.\n");
    let sim = Simulation {
        url: url.clone(),
        v311: embedded,
        sensors: a.sensors,
        rate: a.rate,
        count: a.events,
        late_fraction: a.late_fraction,
        malformed_fraction: a.malformed_fraction,
        batch: 1,
    };
    let s2 = sim_stop.clone();
    let sim_thread = std::thread::spawn(move || {
        // A fresh session only queues what is published after the job
        // subscribed: give it a moment.
        std::thread::sleep(Duration::from_millis(1500));
        simulate(&sim, &s2)
    });
    if let Some(d) = a.duration {
        let (s1, s2) = (stop.clone(), sim_stop.clone());
        std::thread::spawn(move || {
            std::thread::sleep(d);
            s2.store(true, Ordering::Release);
            s1.store(true, Ordering::Release);
        });
    }
    let view_done = Arc::new(AtomicBool::new(false));
    let view = {
        let (done, out, m) = (view_done.clone(), output.clone(), metrics.clone());
        std::thread::spawn(move || live_view(&out, &m, &done))
    };
    let outcome = env.execute();
    served.finish(outcome.is_ok());
    sim_stop.store(true, Ordering::Release);
    view_done.store(true, Ordering::Release);
    let _ = view.join();
    let sent = sim_thread.join().map_err(|_| anyhow::anyhow!("the simulator panicked"))??;
    let out = outcome?;
    let m = out.metrics;
    println!(
        "\nsent {sent} readings; the job read {} ({} malformed, {} late) and committed {} window results in {} checkpoints over {:.1} s",
        m.records_in,
        m.bad_input,
        m.late,
        m.records_out,
        out.checkpoints,
        out.elapsed.as_secs_f64()
    );
    served.linger(&interrupted);
    Ok(())
}

#[cfg(feature = "embedded-broker")]
fn embedded_broker() -> anyhow::Result<String> {
    rivulet_agent::seed::broker::start_embedded(0)
}

#[cfg(not(feature = "embedded-broker"))]
fn embedded_broker() -> anyhow::Result<String> {
    anyhow::bail!("this build has no embedded broker (feature `embedded-broker`): give --mqtt mqtt://HOST:PORT")
}

#[derive(Default)]
struct Latest {
    end: i64,
    rows: Vec<(String, f64, u64)>,
}

/// Reads committed rows appended to `path` since `offset`.
fn read_new(path: &Path, offset: &mut u64, latest: &mut Latest, total: &mut u64) {
    let Ok(mut f) = std::fs::File::open(path) else { return };
    if f.seek(SeekFrom::Start(*offset)).is_err() {
        return;
    }
    let mut text = String::new();
    if f.read_to_string(&mut text).is_err() {
        return;
    }
    let Some(last_nl) = text.rfind('\n') else { return };
    *offset += last_nl as u64 + 1;
    for line in text[..last_nl].lines() {
        let mut it = line.split(',');
        let (Some(id), Some(end), Some(avg), Some(n)) = (it.next(), it.next(), it.next(), it.next()) else { continue };
        let (Ok(end), Ok(avg), Ok(n)) = (end.parse::<i64>(), avg.parse::<f64>(), n.parse::<u64>()) else { continue };
        *total += 1;
        if end > latest.end {
            latest.end = end;
            latest.rows.clear();
        }
        if end == latest.end {
            latest.rows.push((id.to_string(), avg, n));
        }
    }
}

fn live_view(path: &Path, m: &rivulet::metrics::Metrics, done: &AtomicBool) {
    let tty = std::io::stdout().is_terminal();
    let started = Instant::now();
    let (mut offset, mut total, mut latest) = (0u64, 0u64, Latest::default());
    let (mut last_in, mut last_t) = (0u64, Instant::now());
    let mut drawn = 0usize;
    while !done.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(1000));
        read_new(path, &mut offset, &mut latest, &mut total);
        let s = m.snapshot();
        let now = Instant::now();
        let rate = (s.records_in - last_in) as f64 / now.duration_since(last_t).as_secs_f64();
        (last_in, last_t) = (s.records_in, now);
        let wm = m.watermark.load(Ordering::Relaxed) as i64;
        let lag = if wm > 0 && wm < rivulet::time::now_ms() + 86_400_000 {
            format!("{:.1} s", (rivulet::time::now_ms() - wm) as f64 / 1000.0)
        } else {
            "-".into()
        };
        let mut lines = vec![format!(
            "[{:>4.0} s] in {} ({:.0}/s) · malformed {} · late {} · results {} · checkpoints {} · watermark lag {}",
            started.elapsed().as_secs_f64(),
            s.records_in,
            rate,
            s.bad_input,
            s.late,
            total,
            s.checkpoints.max(m.checkpoints.load(Ordering::Relaxed)),
            lag
        )];
        if latest.rows.is_empty() {
            lines
                .push("waiting for the first window to close (5 s window + 2 s watermark delay + a checkpoint)".into());
        } else {
            let n = latest.rows.len();
            let avg = latest.rows.iter().map(|r| r.1).sum::<f64>() / n as f64;
            let (mut lo, mut hi) = (&latest.rows[0], &latest.rows[0]);
            for r in &latest.rows {
                if r.1 < lo.1 {
                    lo = r;
                }
                if r.1 > hi.1 {
                    hi = r;
                }
            }
            lines.push(format!(
                "window ending {} (UTC): {n} sensors, mean {avg:.2} °C, min {:.2} ({}), max {:.2} ({})",
                clock(latest.end),
                lo.1,
                lo.0,
                hi.1,
                hi.0
            ));
            let sample: Vec<String> =
                latest.rows.iter().take(6).map(|(id, a, c)| format!("{id} {a:.2} °C ×{c}")).collect();
            lines.push(format!("  {}", sample.join(" · ")));
        }
        let mut out = std::io::stdout().lock();
        if tty && drawn > 0 {
            let _ = write!(out, "\x1b[{drawn}A\x1b[J");
        }
        for l in &lines {
            let _ = writeln!(out, "{l}");
        }
        let _ = out.flush();
        drawn = lines.len();
    }
}

fn clock(ms: i64) -> String {
    let s = ms.div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}
