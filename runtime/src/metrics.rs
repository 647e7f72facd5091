//! Counters a running job exposes (to `rivulet bench`, logs, and later the
//! Prometheus endpoint).

use std::sync::atomic::{AtomicU64, Ordering};

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
    /// Current event-time watermark of the sinks' input.
    pub watermark: AtomicU64,
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
}
