//! The checkpoint coordinator of a process (a cluster of one).

use crate::error::{Error, Result};
use crate::state::Store;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A task's report to the coordinator.
#[derive(Debug)]
pub(crate) enum Ack {
    /// The task staged its delta of `epoch` durably. `finished` is set by a
    /// source whose last barrier this was.
    Staged { epoch: u64, finished_source: bool },
    /// The task ended normally.
    Done,
    /// The task failed.
    Failed { task: String, reason: String },
    /// A source wants its last epoch now (it reached its end or was
    /// stopped): wakes the coordinator instead of waiting out the interval.
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
}

impl CoordHandle {
    pub(crate) fn ack(&self, epoch: u64, finished_source: bool) {
        let _ = self.acks.send(Ack::Staged { epoch, finished_source });
    }
}

/// Counts acks, completes epochs in order, commits sinks.
pub(crate) struct Coordinator {
    store: Option<Arc<Store>>,
    acks: Receiver<Ack>,
    handle: CoordHandle,
    interval: Duration,
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
            },
            interval,
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
        let mut staged_early: BTreeMap<u64, usize> = BTreeMap::new();
        let mut completed = 0u64;
        loop {
            if checkpointing && in_flight.is_none() && live_sources > 0 {
                let due = last_trigger.elapsed() >= self.interval
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
                    last_trigger = Instant::now();
                }
            }
            if done == self.tasks {
                return Ok(completed);
            }
            let wait = self.interval.saturating_sub(last_trigger.elapsed()).max(Duration::from_millis(1));
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
        store.apply_epoch(epoch)?;
        for c in &mut self.committers {
            c.commit(store, epoch)?;
        }
        self.completed.store(epoch, Ordering::Release);
        self.metrics.checkpoints.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(epoch, finished, "epoch complete");
        Ok(())
    }
}
