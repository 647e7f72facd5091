//! The checkpoint coordinator's decisions as a pure state machine.
//!
//! Inputs are [`Input`]s stamped with the time on the caller's clock (a
//! [`Duration`] since the coordinator started: real in the driver, fake in
//! tests); outputs are [`Action`]s for the driver to carry out in order.
//! Nothing here touches threads, channels, atomics or the disk.
//!
//! The rules: an epoch is triggered every `interval` after the previous
//! trigger, at once when a source wants its last epoch or the job is being
//! stopped, and when a sink wants an epoch, as soon as `min_pause` has
//! passed since the last completion. One epoch is in flight at a time; it
//! completes when every expected task (every non-source task and every
//! source that has not finished) acked it exactly once, and is aborted when
//! that takes longer than `epoch_timeout`.

use super::protocol::{Ack, Generation, TaskId, ToCoordinator};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Timing and mode of a coordinator.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    /// Time between triggers.
    pub(crate) interval: Duration,
    /// Least time from a completion to an epoch a sink asked for.
    pub(crate) min_pause: Duration,
    /// Time an epoch may take from trigger to its last ack.
    pub(crate) epoch_timeout: Duration,
    /// False when the job runs without a state directory: no epochs.
    pub(crate) checkpointing: bool,
}

/// What happens to the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Input {
    /// Time passed (the driver's wait ended with nothing received).
    Tick,
    /// A task's message.
    Report(ToCoordinator),
    /// The job is being stopped (e.g. Ctrl-C): a last epoch records where
    /// the input was left, and the job is not marked finished.
    StopRequested,
}

/// Why an ack was ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Ignored {
    /// The task already acked this epoch.
    Duplicate,
    /// The epoch already completed or was aborted.
    Late,
    /// No epoch with that number was triggered yet.
    NotTriggered,
    /// The sender is not a task of this job, or not one this epoch waits
    /// for (a source that already finished).
    UnknownTask,
    /// The sender belongs to an older generation of the job.
    OldGeneration,
}

/// What the driver must do, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// Tell sources to inject the barrier of `epoch`.
    Trigger { epoch: u64 },
    /// Every expected task acked `epoch`: write its complete marker (the
    /// commit point). `finished`: the job reached the end of its input.
    WriteCompleteMarker { epoch: u64, finished: bool },
    /// After the marker: sinks publish `epoch`, staged deltas are applied,
    /// sources release the input it covers.
    NotifyCommit { epoch: u64 },
    /// `epoch` did not complete in time; `missing` never acked it.
    Abort { epoch: u64, missing: Vec<TaskId> },
    /// A message was ignored (logged and counted by the driver).
    Ignore { task: Option<TaskId>, epoch: Option<u64>, why: Ignored },
    /// Every task ended: the job is over.
    Finish,
    /// A task failed: stop the job.
    Fail { task: TaskId, reason: String },
}

#[derive(Debug)]
struct InFlight {
    epoch: u64,
    triggered_at: Duration,
    expected: BTreeSet<TaskId>,
    acked: BTreeSet<TaskId>,
    /// Sources whose last barrier this epoch carries.
    finishing: Vec<TaskId>,
}

#[derive(Debug, Clone, Copy, Default)]
struct TaskState {
    source: bool,
    /// A source whose last barrier is in a complete epoch.
    finished: bool,
    done: bool,
}

/// The coordinator's state.
#[derive(Debug)]
pub(crate) struct Machine {
    timing: Timing,
    generation: Generation,
    tasks: BTreeMap<TaskId, TaskState>,
    next_epoch: u64,
    in_flight: Option<InFlight>,
    last_trigger: Duration,
    last_complete: Option<Duration>,
    /// The highest epoch a sink asked for.
    wanted: u64,
    /// A source waits for an epoch after the last one triggered.
    final_wanted: bool,
    stopped: bool,
    completed: u64,
    ignored: BTreeMap<Ignored, u64>,
    over: bool,
}

impl Machine {
    /// A machine whose first epoch will be `next_epoch`, started at time
    /// zero of its clock.
    pub(crate) fn new(timing: Timing, generation: Generation, next_epoch: u64) -> Self {
        Self {
            timing,
            generation,
            tasks: BTreeMap::new(),
            next_epoch,
            in_flight: None,
            last_trigger: Duration::ZERO,
            last_complete: None,
            wanted: 0,
            final_wanted: false,
            stopped: false,
            completed: 0,
            ignored: BTreeMap::new(),
            over: false,
        }
    }

    /// Registers a task (before the first input). False when a task with
    /// that id is already registered: two tasks under one id would let an
    /// epoch complete with one of them not staged.
    pub(crate) fn add_task(&mut self, task: TaskId, source: bool) -> bool {
        if self.tasks.contains_key(&task) {
            return false;
        }
        self.tasks.insert(task, TaskState { source, ..TaskState::default() });
        true
    }

    /// Epochs completed so far.
    pub(crate) fn completed(&self) -> u64 {
        self.completed
    }

    /// Messages ignored so far, by reason.
    pub(crate) fn ignored(&self, why: Ignored) -> u64 {
        self.ignored.get(&why).copied().unwrap_or(0)
    }

    /// The generation the machine accepts messages of.
    pub(crate) fn generation(&self) -> Generation {
        self.generation
    }

    /// When the machine next has something to do without any input (a
    /// trigger or a timeout), on its clock; `None`: only an input can
    /// change anything.
    pub(crate) fn next_deadline(&self) -> Option<Duration> {
        if self.over {
            return None;
        }
        if let Some(f) = &self.in_flight {
            return Some(f.triggered_at.saturating_add(self.timing.epoch_timeout));
        }
        if !self.timing.checkpointing || self.live_sources() == 0 {
            return None;
        }
        let interval = self.last_trigger.saturating_add(self.timing.interval);
        if self.wanted < self.next_epoch {
            return Some(interval);
        }
        let pause = self.last_complete.map_or(Duration::ZERO, |t| t.saturating_add(self.timing.min_pause));
        Some(interval.min(pause))
    }

    /// Feeds `input` at time `now`; returns what to do.
    pub(crate) fn step(&mut self, now: Duration, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        if self.over {
            return out;
        }
        match input {
            Input::Tick => {}
            Input::StopRequested => self.stopped = true,
            Input::Report(msg) => self.report(msg, &mut out),
        }
        if !self.over {
            self.advance(now, &mut out);
        }
        out
    }

    fn live_sources(&self) -> usize {
        self.tasks.values().filter(|t| t.source && !t.finished).count()
    }

    fn ignore(&mut self, task: Option<TaskId>, epoch: Option<u64>, why: Ignored, out: &mut Vec<Action>) {
        *self.ignored.entry(why).or_default() += 1;
        out.push(Action::Ignore { task, epoch, why });
    }

    fn report(&mut self, msg: ToCoordinator, out: &mut Vec<Action>) {
        match msg {
            ToCoordinator::Ack(ack) => self.ack(ack, out),
            ToCoordinator::Done { task, generation } => {
                if generation != self.generation {
                    return self.ignore(Some(task), None, Ignored::OldGeneration, out);
                }
                let Some(t) = self.tasks.get_mut(&task) else {
                    return self.ignore(Some(task), None, Ignored::UnknownTask, out);
                };
                if t.done {
                    return self.ignore(Some(task), None, Ignored::Duplicate, out);
                }
                t.done = true;
            }
            ToCoordinator::Failed { task, generation, reason } => {
                if generation != self.generation {
                    return self.ignore(Some(task), None, Ignored::OldGeneration, out);
                }
                if !self.tasks.contains_key(&task) {
                    return self.ignore(Some(task), None, Ignored::UnknownTask, out);
                }
                self.over = true;
                out.push(Action::Fail { task, reason });
            }
            ToCoordinator::Want { epoch } => self.wanted = self.wanted.max(epoch),
            ToCoordinator::FinalWanted { task, after } => {
                if !self.tasks.get(&task).is_some_and(|t| t.source) {
                    return self.ignore(Some(task), Some(after), Ignored::UnknownTask, out);
                }
                // An epoch after `after` already triggered carries the
                // source's last barrier; otherwise the next one must come
                // at once.
                if after + 1 >= self.next_epoch {
                    self.final_wanted = true;
                }
            }
        }
    }

    fn ack(&mut self, ack: Ack, out: &mut Vec<Action>) {
        let Ack { task, generation, epoch, finished_source, .. } = ack;
        if generation != self.generation {
            return self.ignore(Some(task), Some(epoch), Ignored::OldGeneration, out);
        }
        if !self.tasks.contains_key(&task) {
            return self.ignore(Some(task), Some(epoch), Ignored::UnknownTask, out);
        }
        let Some(f) = self.in_flight.as_mut().filter(|f| f.epoch == epoch) else {
            let why = if epoch >= self.next_epoch { Ignored::NotTriggered } else { Ignored::Late };
            return self.ignore(Some(task), Some(epoch), why, out);
        };
        if !f.expected.contains(&task) {
            return self.ignore(Some(task), Some(epoch), Ignored::UnknownTask, out);
        }
        if !f.acked.insert(task) {
            return self.ignore(Some(task), Some(epoch), Ignored::Duplicate, out);
        }
        if finished_source {
            f.finishing.push(task);
        }
    }

    fn advance(&mut self, now: Duration, out: &mut Vec<Action>) {
        self.complete_if_acked(now, out);
        self.abort_if_late(now, out);
        self.trigger_if_due(now, out);
        if self.tasks.values().all(|t| t.done) {
            self.over = true;
            out.push(Action::Finish);
        }
    }

    fn complete_if_acked(&mut self, now: Duration, out: &mut Vec<Action>) {
        let Some(f) = self.in_flight.take_if(|f| f.acked.len() == f.expected.len()) else { return };
        for s in &f.finishing {
            if let Some(t) = self.tasks.get_mut(s) {
                t.finished = true;
            }
        }
        // A stopped job is not finished: its next run goes on.
        let finished = self.live_sources() == 0 && !self.stopped;
        out.push(Action::WriteCompleteMarker { epoch: f.epoch, finished });
        out.push(Action::NotifyCommit { epoch: f.epoch });
        self.completed += 1;
        self.last_complete = Some(now);
    }

    fn abort_if_late(&mut self, now: Duration, out: &mut Vec<Action>) {
        let timeout = self.timing.epoch_timeout;
        let Some(f) = self.in_flight.take_if(|f| now.saturating_sub(f.triggered_at) >= timeout) else { return };
        let missing = f.expected.difference(&f.acked).copied().collect();
        out.push(Action::Abort { epoch: f.epoch, missing });
        // The next epoch comes an interval later, not at once: whatever
        // held this one back gets time to recover.
        self.last_trigger = now;
    }

    fn trigger_if_due(&mut self, now: Duration, out: &mut Vec<Action>) {
        if !self.timing.checkpointing || self.in_flight.is_some() || self.live_sources() == 0 {
            return;
        }
        let since_complete = self.last_complete.map_or(self.timing.min_pause, |t| now.saturating_sub(t));
        let requested = self.wanted >= self.next_epoch && since_complete >= self.timing.min_pause;
        let due = now.saturating_sub(self.last_trigger) >= self.timing.interval
            || requested
            || self.final_wanted
            || self.stopped;
        if !due {
            return;
        }
        let epoch = self.next_epoch;
        self.next_epoch += 1;
        let expected = self.tasks.iter().filter(|(_, t)| !t.source || !t.finished).map(|(id, _)| *id).collect();
        self.in_flight =
            Some(InFlight { epoch, triggered_at: now, expected, acked: BTreeSet::new(), finishing: Vec::new() });
        self.final_wanted = false;
        self.last_trigger = now;
        out.push(Action::Trigger { epoch });
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
