//! The checkpoint control plane as typed messages between the coordinator
//! and its tasks.
//!
//! Every message from a task names its sender ([`TaskId`]) and the job's
//! [`Generation`], so the coordinator can tell a duplicate, late, foreign
//! or fenced ack from one it expects. Fields are fixed-width integers: the
//! same messages travel between nodes of mixed word size.

use serde::{Deserialize, Serialize};
use std::fmt;

/// One task of the job: a vertex of the job graph (the operator id of the
/// task's head) and the index of its parallel instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(crate) struct TaskId {
    pub(crate) vertex: u16,
    pub(crate) subtask: u16,
}

impl TaskId {
    /// Instance `subtask` of `vertex`. Parallelism is validated to be at
    /// most the number of key groups (a `u16`), so the index always fits;
    /// an index that did not would saturate rather than wrap onto another
    /// task's id.
    pub(crate) fn new(vertex: u16, subtask: usize) -> Self {
        Self { vertex, subtask: u16::try_from(subtask).unwrap_or(u16::MAX) }
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.vertex, self.subtask)
    }
}

/// The job's incarnation. A recovery starts a new generation; anything
/// stamped with an older one comes from before it and is ignored, so a
/// paused or partitioned task can never complete an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(crate) struct Generation(pub(crate) u64);

impl Generation {
    /// The generation of a job started in one process.
    pub(crate) const FIRST: Generation = Generation(1);
}

/// What a task staged for an epoch: the entries of its barrier's write
/// batch (state deltas, source position, sink outbox).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub(crate) struct Staged {
    pub(crate) entries: u64,
}

/// A task's report that it staged its delta of `epoch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Ack {
    pub(crate) task: TaskId,
    pub(crate) generation: Generation,
    pub(crate) epoch: u64,
    pub(crate) staged: Staged,
    /// Set by a source whose last barrier this was: once the epoch is
    /// complete, later epochs no longer wait for it.
    pub(crate) finished_source: bool,
}

/// Task → coordinator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum ToCoordinator {
    /// The task staged an epoch.
    Ack(Ack),
    /// The task ended normally.
    Done { task: TaskId, generation: Generation },
    /// The task failed.
    Failed { task: TaskId, generation: Generation, reason: String },
    /// Wake: a sink holds results of `epoch` and wants it checkpointed as
    /// soon as the minimum pause allows, instead of waiting out the
    /// interval.
    Want { epoch: u64 },
    /// Wake: a source reached the end of its input (or was stopped) and
    /// wants an epoch after `after`, the last one it injected, to carry its
    /// last barrier.
    FinalWanted { task: TaskId, after: u64 },
}

/// Coordinator → tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ToTask {
    /// Sources inject the barrier of `epoch`.
    Trigger { generation: Generation, epoch: u64 },
    /// `epoch` is complete: sources may release the input it covers.
    Complete { generation: Generation, epoch: u64 },
    /// `epoch` will never complete: its staged deltas must not be applied.
    Abort { generation: Generation, epoch: u64 },
}

impl ToCoordinator {
    /// The same report stamped with `generation` (a worker forwards its
    /// tasks' reports under the generation of its deployment).
    pub(crate) fn in_generation(self, g: Generation) -> Self {
        match self {
            ToCoordinator::Ack(a) => ToCoordinator::Ack(Ack { generation: g, ..a }),
            ToCoordinator::Done { task, .. } => ToCoordinator::Done { task, generation: g },
            ToCoordinator::Failed { task, reason, .. } => ToCoordinator::Failed { task, generation: g, reason },
            other => other,
        }
    }
}
