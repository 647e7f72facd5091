//! Commit on output: a sink receiving results starts a checkpoint for them
//! instead of waiting out the interval, and the results stay exactly those
//! of a run without checkpoints.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

use rivulet::aggregate::Count;
use rivulet::source::{Poll, Source};
use rivulet::window::Tumbling;
use rivulet::{Env, JobConfig, OutputMode, Sink, Watermarks, Windowed};
use std::path::Path;
use std::time::{Duration, Instant};

/// Readings in phases of one 1 s window each (key `i % 7`, 10 ms apart).
/// With `wait`, between phases it waits for the checkpoint the results of
/// the closed window asked for — up to a generous bound, so a missing
/// checkpoint shows as a failed assertion on the count, not as a hang.
struct Phased {
    wait: bool,
    next: u64,
    phases: u64,
    completed: u64,
    waiting_since: Option<Instant>,
}

const PER_PHASE: u64 = 100;

impl Source for Phased {
    type Item = (u8, i64);

    fn poll_batch(&mut self, out: &mut Vec<(u8, i64)>, max: usize) -> rivulet::Result<Poll> {
        if self.next >= self.phases * PER_PHASE {
            return Ok(Poll::End);
        }
        let phase = self.next / PER_PHASE;
        // Phase k's first readings close the window of phase k - 1; its
        // results start epoch k, whose completion lets the phase go on.
        if self.wait && phase > 0 && self.next % PER_PHASE == 1 && self.completed < phase {
            let since = *self.waiting_since.get_or_insert_with(Instant::now);
            if since.elapsed() < Duration::from_secs(20) {
                return Ok(Poll::Pending);
            }
        }
        self.waiting_since = None;
        let end = (self.next + max as u64).min((phase + 1) * PER_PHASE);
        // One reading at a time at a phase start, so the wait above sits
        // right after the window-closing reading.
        let end = if self.next.is_multiple_of(PER_PHASE) { self.next + 1 } else { end };
        for i in self.next..end {
            out.push(((i % 7) as u8, 1_700_000_000_000 + i as i64 * 10));
        }
        self.next = end;
        Ok(Poll::Ready)
    }

    fn position(&self) -> Vec<u8> {
        self.next.to_le_bytes().to_vec()
    }

    fn restore(&mut self, position: &[u8]) -> rivulet::Result<()> {
        let b: [u8; 8] = position
            .try_into()
            .map_err(|_| rivulet::Error::Task { task: "phased".into(), reason: "bad position".into() })?;
        self.next = u64::from_le_bytes(b);
        Ok(())
    }

    fn on_epoch_complete(&mut self, epoch: u64, _position: &[u8], _pinned: Option<u64>) -> rivulet::Result<()> {
        self.completed = self.completed.max(epoch);
        Ok(())
    }
}

fn run(mode: OutputMode, state: Option<&Path>, out: &Path) -> rivulet::JobOutcome {
    let mut cfg = JobConfig::new("output-mode");
    cfg.state_dir = state.map(Path::to_path_buf);
    // Only results (and the end of input) can start a checkpoint here.
    cfg.checkpoint_interval = Duration::from_secs(3600);
    cfg.output_mode = mode;
    cfg.min_checkpoint_pause = Duration::ZERO;
    cfg.batch_size = 16;
    let env = Env::new(cfg).unwrap();
    let wait = mode == OutputMode::CommitOnOutput;
    let src = Phased { wait, next: 0, phases: 6, completed: 0, waiting_since: None };
    env.source(src, Watermarks::bounded_out_of_orderness(Duration::ZERO, |r: &(u8, i64)| r.1))
        .key_by(|r: &(u8, i64)| r.0)
        .window(Tumbling::of(Duration::from_secs(1)).unwrap())
        .aggregate(Count)
        .sink(Sink::file(out, |w: &Windowed<u8, u64>, b: &mut Vec<u8>| {
            b.extend_from_slice(format!("{},{},{}\n", w.key, w.window.end, w.value).as_bytes());
        }));
    env.execute().unwrap()
}

fn rows(path: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_to_string(path).unwrap().lines().map(String::from).collect();
    v.sort();
    v
}

#[test]
fn results_start_a_checkpoint_and_stay_exact() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.csv");
    run(OutputMode::Checkpoint, None, &plain);
    let expected = rows(&plain);
    assert_eq!(expected.len(), 6 * 7, "six windows of seven keys");

    // At checkpoints with an hour's interval: the only checkpoint is the
    // last one, at the end of input.
    let periodic = dir.path().join("periodic.csv");
    let out = run(OutputMode::Checkpoint, Some(&dir.path().join("s1")), &periodic);
    assert_eq!(out.checkpoints, 1);
    assert_eq!(rows(&periodic), expected);

    // Commit on output: each window's results start an epoch (five close
    // before the end of input), plus the last one.
    let eager = dir.path().join("on-output.csv");
    let out = run(OutputMode::CommitOnOutput, Some(&dir.path().join("s2")), &eager);
    assert_eq!(out.checkpoints, 6);
    assert_eq!(rows(&eager), expected);
}

#[test]
fn eager_output_needs_one_deterministic_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = JobConfig::new("eager-parallel");
    cfg.state_dir = Some(dir.path().join("state"));
    cfg.output_mode = OutputMode::Eager;
    cfg.parallelism = 2;
    let env = Env::new(cfg).unwrap();
    let src = Phased { wait: false, next: 0, phases: 1, completed: 0, waiting_since: None };
    env.source(src, Watermarks::bounded_out_of_orderness(Duration::ZERO, |r: &(u8, i64)| r.1))
        .key_by(|r: &(u8, i64)| r.0)
        .window(Tumbling::of(Duration::from_secs(1)).unwrap())
        .aggregate(Count)
        .sink(Sink::file(dir.path().join("out.csv"), |w: &Windowed<u8, u64>, b: &mut Vec<u8>| {
            b.extend_from_slice(format!("{},{}\n", w.key, w.value).as_bytes());
        }));
    let err = env.execute().unwrap_err();
    assert!(matches!(err, rivulet::Error::Config { .. }), "{err}");
    assert!(err.to_string().contains("parallelism 1"), "{err}");
}

/// An output into memory that can be told to fail while publishing.
struct Memory {
    rows: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    fail: bool,
}

impl rivulet::sink::Output for Memory {
    fn recover(&mut self, committed: Option<&[u8]>) -> rivulet::Result<()> {
        let n = committed.map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or_default()) as usize);
        self.rows.lock().unwrap().truncate(n);
        Ok(())
    }
    fn publish(&mut self, bytes: &[u8]) -> rivulet::Result<()> {
        if self.fail {
            return Err(rivulet::Error::Task { task: "memory".into(), reason: "publish failed".into() });
        }
        self.rows.lock().unwrap().extend(String::from_utf8_lossy(bytes).lines().map(String::from));
        Ok(())
    }
    fn end_epoch(&mut self) -> rivulet::Result<Vec<u8>> {
        Ok((self.rows.lock().unwrap().len() as u64).to_le_bytes().to_vec())
    }
    fn direct(&mut self, bytes: &[u8]) -> rivulet::Result<()> {
        self.publish(bytes)
    }
    fn flush(&mut self) -> rivulet::Result<()> {
        Ok(())
    }
}

/// Regression: a job whose last epoch was marked complete (and the job
/// finished) but whose sink had not published it yet came back as
/// "already finished" and never published that epoch.
#[test]
fn a_finished_job_still_publishes_its_last_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.csv");
    run(OutputMode::Checkpoint, None, &plain);
    let expected = rows(&plain);
    let state = dir.path().join("s");
    let rows_out = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let job = |fail: bool| {
        let mut cfg = JobConfig::new("output-mode");
        cfg.state_dir = Some(state.clone());
        cfg.checkpoint_interval = Duration::from_secs(3600);
        cfg.batch_size = 16;
        let env = Env::new(cfg).unwrap();
        let src = Phased { wait: false, next: 0, phases: 6, completed: 0, waiting_since: None };
        let out = Memory { rows: rows_out.clone(), fail };
        env.source(src, Watermarks::bounded_out_of_orderness(Duration::ZERO, |r: &(u8, i64)| r.1))
            .key_by(|r: &(u8, i64)| r.0)
            .window(Tumbling::of(Duration::from_secs(1)).unwrap())
            .aggregate(Count)
            .sink(Sink::new(out, |w: &Windowed<u8, u64>, b: &mut Vec<u8>| {
                b.extend_from_slice(format!("{},{},{}\n", w.key, w.window.end, w.value).as_bytes());
            }));
        env.execute()
    };
    // The only epoch is the last one; it completes, then publishing fails.
    assert!(job(true).is_err());
    assert!(rows_out.lock().unwrap().is_empty());
    let outcome = job(false).unwrap();
    assert!(outcome.already_finished);
    let mut got = rows_out.lock().unwrap().clone();
    got.sort();
    assert_eq!(got, expected);
}
