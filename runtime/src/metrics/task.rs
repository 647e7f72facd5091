//! Per-task counters: records in and out, watermark, keyed state, and the
//! health of a connected source.

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

/// What a source connected to a broker reports about its connection
/// (see [`crate::source::Source::health`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceHealth {
    /// The connection is up.
    pub connected: bool,
    /// Messages received and durable whose acks the broker has not been
    /// sent yet.
    pub inflight: u64,
    /// Redelivered messages recognised and dropped.
    pub redeliveries: u64,
    /// Malformed messages published to the dead-letter topic.
    pub dead_letters: u64,
    /// Connections made after the first one.
    pub reconnects: u64,
}

/// The counters of one task (a thread running an operator chain).
#[derive(Debug)]
pub struct TaskMetrics {
    name: String,
    operator: String,
    vertex: u16,
    subtask: u16,
    /// Records the task received (a source: read from its input).
    pub records_in: AtomicU64,
    /// Records the task handed on (a source: to its chain; a sink: to its
    /// output; an operator: results it emitted).
    pub records_out: AtomicU64,
    /// The task's current watermark (ms; `i64::MIN` before the first).
    pub watermark: AtomicI64,
    /// Estimated bytes of keyed state cached in memory.
    pub state_cache_bytes: AtomicU64,
    /// Keyed state entries written out of the cache to disk.
    pub spilled_entries: AtomicU64,
    /// Keyed state lookups answered from the cache.
    pub cache_hits: AtomicU64,
    /// Keyed state lookups that read the disk store.
    pub cache_misses: AtomicU64,
    /// Nanoseconds the task spent waiting for room in a full downstream
    /// queue (shared with the senders of its output edges).
    backpressure_ns: Arc<AtomicU64>,
    has_health: AtomicBool,
    connected: AtomicBool,
    inflight: AtomicU64,
    redeliveries: AtomicU64,
    dead_letters: AtomicU64,
    reconnects: AtomicU64,
}

/// A copy of a task's counters (also what a worker reports to the
/// coordinator: fixed-width fields only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSnapshot {
    /// The task's name (e.g. `source-1`, `window-3-0`).
    pub name: String,
    /// The operator it runs (e.g. `source-1`, `window-3`, `sink-4`).
    pub operator: String,
    /// The operator's vertex id in the job graph (see [`super::Metrics::edges`]).
    pub vertex: u16,
    /// Which parallel instance of the operator.
    pub subtask: u16,
    /// See [`TaskMetrics::records_in`].
    pub records_in: u64,
    /// See [`TaskMetrics::records_out`].
    pub records_out: u64,
    /// See [`TaskMetrics::watermark`]; `None` before the first.
    pub watermark: Option<i64>,
    /// See [`TaskMetrics::state_cache_bytes`].
    pub state_cache_bytes: u64,
    /// See [`TaskMetrics::spilled_entries`].
    pub spilled_entries: u64,
    /// See [`TaskMetrics::cache_hits`].
    pub cache_hits: u64,
    /// See [`TaskMetrics::cache_misses`].
    pub cache_misses: u64,
    /// Nanoseconds blocked on backpressure (a full downstream queue).
    pub backpressure_ns: u64,
    /// The source's connection, for a source that has one.
    pub health: Option<SourceHealth>,
}

impl TaskMetrics {
    pub(super) fn new(name: &str, operator: &str, vertex: u16, subtask: u16, backpressure: Arc<AtomicU64>) -> Self {
        Self {
            name: name.to_string(),
            operator: operator.to_string(),
            vertex,
            subtask,
            records_in: AtomicU64::new(0),
            records_out: AtomicU64::new(0),
            watermark: AtomicI64::new(i64::MIN),
            state_cache_bytes: AtomicU64::new(0),
            spilled_entries: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
            cache_misses: AtomicU64::new(0),
            backpressure_ns: backpressure,
            has_health: AtomicBool::new(false),
            connected: AtomicBool::new(false),
            inflight: AtomicU64::new(0),
            redeliveries: AtomicU64::new(0),
            dead_letters: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
        }
    }

    /// Records the connection health a source reported.
    pub fn set_health(&self, h: SourceHealth) {
        self.connected.store(h.connected, Ordering::Relaxed);
        self.inflight.store(h.inflight, Ordering::Relaxed);
        self.redeliveries.store(h.redeliveries, Ordering::Relaxed);
        self.dead_letters.store(h.dead_letters, Ordering::Relaxed);
        self.reconnects.store(h.reconnects, Ordering::Relaxed);
        self.has_health.store(true, Ordering::Relaxed);
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> TaskSnapshot {
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let wm = self.watermark.load(Ordering::Relaxed);
        TaskSnapshot {
            name: self.name.clone(),
            operator: self.operator.clone(),
            vertex: self.vertex,
            subtask: self.subtask,
            records_in: r(&self.records_in),
            records_out: r(&self.records_out),
            watermark: (wm > crate::time::IDLE_MARK && wm < crate::time::MAX_WATERMARK).then_some(wm),
            state_cache_bytes: r(&self.state_cache_bytes),
            spilled_entries: r(&self.spilled_entries),
            cache_hits: r(&self.cache_hits),
            cache_misses: r(&self.cache_misses),
            backpressure_ns: r(&self.backpressure_ns),
            health: self.has_health.load(Ordering::Relaxed).then(|| SourceHealth {
                connected: self.connected.load(Ordering::Relaxed),
                inflight: r(&self.inflight),
                redeliveries: r(&self.redeliveries),
                dead_letters: r(&self.dead_letters),
                reconnects: r(&self.reconnects),
            }),
        }
    }
}
