//! The checkpoint coordinator of a process (a cluster of one): a driver
//! that feeds the [`Machine`] the tasks' messages, the stop flag and the
//! time, and carries out its actions on the node's store and sinks.

use super::machine::{Action, Input, Machine, Timing};
use super::protocol::{Ack, Generation, Staged, TaskId, ToCoordinator, ToTask};
use crate::error::{Error, Result};
use crate::state::Store;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// Shortest wait for a trigger that is nearly due (avoids spinning).
const MIN_WAIT: Duration = Duration::from_micros(50);

/// Publishes what a sink staged for an epoch, once the epoch is complete.
pub(crate) trait Committer: Send {
    /// Brings the sink's output in line with the committed epochs after a
    /// restart.
    fn recover(&mut self, store: &Store, complete: Option<u64>) -> Result<()>;
    /// Publishes epoch `epoch`.
    fn commit(&mut self, store: &Store, epoch: u64) -> Result<()>;
}

/// What tasks hold to talk to the coordinator. Messages up travel as
/// [`ToCoordinator`] on a channel; in one process the messages down
/// ([`ToTask`]) land in atomics the tasks read between batches.
#[derive(Clone)]
pub(crate) struct CoordHandle {
    acks: Sender<ToCoordinator>,
    generation: Generation,
    /// The epoch sources should inject next (0: none yet).
    pub(crate) trigger: Arc<AtomicU64>,
    /// Set when the job is being stopped (e.g. Ctrl-C), or by an aborted
    /// epoch.
    pub(crate) stop: Arc<AtomicBool>,
    /// The last complete epoch (0: none).
    pub(crate) completed: Arc<AtomicU64>,
    /// The epoch aborted (0: none); the coordinator stopped with it.
    pub(crate) aborted: Arc<AtomicU64>,
    /// The oldest checkpoint pinned by a savepoint ([`NOT_PINNED`]: none):
    /// sources keep their input from its positions on.
    pub(crate) pinned: Arc<AtomicU64>,
    /// Set when the tasks are stopped with no coordinator left to trigger
    /// a final epoch (a cluster worker ending its generation): stopped
    /// sources do not wait for one.
    pub(crate) abandoned: Arc<AtomicBool>,
    /// The highest epoch a sink asked for (0: none): asking again for it
    /// sends nothing.
    wanted: Arc<AtomicU64>,
    /// Source threads, unparked when an epoch is triggered so that an idle
    /// source injects its barrier at once instead of after its nap.
    sources: Arc<Mutex<Vec<Thread>>>,
}

/// [`CoordHandle::pinned`] when no checkpoint is pinned.
pub(crate) const NOT_PINNED: u64 = u64::MAX;

impl CoordHandle {
    /// Sets the oldest checkpoint a savepoint pins (`None`: none).
    pub(crate) fn set_pinned(&self, epoch: Option<u64>) {
        self.pinned.store(epoch.unwrap_or(NOT_PINNED), Ordering::Release);
    }

    /// The oldest checkpoint a savepoint pins.
    pub(crate) fn pinned(&self) -> Option<u64> {
        Some(self.pinned.load(Ordering::Acquire)).filter(|&e| e != NOT_PINNED)
    }

    fn send(&self, msg: ToCoordinator) {
        // The coordinator gone means the job is over; nobody to tell.
        let _ = self.acks.send(msg);
    }

    /// Task `task` staged `staged` for `epoch`; `finished_source` when it
    /// is a source and this was its last barrier.
    pub(crate) fn ack(&self, task: TaskId, epoch: u64, staged: Staged, finished_source: bool) {
        self.send(ToCoordinator::Ack(Ack { task, generation: self.generation, epoch, staged, finished_source }));
    }

    /// Task `task` ended: `Ok` normally, `Err` with why it failed.
    pub(crate) fn ended(&self, task: TaskId, result: std::result::Result<(), String>) {
        let generation = self.generation;
        self.send(match result {
            Ok(()) => ToCoordinator::Done { task, generation },
            Err(reason) => ToCoordinator::Failed { task, generation, reason },
        });
    }

    /// Asks for `epoch` to be triggered as soon as the minimum pause after
    /// the previous checkpoint allows (a sink holding results of `epoch`
    /// does this, so they are committed and published promptly).
    pub(crate) fn want(&self, epoch: u64) {
        if self.wanted.fetch_max(epoch, Ordering::AcqRel) < epoch {
            self.send(ToCoordinator::Want { epoch });
        }
    }

    /// Source `task`, whose last barrier was `after`, wants an epoch for
    /// its final barrier now.
    pub(crate) fn want_final(&self, task: TaskId, after: u64) {
        self.send(ToCoordinator::FinalWanted { task, after });
    }

    /// Registers the calling thread as a source to wake at each trigger.
    pub(crate) fn register_source_thread(&self) {
        if let Ok(mut s) = self.sources.lock() {
            s.push(std::thread::current());
        }
    }

    /// Delivers a message to the tasks of this process.
    pub(crate) fn deliver(&self, msg: ToTask) {
        match msg {
            ToTask::Trigger { epoch, .. } => {
                self.trigger.store(epoch, Ordering::Release);
                if let Ok(sources) = self.sources.lock() {
                    sources.iter().for_each(Thread::unpark);
                }
            }
            ToTask::Complete { epoch, .. } => self.completed.store(epoch, Ordering::Release),
            // Tasks here cannot drop an epoch they staged (a sink's outbox
            // and the staged deltas are keyed by it): they stop, and the
            // next run restarts from the last complete checkpoint, where
            // recovery drops whatever the aborted epoch left.
            ToTask::Abort { epoch, .. } => {
                self.aborted.store(epoch, Ordering::Release);
                self.stop.store(true, Ordering::Release);
            }
        }
    }
}

/// Runs the state machine against the node's store and sinks.
pub(crate) struct Coordinator {
    store: Option<Arc<Store>>,
    acks: Receiver<ToCoordinator>,
    handle: CoordHandle,
    machine: Machine,
    interval: Duration,
    epoch_timeout: Duration,
    names: BTreeMap<TaskId, String>,
    committers: Vec<Box<dyn Committer>>,
    metrics: Arc<crate::metrics::Metrics>,
    /// When each epoch in progress was triggered.
    triggered: BTreeMap<u64, Instant>,
}

impl Coordinator {
    pub(crate) fn new(
        store: Option<Arc<Store>>,
        interval: Duration,
        min_pause: Duration,
        epoch_timeout: Duration,
        next_epoch: u64,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Self {
        let (tx, rx) = crossbeam_channel::unbounded();
        let timing = Timing { interval, min_pause, epoch_timeout, checkpointing: store.is_some() };
        let generation = Generation::FIRST;
        Self {
            store,
            acks: rx,
            handle: CoordHandle {
                acks: tx,
                generation,
                trigger: Arc::new(AtomicU64::new(0)),
                stop: Arc::new(AtomicBool::new(false)),
                completed: Arc::new(AtomicU64::new(next_epoch.saturating_sub(1))),
                pinned: Arc::new(AtomicU64::new(NOT_PINNED)),
                aborted: Arc::new(AtomicU64::new(0)),
                abandoned: Arc::new(AtomicBool::new(false)),
                wanted: Arc::new(AtomicU64::new(0)),
                sources: Arc::new(Mutex::new(Vec::new())),
            },
            machine: Machine::new(timing, generation, next_epoch),
            interval,
            epoch_timeout,
            names: BTreeMap::new(),
            committers: Vec::new(),
            metrics,
            triggered: BTreeMap::new(),
        }
    }

    pub(crate) fn handle(&self) -> CoordHandle {
        self.handle.clone()
    }

    /// Where the tasks' reports arrive, for a driver other than
    /// [`Coordinator::run`] (a worker of a cluster forwards them).
    pub(crate) fn into_reports(self) -> Receiver<ToCoordinator> {
        self.acks
    }

    pub(crate) fn add_task(&mut self, task: TaskId, name: String, source: bool) -> Result<()> {
        if !self.machine.add_task(task, source) {
            let other = self.name(task);
            return Err(Error::Task { task: name, reason: format!("has the checkpoint id {task} of task {other}") });
        }
        self.names.insert(task, name);
        Ok(())
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

    /// Runs until every task is done or one fails (or an epoch is
    /// aborted). Returns the number of epochs completed.
    pub(crate) fn run(mut self) -> Result<u64> {
        let start = Instant::now();
        let mut stop_seen = false;
        let mut input = Input::Tick;
        loop {
            if !stop_seen && self.handle.stop.load(Ordering::Acquire) {
                stop_seen = true;
                let actions = self.machine.step(start.elapsed(), Input::StopRequested);
                if self.carry_out(actions)? {
                    return Ok(self.machine.completed());
                }
            }
            let actions = self.machine.step(start.elapsed(), input);
            if self.carry_out(actions)? {
                return Ok(self.machine.completed());
            }
            let wait = self
                .machine
                .next_deadline()
                .map_or(self.interval, |d| d.saturating_sub(start.elapsed()).max(MIN_WAIT).min(self.interval));
            input = match self.acks.recv_timeout(wait) {
                Ok(msg) => {
                    if let ToCoordinator::Ack(a) = &msg {
                        self.metrics.checkpoint_log.staged(a.epoch, a.staged.entries);
                    }
                    Input::Report(msg)
                }
                Err(RecvTimeoutError::Timeout) => Input::Tick,
                Err(RecvTimeoutError::Disconnected) => return Ok(self.machine.completed()),
            };
        }
    }

    fn name(&self, task: TaskId) -> String {
        self.names.get(&task).cloned().unwrap_or_else(|| format!("task {task}"))
    }

    /// Carries out `actions` in order; true when the job is over.
    fn carry_out(&mut self, actions: Vec<Action>) -> Result<bool> {
        let generation = self.machine.generation();
        for action in actions {
            match action {
                Action::Trigger { epoch } => {
                    self.triggered.insert(epoch, Instant::now());
                    self.metrics.checkpoint_log.triggered(epoch);
                    self.handle.deliver(ToTask::Trigger { generation, epoch })
                }
                Action::WriteCompleteMarker { epoch, finished } => {
                    if let Some(store) = &self.store {
                        store.mark_complete(epoch, finished)?;
                    }
                    tracing::debug!(epoch, finished, "epoch complete");
                }
                Action::NotifyCommit { epoch } => self.commit(epoch)?,
                Action::Abort { epoch, missing } => {
                    let missing: Vec<String> = missing.into_iter().map(|t| self.name(t)).collect();
                    self.handle.deliver(ToTask::Abort { generation, epoch });
                    self.metrics.checkpoint_log.failed(epoch);
                    tracing::error!(epoch, missing = ?missing, "checkpoint timed out: epoch aborted, job stopped");
                    return Err(Error::Task {
                        task: "checkpoint coordinator".into(),
                        reason: format!(
                            "epoch {epoch} did not complete within the checkpoint timeout ({:?}; no ack from {}); \
                             a restart resumes from the last complete checkpoint",
                            self.epoch_timeout,
                            missing.join(", ")
                        ),
                    });
                }
                Action::Ignore { task, epoch, why } => {
                    let count = self.machine.ignored(why);
                    tracing::warn!(task = ?task, epoch = ?epoch, why = ?why, count, "checkpoint message ignored");
                }
                Action::Finish => return Ok(true),
                Action::Fail { task, reason } => {
                    self.handle.stop.store(true, Ordering::Release);
                    return Err(Error::Task { task: self.name(task), reason });
                }
            }
        }
        Ok(false)
    }

    /// Publishes a complete epoch: sinks first (their results are what
    /// someone waits for; applying the staged deltas is idempotent and
    /// redone by recovery if need be), then the deltas, then the sources
    /// learn they may release the input it covers.
    fn commit(&mut self, epoch: u64) -> Result<()> {
        let Some(store) = &self.store else { return Ok(()) };
        for c in &mut self.committers {
            c.commit(store, epoch)?;
        }
        store.seal_checkpoint(epoch)?;
        let applied = store.apply_epoch(epoch)?;
        self.handle.deliver(ToTask::Complete { generation: self.machine.generation(), epoch });
        self.metrics.checkpoints.fetch_add(1, Ordering::Relaxed);
        let took = self.triggered.remove(&epoch).map_or(Duration::ZERO, |t| t.elapsed());
        self.triggered.retain(|e, _| *e > epoch);
        self.metrics.checkpoint_log.completed(epoch, took, 0);
        for (e, bytes) in applied {
            self.metrics.checkpoint_log.applied(e, bytes);
        }
        Ok(())
    }
}
