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
    /// When the worker process started (ms since the Unix epoch): another
    /// value is another process, whose counters start from zero.
    pub started_ms: i64,
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
            started_ms: crate::metrics::process::started_ms(),
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
    /// The job counters of its earlier processes (a worker restarted
    /// reports from zero), so the job's totals never step back.
    pub earlier: crate::metrics::Snapshot,
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

    /// The job's counters: for every slot, what its earlier processes
    /// counted plus its last report (a lost worker's last figures stay
    /// counted). They never step back, so they are Prometheus counters; a
    /// record replayed after a recovery counts again.
    pub fn totals(&self) -> crate::metrics::Snapshot {
        let mut s = crate::metrics::Snapshot::default();
        for w in &self.workers {
            s.records_in += w.earlier.records_in;
            s.records_out += w.earlier.records_out;
            s.late += w.earlier.late;
            s.bad_input += w.earlier.bad_input;
            if let Some(r) = &w.report {
                s.records_in += r.records_in;
                s.records_out += r.records_out;
                s.late += r.late;
                s.bad_input += r.bad_input;
            }
        }
        s
    }
}

/// A worker serving on every interface (`http://0.0.0.0:PORT/`) is
/// reached at the address its control link comes from.
fn reachable(http: &str, peer: &str) -> String {
    let Some(rest) = http.strip_prefix("http://") else { return http.to_owned() };
    let (host, tail) = rest.split_once('/').map_or((rest, ""), |(h, t)| (h, t));
    let Ok(addr) = host.parse::<std::net::SocketAddr>() else { return http.to_owned() };
    let Ok(peer) = peer.parse::<std::net::SocketAddr>() else { return http.to_owned() };
    if !addr.ip().is_unspecified() {
        return http.to_owned();
    }
    format!("http://{}/{tail}", std::net::SocketAddr::new(peer.ip(), addr.port()))
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
                earlier: crate::metrics::Snapshot::default(),
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
            let Some(w) = g.workers.get_mut(&slot) else { return };
            w.last_heard_ms = now;
            let Some(mut r) = report else { return };
            if let Some(prev) = w.report.take().filter(|p| p.started_ms != r.started_ms) {
                w.earlier.records_in += prev.records_in;
                w.earlier.records_out += prev.records_out;
                w.earlier.late += prev.late;
                w.earlier.bad_input += prev.bad_input;
            }
            r.http = r.http.map(|h| reachable(&h, &w.peer));
            w.report = Some(r);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn report(started_ms: i64, records_in: u64, http: Option<&str>) -> WorkerReport {
        WorkerReport { started_ms, records_in, records_out: 1, http: http.map(str::to_owned), ..Default::default() }
    }

    #[test]
    fn a_restarted_worker_does_not_take_the_totals_back() {
        let v = ClusterView::new();
        v.joined(0, "127.0.0.1:7001", "127.0.0.1:40000");
        v.joined(1, "127.0.0.1:7002", "127.0.0.1:40001");
        v.heard(0, Some(report(10, 500, None)));
        v.heard(1, Some(report(11, 300, None)));
        v.heard(1, Some(report(11, 700, None)));
        assert_eq!(v.snapshot().totals().records_in, 1200);
        // Slot 1 killed and started again: its new process counts from zero.
        v.lost(1);
        v.joined(1, "127.0.0.1:7002", "127.0.0.1:40002");
        v.heard(1, Some(report(99, 40, None)));
        let t = v.snapshot().totals();
        assert_eq!(t.records_in, 500 + 700 + 40);
        assert_eq!(t.records_out, 3);
        // The same process reporting again is not counted twice.
        v.heard(1, Some(report(99, 90, None)));
        assert_eq!(v.snapshot().totals().records_in, 500 + 700 + 90);
        // A heartbeat without a report changes nothing.
        v.heard(0, None);
        assert_eq!(v.snapshot().totals().records_in, 500 + 700 + 90);
    }

    #[test]
    fn a_worker_serving_on_every_interface_is_reached_at_its_peer_address() {
        let v = ClusterView::new();
        v.joined(0, "10.0.0.5:7001", "10.0.0.5:41234");
        v.joined(1, "10.0.0.6:7001", "10.0.0.6:41235");
        v.heard(0, Some(report(1, 0, Some("http://0.0.0.0:9100/"))));
        v.heard(1, Some(report(1, 0, Some("http://127.0.0.1:9100/"))));
        let s = v.snapshot();
        let http: Vec<_> = s.workers.iter().map(|w| w.report.as_ref().and_then(|r| r.http.clone())).collect();
        assert_eq!(http, [Some("http://10.0.0.5:9100/".to_owned()), Some("http://127.0.0.1:9100/".to_owned())]);
    }
}
