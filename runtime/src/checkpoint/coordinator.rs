//! The checkpoint coordinator of a process (a cluster of one).

use crate::error::{Error, Result};
use crate::state::Store;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// A task's report to the coordinator.
#[derive(Debug)]
pub(crate) enum Ack {
    /// The task staged its delta of `epoch` (in the node's journal, made
    /// durable by the complete marker's sync). `finished` is set by a
    /// source whose last barrier this was.
    Staged { epoch: u64, finished_source: bool },
    /// The task ended normally.
    Done,
    /// The task failed.
    Failed { task: String, reason: String },
    /// A source wants its last epoch now (it reached its end or was
    /// stopped), or a sink wants the epoch holding its results
    /// ([`CoordHandle::want`]): wakes the coordinator instead of waiting
    /// out the interval.
    Wake,
}

/// Publishes what a sink staged for an epoch, once the epoch is complete.
pub(crate) trait Committer: Send {
    /// Brings the sink's output in line with the committed epochs after a
    /// restart.
    fn recover(&mut self, store: &Store, complete: Option<u64>) -> Result<()>;
    /// Publishes epoch `epoch`.
    fn commit(&mut self, store: &Store, epoch: u64) -> Result<()>;
}

/// What tasks hold to talk to the coordinator.
#[derive(Clone)]
pub(crate) struct CoordHandle {
    pub(crate) acks: Sender<Ack>,
    /// The epoch sources should inject next (0: none yet).
    pub(crate) trigger: Arc<AtomicU64>,
    /// Sources that reached the end of their input and want a last epoch.
    pub(crate) final_requests: Arc<AtomicUsize>,
    /// Set when the job is being stopped (e.g. Ctrl-C).
    pub(crate) stop: Arc<AtomicBool>,
    /// The last complete epoch (0: none).
    pub(crate) completed: Arc<AtomicU64>,
    /// The highest epoch a task asked to have checkpointed now, without
    /// waiting out the interval (0: none).
    pub(crate) wanted: Arc<AtomicU64>,
    /// Source threads, unparked when an epoch is triggered so that an idle
    /// source injects its barrier at once instead of after its nap.
    pub(crate) sources: Arc<Mutex<Vec<Thread>>>,
}

impl CoordHandle {
    pub(crate) fn ack(&self, epoch: u64, finished_source: bool) {
        let _ = self.acks.send(Ack::Staged { epoch, finished_source });
    }

    /// Asks for `epoch` to be triggered as soon as the minimum pause after
    /// the previous checkpoint allows (a sink holding results of `epoch`
    /// does this, so they are committed and published promptly).
    pub(crate) fn want(&self, epoch: u64) {
        if self.wanted.fetch_max(epoch, Ordering::AcqRel) < epoch {
            let _ = self.acks.send(Ack::Wake);
        }
    }

    /// Registers the calling thread as a source to wake at each trigger.
    pub(crate) fn register_source_thread(&self) {
        if let Ok(mut s) = self.sources.lock() {
            s.push(std::thread::current());
        }
    }
}

/// Counts acks, completes epochs in order, commits sinks.
pub(crate) struct Coordinator {
    store: Option<Arc<Store>>,
    acks: Receiver<Ack>,
    handle: CoordHandle,
    interval: Duration,
    /// Least time from a checkpoint's completion to the next one a sink
    /// asks for.
    min_pause: Duration,
    tasks: usize,
    sources: usize,
    next_epoch: u64,
    committers: Vec<Box<dyn Committer>>,
    pub(crate) completed: Arc<AtomicU64>,
    metrics: Arc<crate::metrics::Metrics>,
}

impl Coordinator {
    pub(crate) fn new(
        store: Option<Arc<Store>>,
        interval: Duration,
        min_pause: Duration,
        next_epoch: u64,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Self {
        let (tx, rx) = crossbeam_channel::unbounded();
        let completed = Arc::new(AtomicU64::new(next_epoch.saturating_sub(1)));
        Self {
            store,
            acks: rx,
            handle: CoordHandle {
                acks: tx,
                trigger: Arc::new(AtomicU64::new(0)),
                final_requests: Arc::new(AtomicUsize::new(0)),
                stop: Arc::new(AtomicBool::new(false)),
                completed: completed.clone(),
                wanted: Arc::new(AtomicU64::new(0)),
                sources: Arc::new(Mutex::new(Vec::new())),
            },
            interval,
            min_pause,
            tasks: 0,
            sources: 0,
            next_epoch,
            committers: Vec::new(),
            completed,
            metrics,
        }
    }

    pub(crate) fn handle(&self) -> CoordHandle {
        self.handle.clone()
    }

    pub(crate) fn add_task(&mut self, source: bool) {
        self.tasks += 1;
        if source {
            self.sources += 1;
        }
    }

    pub(crate) fn add_committer(&mut self, c: Box<dyn Committer>) {
        self.committers.push(c);
    }

    /// Publishes sink output of epochs that completed before a crash.
    pub(crate) fn recover(&mut self, complete: Option<u64>) -> Result<()> {
        if let Some(store) = &self.store {
            for c in &mut self.committers {
                c.recover(store, complete)?;
            }
            // The sinks now stand where `complete` left them, whether or
            // not they had committed it before a crash.
            if let Some(c) = complete {
                store.seal_checkpoint(c)?;
            }
        }
        Ok(())
    }

    /// Runs until every task is done or one fails. Returns the number of
    /// epochs completed.
    pub(crate) fn run(mut self) -> Result<u64> {
        let checkpointing = self.store.is_some();
        let mut live_sources = self.sources;
        let mut done = 0usize;
        let mut in_flight: Option<(u64, usize)> = None; // (epoch, acks missing)
        let mut finished_in_flight = 0usize;
        let mut last_trigger = Instant::now();
        // When the last epoch completed (start: long enough ago).
        let mut last_complete: Option<Instant> = None;
        let mut staged_early: BTreeMap<u64, usize> = BTreeMap::new();
        let mut completed = 0u64;
        loop {
            // Time until a requested epoch may start (None: none requested).
            let mut requested_in = None;
            if checkpointing && in_flight.is_none() && live_sources > 0 {
                if self.handle.wanted.load(Ordering::Acquire) >= self.next_epoch {
                    let since = last_complete.map_or(self.min_pause, |t| t.elapsed());
                    requested_in = Some(self.min_pause.saturating_sub(since));
                }
                let due = last_trigger.elapsed() >= self.interval
                    || requested_in.is_some_and(|d| d.is_zero())
                    || self.handle.final_requests.load(Ordering::Acquire) > 0
                    || self.handle.stop.load(Ordering::Acquire);
                if due {
                    let epoch = self.next_epoch;
                    self.next_epoch += 1;
                    // Every non-source task and every live source acks.
                    let expected = self.tasks - self.sources + live_sources;
                    let early = staged_early.remove(&epoch).unwrap_or(0);
                    in_flight = Some((epoch, expected - early));
                    self.handle.trigger.store(epoch, Ordering::Release);
                    if let Ok(sources) = self.handle.sources.lock() {
                        sources.iter().for_each(Thread::unpark);
                    }
                    last_trigger = Instant::now();
                    requested_in = None;
                }
            }
            if done == self.tasks {
                return Ok(completed);
            }
            // Everything else that needs the coordinator (acks, requests,
            // sources finishing) arrives on the channel.
            let wait = if in_flight.is_some() || !checkpointing || live_sources == 0 {
                self.interval
            } else {
                let to_interval = self.interval.saturating_sub(last_trigger.elapsed());
                requested_in.map_or(to_interval, |d| d.min(to_interval)).max(Duration::from_micros(50))
            };
            let ack = match self.acks.recv_timeout(wait) {
                Ok(a) => a,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return Ok(completed),
            };
            match ack {
                Ack::Failed { task, reason } => {
                    self.handle.stop.store(true, Ordering::Release);
                    return Err(Error::Task { task, reason });
                }
                Ack::Done => done += 1,
                Ack::Wake => {}
                Ack::Staged { epoch, finished_source } => {
                    if finished_source {
                        finished_in_flight += 1;
                    }
                    match &mut in_flight {
                        Some((e, missing)) if *e == epoch => *missing -= 1,
                        _ => *staged_early.entry(epoch).or_default() += 1,
                    }
                }
            }
            if let Some((epoch, 0)) = in_flight {
                live_sources -= finished_in_flight;
                finished_in_flight = 0;
                // A stopped job is not finished: its next run goes on.
                let stopped = self.handle.stop.load(Ordering::Acquire);
                self.complete(epoch, live_sources == 0 && !stopped)?;
                completed += 1;
                in_flight = None;
                last_complete = Some(Instant::now());
                if self.handle.final_requests.load(Ordering::Acquire) > 0 {
                    // Sources waiting to finish get the next epoch at once.
                    last_trigger = Instant::now() - self.interval;
                }
            }
        }
    }

    fn complete(&mut self, epoch: u64, finished: bool) -> Result<()> {
        let Some(store) = &self.store else { return Ok(()) };
        store.mark_complete(epoch, finished)?;
        // Results first: they are what someone waits for. Applying the
        // staged deltas is idempotent and redone by recovery if need be.
        for c in &mut self.committers {
            c.commit(store, epoch)?;
        }
        store.seal_checkpoint(epoch)?;
        store.apply_epoch(epoch)?;
        self.completed.store(epoch, Ordering::Release);
        self.metrics.checkpoints.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(epoch, finished, "epoch complete");
        Ok(())
    }
}
