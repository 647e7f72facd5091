//! Tasks: the threads that run chains of operators.
//!
//! A task is a head (a source, or a set of input channels) followed by a
//! chain of [`Consumer`]s that ends in an exchange (channels to the next
//! tasks) or a sink. Batches cross a consumer with one dynamic call; records
//! inside a batch go through inlined closures.

mod chain;
mod exchange;
mod input;
mod source;

pub use chain::Consumer;
pub(crate) use chain::Unplaced;
pub(crate) use chain::{FilterC, FlatMapC, MapC};
pub(crate) use exchange::{Forward, Partition};
pub(crate) use input::run_input_task;
pub(crate) use source::run_source_task;

use crate::checkpoint::{CoordHandle, TaskId};
use crate::metrics::{Metrics, TaskMetrics};
use crate::state::{Backing, Store};
use std::sync::Arc;

/// What every task knows about its job.
#[derive(Clone)]
pub struct TaskCtx {
    /// The task's name for logs and errors.
    pub name: String,
    /// The task's id in checkpoint messages.
    pub(crate) task: TaskId,
    pub(crate) store: Option<Arc<Store>>,
    pub(crate) coord: Option<CoordHandle>,
    /// Epoch the next checkpoint will have.
    pub(crate) next_epoch: u64,
    /// The job restarted from a checkpoint.
    pub(crate) restored: bool,
    pub(crate) metrics: Arc<Metrics>,
    /// This task's own counters (registered in `metrics`).
    pub(crate) task_metrics: Arc<TaskMetrics>,
    pub(crate) key_groups: u16,
    pub(crate) cache_bytes: usize,
    /// In a cluster: where sources mirror their ingest logs.
    pub(crate) mirror: Option<crate::state::MirrorSpec>,
}

impl TaskCtx {
    pub(crate) fn backing(&self) -> Option<Backing> {
        self.store.as_ref().map(|s| Backing { store: s.clone(), base: self.restored })
    }
}
