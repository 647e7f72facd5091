//! A checkpoint that does not complete within `checkpoint_timeout` (a task
//! hangs) is aborted: the job stops with an error naming the task that did
//! not ack, and a restart resumes from the last complete checkpoint with
//! nothing lost and nothing duplicated.

use rivulet::source::Generator;
use rivulet::state::{StateRegistry, ValueState};
use rivulet::{Env, JobConfig, KeyedProcessFunction, ProcessContext, Result, Sink, Watermarks};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const RECORDS: u64 = 3_000;
/// The record the hanging run stops at.
const HANG_AT: u64 = 1_000;

/// Emits `key,i` per record; when `hang` is set, holds the task at record
/// `HANG_AT` until `release` is set (a task stuck in user code).
#[derive(Clone)]
struct Echo {
    hang: bool,
    release: Arc<AtomicBool>,
    seen: Option<ValueState<u64>>,
}

impl KeyedProcessFunction<u64, (u64, u64)> for Echo {
    type Out = String;

    fn open(&mut self, states: &mut StateRegistry<u64>) -> Result<()> {
        self.seen = Some(states.value(None)?);
        Ok(())
    }

    fn process(&mut self, r: (u64, u64), ctx: &mut ProcessContext<'_, u64, String>) -> Result<()> {
        if self.hang && r.1 == HANG_AT {
            while !self.release.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let Some(seen) = self.seen else { return Ok(()) };
        let n = seen.value(ctx)?.unwrap_or(0) + 1;
        seen.update(ctx, n)?;
        ctx.emit(format!("{},{},{n}", r.0, r.1));
        Ok(())
    }
}

fn config(dir: &Path, timeout: Duration) -> JobConfig {
    let mut c = JobConfig::new("checkpoint-timeout");
    c.state_dir = Some(dir.to_path_buf());
    c.batch_size = 50;
    c.checkpoint_interval = Duration::from_millis(20);
    c.checkpoint_timeout = timeout;
    c
}

fn run(env: Env, echo: Echo, rate: Option<f64>, out: &Path) -> rivulet::Result<rivulet::JobOutcome> {
    let mut src = Generator::new(Some(RECORDS), |i| (i % 7, i));
    if let Some(r) = rate {
        src = src.with_rate(r);
    }
    env.source(src, Watermarks::bounded_out_of_orderness(Duration::ZERO, |r: &(u64, u64)| r.1 as i64))
        .key_by(|r: &(u64, u64)| r.0)
        .process(echo)
        .sink(Sink::file(out, |s: &String, buf: &mut Vec<u8>| {
            buf.extend_from_slice(s.as_bytes());
            buf.push(b'\n');
        }));
    env.execute()
}

/// Guards the epoch timeout of the single-process coordinator: abort →
/// job error naming the task, restart → every record exactly once.
#[test]
fn a_hung_task_aborts_the_epoch_and_a_restart_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let out = dir.path().join("out.csv");
    let release = Arc::new(AtomicBool::new(false));

    let env = Env::new(config(&state, Duration::from_millis(300))).unwrap();
    let hung = Echo { hang: true, release: release.clone(), seen: None };
    let started = Instant::now();
    let err = run(env, hung, Some(10_000.0), &out).expect_err("the hung task must fail the job");
    let text = err.to_string();
    assert!(text.contains("checkpoint coordinator"), "{text}");
    assert!(text.contains("did not complete within the checkpoint timeout (300ms;"), "{text}");
    assert!(text.contains("process-"), "the message names the task that did not ack: {text}");
    assert!(started.elapsed() < Duration::from_secs(60), "aborted by the timeout, not by the end of input");
    release.store(true, Ordering::Release);

    // The first run's tasks wind down once released (they see the stop);
    // until they have, its state directory is locked.
    let deadline = Instant::now() + Duration::from_secs(60);
    let env = loop {
        match Env::new(config(&state, Duration::from_secs(600))) {
            Ok(env) => break env,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("state directory still unusable after the first run: {e}"),
        }
    };
    let echo = Echo { hang: false, release, seen: None };
    let outcome = run(env, echo, None, &out).unwrap();
    assert!(outcome.resumed_from.is_some(), "the first run completed checkpoints before the hang");

    let text = std::fs::read_to_string(&out).unwrap();
    let mut rows: Vec<(u64, u64, u64)> = text
        .lines()
        .map(|l| {
            let f: Vec<u64> = l.split(',').map(|x| x.parse().unwrap()).collect();
            (f[0], f[1], f[2])
        })
        .collect();
    rows.sort_by_key(|r| r.1);
    assert_eq!(rows.len() as u64, RECORDS, "every record once");
    for (i, (key, rec, n)) in rows.into_iter().enumerate() {
        let i = i as u64;
        assert_eq!((key, rec), (i % 7, i));
        assert_eq!(n, i / 7 + 1, "per-key count restored from the last complete checkpoint");
    }
}
