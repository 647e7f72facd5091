//! Counters a running job exposes: to `rivulet bench`, the job's summary,
//! and the HTTP endpoint of the binaries (Prometheus metrics, JSON API).
//!
//! Everything here is updated once per batch, checkpoint or connection
//! event with relaxed atomics (or a short lock per checkpoint), never per
//! record; readers take copies.

mod checkpoints;
pub mod process;
mod results;
mod task;

pub(crate) use checkpoints::unix_ms;
pub use checkpoints::{CheckpointLog, CheckpointRecord, CheckpointTotals, CHECKPOINT_HISTORY};
pub use results::{ResultsTap, RESULTS_CAPACITY};
pub use task::{SourceHealth, TaskMetrics, TaskSnapshot};

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
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
    /// Backpressure time per task `(vertex, subtask)`, shared between the
    /// task's counters and the senders of its output edges.
    backpressure: Mutex<BTreeMap<(u16, u16), Arc<AtomicU64>>>,
    /// Edges of the job graph between vertices.
    edges: Mutex<BTreeSet<(u16, u16)>>,
    /// The operator label of each vertex.
    vertices: Mutex<BTreeMap<u16, String>>,
    /// The job's state directory, for its size on disk.
    state_dir: Mutex<Option<PathBuf>>,
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

    /// Registers the counters of one task (`operator`, vertex `vertex` of
    /// the job graph, its `subtask`).
    pub fn task(&self, name: &str, operator: &str, vertex: u16, subtask: u16) -> Arc<TaskMetrics> {
        let t = self.unlisted_task(name, operator, vertex, subtask);
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.push(t.clone());
        }
        t
    }

    /// Counters for a task that runs in another process of a cluster:
    /// its vertex is named for [`Metrics::edges`], the task itself is not
    /// listed.
    pub(crate) fn unlisted_task(&self, name: &str, operator: &str, vertex: u16, subtask: u16) -> Arc<TaskMetrics> {
        if let Ok(mut v) = self.vertices.lock() {
            v.entry(vertex).or_insert_with(|| operator.to_owned());
        }
        Arc::new(TaskMetrics::new(name, operator, vertex, subtask, self.backpressure(vertex, subtask)))
    }

    /// Forgets every task (a worker about to run another deployment);
    /// the job-wide counters go on.
    pub fn clear_tasks(&self) {
        if let Ok(mut t) = self.tasks.lock() {
            t.clear();
        }
        if let Ok(mut b) = self.backpressure.lock() {
            b.clear();
        }
        if let Ok(mut e) = self.edges.lock() {
            e.clear();
        }
        if let Ok(mut v) = self.vertices.lock() {
            v.clear();
        }
    }

    /// The counter of nanoseconds task `(vertex, subtask)` spends blocked
    /// on a full downstream queue.
    pub(crate) fn backpressure(&self, vertex: u16, subtask: u16) -> Arc<AtomicU64> {
        let Ok(mut b) = self.backpressure.lock() else { return Arc::default() };
        b.entry((vertex, subtask)).or_default().clone()
    }

    /// Records an edge of the job graph from vertex `from` to `to`.
    pub(crate) fn add_edge(&self, from: u16, to: u16) {
        if let Ok(mut e) = self.edges.lock() {
            e.insert((from, to));
        }
    }

    /// The job graph's edges between operators, by their labels (e.g.
    /// `source-1` → `window-3`).
    pub fn edges(&self) -> Vec<(String, String)> {
        let names = self.vertices.lock().map(|v| v.clone()).unwrap_or_default();
        let label = |v: u16| names.get(&v).cloned();
        let edges = self.edges.lock().map(|e| e.iter().copied().collect::<Vec<_>>()).unwrap_or_default();
        edges.into_iter().filter_map(|(a, b)| Some((label(a)?, label(b)?))).collect()
    }

    /// Sets the state directory whose size [`Metrics::state_disk_bytes`]
    /// reports.
    pub(crate) fn set_state_dir(&self, dir: &Path) {
        if let Ok(mut d) = self.state_dir.lock() {
            *d = Some(dir.to_path_buf());
        }
    }

    /// Bytes of the files under the state directory (`None` without one).
    pub fn state_disk_bytes(&self) -> Option<u64> {
        let dir = self.state_dir.lock().ok()?.clone()?;
        Some(process::dir_bytes(&dir))
    }

    /// Copies of every task's counters, in the order they were registered.
    pub fn tasks(&self) -> Vec<TaskSnapshot> {
        self.tasks.lock().map(|t| t.iter().map(|t| t.snapshot()).collect()).unwrap_or_default()
    }
}
