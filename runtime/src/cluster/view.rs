//! What the coordinator knows of the job as a whole, for its HTTP
//! endpoint: the worker slots and their health, the counters each worker
//! reports about its tasks (about once a second, on the control link), the
//! job graph, and the coordinator's own checkpoint history and results.
//!
//! The coordinator writes it; readers take copies. Nothing here steers
//! the job.

use crate::metrics::{Metrics, TaskSnapshot};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// How often a worker reports its counters.
pub const REPORT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// A worker's counters, as it sends them to the coordinator (fixed-width
/// fields only: ARMv7 and AArch64 workers mix).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerReport {
    /// The generation its tasks run in (0: none deployed).
    pub generation: u64,
    /// Records its sources read (over this process's life).
    pub records_in: u64,
    /// Records its sinks received.
    pub records_out: u64,
    /// Records dropped as late.
    pub late: u64,
    /// Malformed input records skipped.
    pub bad_input: u64,
    /// Its resident memory.
    pub rss_bytes: Option<u64>,
    /// Its CPU time.
    pub cpu_seconds: Option<f64>,
    /// Bytes of its state directory on disk.
    pub state_disk_bytes: Option<u64>,
    /// Where it serves its own `/metrics` (`--http`), if it does.
    pub http: Option<String>,
    /// Its tasks' counters.
    pub tasks: Vec<TaskSnapshot>,
}

impl WorkerReport {
    /// The report of a worker whose job counters are `m`.
    pub(crate) fn of(m: &Metrics, generation: u64, http: Option<String>) -> WorkerReport {
        let s = m.snapshot();
        WorkerReport {
            generation,
            records_in: s.records_in,
            records_out: s.records_out,
            late: s.late,
            bad_input: s.bad_input,
            rss_bytes: crate::metrics::process::rss_bytes(),
            cpu_seconds: crate::metrics::process::cpu_seconds(),
            state_disk_bytes: m.state_disk_bytes(),
            http,
            tasks: m.tasks(),
        }
    }
}

/// One worker slot as the coordinator sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerView {
    /// Its slot.
    pub slot: u16,
    /// Where it listens for data links.
    pub data_addr: String,
    /// The address its control link comes from.
    pub peer: String,
    /// Its control link is up.
    pub alive: bool,
    /// When it (last) joined, ms since the Unix epoch.
    pub joined_ms: i64,
    /// When the coordinator last heard from it (any message, the
    /// once-a-second report included), ms since the Unix epoch.
    pub last_heard_ms: i64,
    /// When its link was lost, if it is down.
    pub lost_ms: Option<i64>,
    /// Its last report, if any arrived.
    pub report: Option<WorkerReport>,
}

#[derive(Debug, Default)]
struct Inner {
    generation: u64,
    /// Slots of the current generation's deployment.
    deployed: Vec<u16>,
    workers: BTreeMap<u16, WorkerView>,
    slots: u16,
    edges: Vec<(String, String)>,
}

/// The coordinator's view of the job; share it with the HTTP endpoint.
#[derive(Debug, Default)]
pub struct ClusterView {
    /// The coordinator's own counters: checkpoint history (it runs the
    /// checkpoints) and the results it publishes.
    pub metrics: Arc<Metrics>,
    inner: Mutex<Inner>,
}

/// A copy of the view at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterSnapshot {
    /// The job's current generation (0 before the first deployment).
    pub generation: u64,
    /// Slots of the current deployment.
    pub deployed: Vec<u16>,
    /// The job's worker slots (`0..slots`).
    pub slots: u16,
    /// Every slot that ever joined, by slot.
    pub workers: Vec<WorkerView>,
    /// The job graph's edges between operators.
    pub edges: Vec<(String, String)>,
}

impl ClusterSnapshot {
    /// Workers whose control link is up.
    pub fn alive(&self) -> usize {
        self.workers.iter().filter(|w| w.alive).count()
    }

    /// The tasks of the current deployment, with the slot each runs on:
    /// from the live workers' reports of the current generation.
    pub fn tasks(&self) -> Vec<(u16, TaskSnapshot)> {
        let mut out = Vec::new();
        for w in self.workers.iter().filter(|w| w.alive) {
            let Some(r) = w.report.as_ref().filter(|r| r.generation == self.generation) else { continue };
            out.extend(r.tasks.iter().map(|t| (w.slot, t.clone())));
        }
        out
    }

    /// The job's counters: the sum of every worker's last report (a lost
    /// worker's last figures stay counted).
    pub fn totals(&self) -> crate::metrics::Snapshot {
        let mut s = crate::metrics::Snapshot::default();
        for r in self.workers.iter().filter_map(|w| w.report.as_ref()) {
            s.records_in += r.records_in;
            s.records_out += r.records_out;
            s.late += r.late;
            s.bad_input += r.bad_input;
        }
        s
    }
}

fn now_ms() -> i64 {
    crate::metrics::unix_ms()
}

impl ClusterView {
    /// An empty view.
    pub fn new() -> Arc<ClusterView> {
        Arc::new(ClusterView::default())
    }

    fn with(&self, f: impl FnOnce(&mut Inner)) {
        if let Ok(mut g) = self.inner.lock() {
            f(&mut g);
        }
    }

    /// A copy of everything.
    pub fn snapshot(&self) -> ClusterSnapshot {
        let Ok(g) = self.inner.lock() else { return ClusterSnapshot::default() };
        ClusterSnapshot {
            generation: g.generation,
            deployed: g.deployed.clone(),
            slots: g.slots,
            workers: g.workers.values().cloned().collect(),
            edges: g.edges.clone(),
        }
    }

    pub(crate) fn set_graph(&self, slots: u16, edges: Vec<(String, String)>) {
        self.with(|g| {
            g.slots = slots;
            g.edges = edges;
        });
    }

    pub(crate) fn joined(&self, slot: u16, data_addr: &str, peer: &str) {
        let now = now_ms();
        self.with(|g| {
            let w = g.workers.entry(slot).or_insert_with(|| WorkerView {
                slot,
                data_addr: String::new(),
                peer: String::new(),
                alive: true,
                joined_ms: now,
                last_heard_ms: now,
                lost_ms: None,
                report: None,
            });
            w.data_addr = data_addr.to_owned();
            w.peer = peer.to_owned();
            w.alive = true;
            w.joined_ms = now;
            w.last_heard_ms = now;
            w.lost_ms = None;
        });
    }

    pub(crate) fn heard(&self, slot: u16, report: Option<WorkerReport>) {
        let now = now_ms();
        self.with(|g| {
            if let Some(w) = g.workers.get_mut(&slot) {
                w.last_heard_ms = now;
                if report.is_some() {
                    w.report = report;
                }
            }
        });
    }

    pub(crate) fn lost(&self, slot: u16) {
        let now = now_ms();
        self.with(|g| {
            if let Some(w) = g.workers.get_mut(&slot).filter(|w| w.alive) {
                w.alive = false;
                w.lost_ms = Some(now);
            }
        });
    }

    pub(crate) fn deployed(&self, generation: u64, slots: Vec<u16>) {
        self.with(|g| {
            g.generation = generation;
            g.deployed = slots;
        });
    }
}
