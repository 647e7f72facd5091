//! Keyed process functions end to end: a per-sensor running count in
//! `ValueState` with an event-time "no reading for 10 s" alert, checked
//! against a naive model; checkpoint + restart restoring state and timers;
//! TTL; a processing-time timer firing while no input arrives.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

use rivulet::source::{Poll, Source};
use rivulet::state::{StateRegistry, StateTtl, ValueState};
use rivulet::{Env, JobConfig, KeyedProcessFunction, ProcessContext, Result, Sink, TimeDomain, Watermarks};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SILENCE_MS: i64 = 10_000;
const DELAY: Duration = Duration::from_millis(1_500);

/// (sensor, event time ms)
type Reading = (String, i64);

/// Deterministic readings: six sensors, out of order by up to 2 s, and
/// sensor `s5` silent for 20 s out of every 40 s (so it raises alerts).
fn reading(i: u64) -> Reading {
    let mut x = i.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
    x ^= x >> 29;
    let mut sensor = x % 6;
    if sensor == 5 && (i / 400) % 2 == 1 {
        sensor = i % 5;
    }
    let jitter = ((x >> 17) % 2_000) as i64;
    (format!("s{sensor}"), 1_700_000_000_000 + i as i64 * 50 - jitter)
}

/// Per sensor: count readings, alert when one is followed by 10 s of
/// event-time silence.
#[derive(Clone, Default)]
struct Monitor {
    count: Option<ValueState<u64>>,
    last: Option<ValueState<i64>>,
}

impl KeyedProcessFunction<String, Reading> for Monitor {
    type Out = String;

    fn open(&mut self, states: &mut StateRegistry<String>) -> Result<()> {
        self.count = Some(states.value(None)?);
        self.last = Some(states.value(None)?);
        Ok(())
    }

    fn process(&mut self, r: Reading, ctx: &mut ProcessContext<'_, String, String>) -> Result<()> {
        let (Some(count), Some(last)) = (self.count, self.last) else {
            return Ok(());
        };
        let n = count.value(ctx)?.unwrap_or(0) + 1;
        count.update(ctx, n)?;
        ctx.emit(format!("count,{},{},{}", r.0, n, r.1));
        let prev = last.value(ctx)?;
        if prev.is_none_or(|p| r.1 > p) {
            if let Some(p) = prev {
                ctx.timers().delete_event_time(p + SILENCE_MS)?;
            }
            last.update(ctx, r.1)?;
            ctx.timers().register_event_time(r.1 + SILENCE_MS)?;
        }
        Ok(())
    }

    fn on_timer(&mut self, ts: i64, domain: TimeDomain, ctx: &mut ProcessContext<'_, String, String>) -> Result<()> {
        let Some(last) = self.last else { return Ok(()) };
        if domain == TimeDomain::EventTime && last.value(ctx)? == Some(ts - SILENCE_MS) {
            ctx.emit(format!("alert,{},{}", ctx.key(), ts));
        }
        Ok(())
    }
}

/// The same job computed naively: per-record watermarks, timers firing
/// when the watermark advances past them, every timer at the end.
fn model(n: u64) -> Vec<String> {
    let mut out = Vec::new();
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut last: BTreeMap<String, i64> = BTreeMap::new();
    let mut max_ts = i64::MIN;
    let mut wm = i64::MIN;
    let fire = |wm: i64, last: &BTreeMap<String, i64>, pending: &mut BTreeMap<String, i64>, out: &mut Vec<String>| {
        pending.retain(|s, t| {
            if *t <= wm {
                if last.get(s).is_some_and(|l| l + SILENCE_MS == *t) {
                    out.push(format!("alert,{s},{t}"));
                }
                return false;
            }
            true
        });
    };
    let mut pending: BTreeMap<String, i64> = BTreeMap::new();
    for i in 0..n {
        let (s, ts) = reading(i);
        let rec_wm = if max_ts == i64::MIN { i64::MIN } else { max_ts - DELAY.as_millis() as i64 - 1 };
        if rec_wm > wm {
            wm = rec_wm;
            fire(wm, &last, &mut pending, &mut out);
        }
        max_ts = max_ts.max(ts);
        let c = counts.entry(s.clone()).or_default();
        *c += 1;
        out.push(format!("count,{s},{c},{ts}"));
        if last.get(&s).is_none_or(|l| ts > *l) {
            last.insert(s.clone(), ts);
            pending.insert(s, ts + SILENCE_MS);
        }
    }
    fire(i64::MAX, &last, &mut pending, &mut out);
    out.sort();
    out
}

/// Readings paced a little, that can stop the job mid-stream (as a crash
/// would, but cleanly) after `stop_at` records, optionally waiting first
/// so that checkpoints catch up with everything read.
struct Readings {
    n: u64,
    next: u64,
    stop_at: Option<(u64, Arc<AtomicBool>, Duration)>,
    stop_since: Option<Instant>,
}

impl Readings {
    fn new(n: u64) -> Self {
        Self { n, next: 0, stop_at: None, stop_since: None }
    }
}

impl Source for Readings {
    type Item = Reading;

    fn poll_batch(&mut self, out: &mut Vec<Reading>, max: usize) -> Result<Poll> {
        if let Some((at, flag, wait)) = &self.stop_at {
            if self.next >= *at {
                let since = *self.stop_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= *wait {
                    flag.store(true, Ordering::Release);
                }
                return Ok(Poll::Pending);
            }
            std::thread::sleep(Duration::from_micros(300));
        }
        let mut end = (self.next + max as u64).min(self.n);
        if let Some((at, _, _)) = &self.stop_at {
            end = end.min(*at);
        }
        if self.next >= self.n {
            return Ok(Poll::End);
        }
        for i in self.next..end {
            out.push(reading(i));
        }
        self.next = end;
        Ok(Poll::Ready)
    }

    fn position(&self) -> Vec<u8> {
        self.next.to_le_bytes().to_vec()
    }

    fn restore(&mut self, position: &[u8]) -> Result<()> {
        let bytes: [u8; 8] = position
            .try_into()
            .map_err(|_| rivulet::Error::Task { task: "readings".into(), reason: "bad position".into() })?;
        self.next = u64::from_le_bytes(bytes);
        Ok(())
    }
}

fn lines(path: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_to_string(path).unwrap_or_default().lines().map(str::to_string).collect();
    v.sort();
    v
}

fn config(parallelism: usize, state_dir: Option<&Path>) -> JobConfig {
    let mut c = JobConfig::new("process-monitor");
    c.parallelism = parallelism;
    c.batch_size = 37;
    c.state_dir = state_dir.map(Path::to_path_buf);
    c.checkpoint_interval = Duration::from_millis(10);
    c
}

fn run(cfg: JobConfig, source: impl FnOnce(&Env) -> Readings, out: &Path) -> rivulet::JobOutcome {
    let env = Env::new(cfg).unwrap();
    let src = source(&env);
    env.source(src, Watermarks::bounded_out_of_orderness(DELAY, |r: &Reading| r.1))
        .key_by(|r: &Reading| r.0.clone())
        .process(Monitor::default())
        .sink(Sink::file(out, |s: &String, buf: &mut Vec<u8>| {
            buf.extend_from_slice(s.as_bytes());
            buf.push(b'\n');
        }));
    env.execute().unwrap()
}

#[test]
fn running_count_and_silence_alerts_match_the_model() {
    let n = 4_000;
    let expected = model(n);
    assert!(expected.iter().filter(|l| l.starts_with("alert,s5")).count() >= 3, "the data must exercise alerts");
    for parallelism in [1, 3] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.csv");
        run(config(parallelism, None), |_| Readings::new(n), &out);
        assert_eq!(lines(&out), expected, "parallelism {parallelism}");
    }
}

#[test]
fn restart_restores_state_and_timers() {
    let n = 3_000;
    let expected = model(n);
    // With a pause, checkpoints cover every record read before the stop;
    // without one, the restart replays from wherever the last one was.
    for (stop_at, wait) in [(1_200, Duration::from_millis(200)), (1_700, Duration::ZERO)] {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let out = dir.path().join("out.csv");
        let first = run(
            config(2, Some(&state)),
            |env| Readings { stop_at: Some((stop_at, env.stop_flag(), wait)), ..Readings::new(n) },
            &out,
        );
        assert!(!first.already_finished);
        let partial = lines(&out);
        assert!(partial.len() < expected.len(), "the first run stopped early");
        let second = run(config(2, Some(&state)), |_| Readings::new(n), &out);
        if !wait.is_zero() {
            assert!(second.resumed_from.is_some(), "checkpoints completed before the stop");
            assert!(!partial.is_empty());
        }
        assert_eq!(lines(&out), expected, "stop at {stop_at}");
        // A third run finds the job finished and leaves the output alone.
        let third = run(config(2, Some(&state)), |_| Readings::new(n), &out);
        assert!(third.already_finished);
        assert_eq!(lines(&out), expected);
    }
}

/// Counts per key with a tiny TTL: a pause longer than the TTL restarts
/// the count.
#[derive(Clone, Default)]
struct TtlCount {
    count: Option<ValueState<u64>>,
}

impl KeyedProcessFunction<String, Reading> for TtlCount {
    type Out = String;

    fn open(&mut self, states: &mut StateRegistry<String>) -> Result<()> {
        self.count = Some(states.value(Some(StateTtl::after_write(Duration::from_millis(40))))?);
        Ok(())
    }

    fn process(&mut self, r: Reading, ctx: &mut ProcessContext<'_, String, String>) -> Result<()> {
        let Some(count) = self.count else {
            return Ok(());
        };
        let n = count.value(ctx)?.unwrap_or(0) + 1;
        count.update(ctx, n)?;
        ctx.emit(format!("{},{n}", r.0));
        if r.0 == "timer" {
            let at = ctx.current_processing_time() + 30;
            ctx.timers().register_processing_time(at)?;
        }
        Ok(())
    }

    fn on_timer(&mut self, ts: i64, domain: TimeDomain, ctx: &mut ProcessContext<'_, String, String>) -> Result<()> {
        if domain == TimeDomain::ProcessingTime {
            // Fired on time, not only when the next input came.
            let prompt = ctx.current_processing_time() - ts < 300;
            ctx.emit_at(format!("fired,{},prompt={prompt}", ctx.key()), ts);
        }
        Ok(())
    }
}

/// Emits its items in groups, pausing `gap` between groups.
struct Bursts {
    groups: Vec<Vec<Reading>>,
    gap: Duration,
    paused: Option<Instant>,
}

impl Source for Bursts {
    type Item = Reading;

    fn poll_batch(&mut self, out: &mut Vec<Reading>, _max: usize) -> Result<Poll> {
        if let Some(t) = self.paused {
            if t.elapsed() < self.gap {
                return Ok(Poll::Pending);
            }
        }
        if self.groups.is_empty() {
            return Ok(Poll::End);
        }
        out.extend(self.groups.remove(0));
        self.paused = Some(Instant::now());
        Ok(Poll::Ready)
    }

    fn position(&self) -> Vec<u8> {
        Vec::new()
    }

    fn restore(&mut self, _position: &[u8]) -> Result<()> {
        Ok(())
    }
}

fn run_bursts(groups: Vec<Vec<Reading>>, gap: Duration) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.csv");
    let env = Env::new(JobConfig::new("ttl")).unwrap();
    // Event time stands still (every timestamp is 0), so during a gap no
    // watermark travels either.
    let wms = Watermarks::bounded_out_of_orderness(Duration::ZERO, |r: &Reading| r.1);
    env.source(Bursts { groups, gap, paused: None }, wms)
        .key_by(|r: &Reading| r.0.clone())
        .process(TtlCount::default())
        .sink(Sink::file(&out, |s: &String, buf: &mut Vec<u8>| {
            buf.extend_from_slice(s.as_bytes());
            buf.push(b'\n');
        }));
    env.execute().unwrap();
    std::fs::read_to_string(&out).unwrap().lines().map(str::to_string).collect()
}

#[test]
fn ttl_expires_state_after_a_pause() {
    let r = |s: &str| (s.to_string(), 0);
    let got = run_bursts(vec![vec![r("a"), r("a"), r("b"), r("a")], vec![r("a"), r("b")]], Duration::from_millis(250));
    assert_eq!(got, ["a,1", "a,2", "b,1", "a,3", "a,1", "b,1"]);
}

#[test]
fn processing_time_timer_fires_while_no_input_arrives() {
    let r = |s: &str| (s.to_string(), 0);
    // Nothing reaches the operator during the 600 ms gap: only the
    // deadline wakes it.
    let got = run_bursts(vec![vec![r("timer")], vec![r("late")]], Duration::from_millis(600));
    assert_eq!(got, ["timer,1", "fired,timer,prompt=true", "late,1"]);
}
