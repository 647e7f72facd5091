//! The JSON API (`/api/v1/...`) the page and `rivulet status` read. The
//! shapes are documented in the README; a cluster's coordinator will
//! serve the same documents with a `nodes` list covering every worker.

use super::view::{now, Now};
use super::{process, Shared};
use crate::role::Role;
use rivulet::metrics::TaskSnapshot;
use serde_json::{json, Value};
use std::time::{Instant, UNIX_EPOCH};

/// Counters at two sampling moments, for rates.
#[derive(Default)]
pub(crate) struct Rates {
    prev: Option<Sample>,
    last: Option<Sample>,
}

#[derive(Clone)]
struct Sample {
    at: Instant,
    records_in: u64,
    records_out: u64,
    /// Per task name: (records in, records out, ns blocked on backpressure).
    tasks: Vec<(String, u64, u64, u64)>,
}

impl Rates {
    pub(crate) fn sample(&mut self, now: &Now) {
        let tasks =
            now.tasks.iter().map(|(_, t)| (t.name.clone(), t.records_in, t.records_out, t.backpressure_ns)).collect();
        self.prev = self.last.take();
        self.last = Some(Sample {
            at: Instant::now(),
            records_in: now.totals.records_in,
            records_out: now.totals.records_out,
            tasks,
        });
    }

    /// Per second between the last two samples: (in, out, share of the
    /// time blocked on backpressure) of the job, or of the task `name`.
    fn per_second(&self, name: Option<&str>) -> (f64, f64, f64) {
        let (Some(p), Some(l)) = (&self.prev, &self.last) else { return (0.0, 0.0, 0.0) };
        let dt = l.at.duration_since(p.at).as_secs_f64();
        if dt <= 0.0 {
            return (0.0, 0.0, 0.0);
        }
        let (a, b) = match name {
            None => ((p.records_in, p.records_out, 0), (l.records_in, l.records_out, 0)),
            Some(n) => {
                let find = |s: &Sample| s.tasks.iter().find(|t| t.0 == n).map_or((0, 0, 0), |t| (t.1, t.2, t.3));
                (find(p), find(l))
            }
        };
        let d = |x: u64, y: u64| y.saturating_sub(x) as f64 / dt;
        (d(a.0, b.0), d(a.1, b.1), (d(a.2, b.2) / 1e9).min(1.0))
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn lag_seconds(wm: Option<i64>) -> Value {
    wm.map_or(Value::Null, |w| json!((now_ms() - w) as f64 / 1e3))
}

fn started_ms(shared: &Shared) -> i64 {
    shared.started_wall.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// `/api/v1/job`.
pub(crate) fn job(shared: &Shared, rates: &Rates) -> Value {
    let m = &shared.job.metrics;
    let n = now(shared);
    let s = n.totals;
    let c = m.checkpoint_log.totals();
    let (rin, rout, _) = rates.per_second(None);
    let mut tasks = n.tasks.clone();
    // Operators in the order of their ids: data-flow order for a chain.
    tasks.sort_by_key(|(_, t)| (t.vertex, t.subtask));
    let operators: Vec<Value> = tasks.iter().map(|(slot, t)| operator(*slot, t, rates)).collect();
    let edges: Vec<Value> = n.edges.iter().map(|(a, b)| json!({ "from": a, "to": b })).collect();
    let wm = n.watermark;
    json!({
        "name": shared.job.name,
        "role": role(shared),
        "state": shared.state().name(),
        "started_ms": started_ms(shared),
        "uptime_seconds": shared.started.elapsed().as_secs_f64(),
        "events": { "in": s.records_in, "out": s.records_out, "late": s.late, "malformed": s.bad_input },
        "rates": { "in_per_second": rin, "out_per_second": rout },
        "watermark_ms": wm,
        "watermark_lag_seconds": lag_seconds(wm),
        "checkpoints": {
            "completed": c.completed,
            "failed": c.failed,
            "last_complete_ms": c.last_complete_ms,
        },
        "operators": operators,
        "edges": edges,
        "cluster": n.cluster.as_ref().map(|cl| json!({
            "generation": cl.generation,
            "slots": cl.slots,
            "workers_alive": cl.alive(),
            "deployed": cl.deployed,
        })),
    })
}

fn role(shared: &Shared) -> &'static str {
    match shared.job.role {
        Role::Single => "single-process",
        Role::Coordinator(_) => "coordinator",
        Role::Worker { .. } => "worker",
    }
}

fn operator(slot: Option<u16>, t: &TaskSnapshot, rates: &Rates) -> Value {
    let (rin, rout, blocked) = rates.per_second(Some(&t.name));
    let lookups = t.cache_hits + t.cache_misses;
    json!({
        "operator": t.operator,
        "subtask": t.subtask,
        "task": t.name,
        "slot": slot,
        "records_in": t.records_in,
        "records_out": t.records_out,
        "in_per_second": rin,
        "out_per_second": rout,
        "backpressure_seconds": t.backpressure_ns as f64 / 1e9,
        "backpressure_ratio": blocked,
        "watermark_ms": t.watermark,
        "watermark_lag_seconds": lag_seconds(t.watermark),
        "state_cache_bytes": t.state_cache_bytes,
        "state_cache_hits": t.cache_hits,
        "state_cache_misses": t.cache_misses,
        "state_cache_hit_ratio": (lookups > 0).then(|| t.cache_hits as f64 / lookups as f64),
        "spilled_entries": t.spilled_entries,
        "mqtt": t.health.map(|h| json!({
            "connected": h.connected,
            "inflight": h.inflight,
            "redeliveries": h.redeliveries,
            "dead_letters": h.dead_letters,
            "reconnects": h.reconnects,
        })),
    })
}

/// `/api/v1/checkpoints`.
pub(crate) fn checkpoints(shared: &Shared) -> Value {
    let log = &shared.job.metrics.checkpoint_log;
    let t = log.totals();
    let history: Vec<Value> = log
        .history()
        .iter()
        .map(|r| {
            json!({
                "epoch": r.epoch,
                "status": r.status,
                "triggered_ms": r.triggered_ms,
                "duration_seconds": r.duration.map(|d| d.as_secs_f64()),
                "entries": r.entries,
                "bytes": r.bytes,
            })
        })
        .collect();
    json!({
        "completed": t.completed,
        "failed": t.failed,
        "duration_seconds_total": t.duration.as_secs_f64(),
        "bytes_total": t.bytes,
        "last_complete_ms": t.last_complete_ms,
        "history": history,
    })
}

/// `/api/v1/results`: the rows the sinks received last, split into the
/// job's columns (numbers where they parse as numbers). Written straight
/// into the body, row by row, so a full tap costs no tree of values.
pub(crate) fn results(shared: &Shared) -> Vec<u8> {
    let (rows, seen) = shared.job.metrics.results.rows();
    let cols = &shared.job.result_columns;
    let mut out = Vec::with_capacity(64 + rows.iter().map(|r| r.len() + 64).sum::<usize>());
    let head = json!({ "columns": cols, "capacity": rivulet::metrics::RESULTS_CAPACITY, "seen": seen });
    let head = head.to_string();
    // `{"capacity":..,"columns":..,"seen":..` then `,"rows":[...]}`.
    out.extend_from_slice(&head.as_bytes()[..head.len() - 1]);
    out.extend_from_slice(b",\"rows\":[");
    for (n, row) in rows.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        out.push(b'{');
        for (i, field) in row.split(',').enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let key = cols.get(i).map_or_else(|| format!("column_{i}"), |c| (*c).to_string());
            let _ = serde_json::to_writer(&mut out, &key);
            out.push(b':');
            let _ = match (field.parse::<i64>(), field.parse::<f64>()) {
                (Ok(v), _) => serde_json::to_writer(&mut out, &v),
                (_, Ok(v)) if v.is_finite() => serde_json::to_writer(&mut out, &v),
                _ => serde_json::to_writer(&mut out, field),
            };
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
    out
}

/// `/api/v1/nodes`: this process, and on a coordinator every worker slot
/// that joined (up or down, with its last report).
pub(crate) fn nodes(shared: &Shared) -> Value {
    let m = &shared.job.metrics;
    let mut this = json!({
        "id": match shared.job.role {
            Role::Single => "local".to_string(),
            Role::Coordinator(_) => "coordinator".to_string(),
            Role::Worker { slot } => format!("worker-{slot}"),
        },
        "host": process::hostname(),
        "pid": std::process::id(),
        "role": role(shared),
        "state": "up",
        "started_ms": started_ms(shared),
        "uptime_seconds": shared.started.elapsed().as_secs_f64(),
        "rss_bytes": process::rss_bytes(),
        "cpu_seconds": process::cpu_seconds(),
        "tasks": m.tasks().len(),
    });
    if let Role::Worker { slot } = shared.job.role {
        this["slot"] = json!(slot);
        this["state_disk_bytes"] = json!(m.state_disk_bytes());
    }
    let mut nodes = vec![this];
    if let Role::Coordinator(view) = &shared.job.role {
        let c = view.snapshot();
        let now = now_ms();
        for w in &c.workers {
            let r = w.report.as_ref();
            nodes.push(json!({
                "id": format!("worker-{}", w.slot),
                "role": "worker",
                "slot": w.slot,
                "state": if w.alive { "up" } else { "down" },
                "address": w.peer,
                "data_address": w.data_addr,
                "http": r.and_then(|r| r.http.clone()),
                "joined_ms": w.joined_ms,
                "last_heartbeat_ms": w.last_heard_ms,
                "last_heartbeat_age_seconds": (now - w.last_heard_ms).max(0) as f64 / 1e3,
                "lost_ms": w.lost_ms,
                "generation": r.map(|r| r.generation),
                "deployed": c.deployed.contains(&w.slot) && w.alive,
                "rss_bytes": r.and_then(|r| r.rss_bytes),
                "cpu_seconds": r.and_then(|r| r.cpu_seconds),
                "state_disk_bytes": r.and_then(|r| r.state_disk_bytes),
                "records_in": r.map(|r| r.records_in),
                "records_out": r.map(|r| r.records_out),
                "tasks": r.map(|r| r.tasks.iter().map(|t| t.name.clone()).collect::<Vec<_>>()),
            }));
        }
        // Slots that never joined are listed as down too.
        for slot in 0..c.slots {
            if !c.workers.iter().any(|w| w.slot == slot) {
                nodes.push(json!({
                    "id": format!("worker-{slot}"), "role": "worker", "slot": slot, "state": "down",
                    "address": null, "last_heartbeat_ms": null, "generation": null, "deployed": false,
                }));
            }
        }
    }
    json!({ "nodes": nodes })
}
