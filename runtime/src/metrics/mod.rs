//! Counters a running job exposes: to `rivulet bench`, the job's summary,
//! and the HTTP endpoint of the binaries (Prometheus metrics, JSON API).
//!
//! Everything here is updated once per batch, checkpoint or connection
//! event with relaxed atomics (or a short lock per checkpoint), never per
//! record; readers take copies.

mod checkpoints;
mod results;
mod task;

pub use checkpoints::{CheckpointLog, CheckpointRecord, CheckpointTotals, CHECKPOINT_HISTORY};
pub use results::{ResultsTap, RESULTS_CAPACITY};
pub use task::{SourceHealth, TaskMetrics, TaskSnapshot};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Job-wide counters, updated with relaxed atomics once per batch.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Records read by sources.
    pub records_in: AtomicU64,
    /// Records handed to sinks.
    pub records_out: AtomicU64,
    /// Records dropped (or side-output) because their window was late.
    pub late: AtomicU64,
    /// Malformed input records skipped.
    pub bad_input: AtomicU64,
    /// Checkpoints completed.
    pub checkpoints: AtomicU64,
    /// Current event-time watermark of the sinks' input (an `i64` stored as
    /// its bits; see [`Metrics::watermark_ms`]).
    pub watermark: AtomicU64,
    /// Checkpoints begun and completed, with their durations and sizes.
    pub checkpoint_log: CheckpointLog,
    /// The latest rows the sinks received, once enabled.
    pub results: ResultsTap,
    tasks: Mutex<Vec<Arc<TaskMetrics>>>,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// See [`Metrics::records_in`].
    pub records_in: u64,
    /// See [`Metrics::records_out`].
    pub records_out: u64,
    /// See [`Metrics::late`].
    pub late: u64,
    /// See [`Metrics::bad_input`].
    pub bad_input: u64,
    /// See [`Metrics::checkpoints`].
    pub checkpoints: u64,
}

impl Metrics {
    /// Reads every counter.
    pub fn snapshot(&self) -> Snapshot {
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Snapshot {
            records_in: r(&self.records_in),
            records_out: r(&self.records_out),
            late: r(&self.late),
            bad_input: r(&self.bad_input),
            checkpoints: r(&self.checkpoints),
        }
    }

    /// The sinks' watermark in ms since the Unix epoch; `None` before the
    /// first one (or while it is below the epoch).
    pub fn watermark_ms(&self) -> Option<i64> {
        let wm = self.watermark.load(Ordering::Relaxed) as i64;
        (wm > 0 && wm < crate::time::MAX_WATERMARK).then_some(wm)
    }

    /// Registers the counters of one task (`operator`, its `subtask`).
    pub fn task(&self, name: &str, operator: &str, subtask: u16) -> Arc<TaskMetrics> {
        let t = Arc::new(TaskMetrics::new(name, operator, subtask));
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.push(t.clone());
        }
        t
    }

    /// Copies of every task's counters, in the order they were registered.
    pub fn tasks(&self) -> Vec<TaskSnapshot> {
        self.tasks.lock().map(|t| t.iter().map(|t| t.snapshot()).collect()).unwrap_or_default()
    }
}
