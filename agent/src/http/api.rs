//! The JSON API (`/api/v1/...`) the page and `rivulet status` read. The
//! shapes are documented in the README; a cluster's coordinator will
//! serve the same documents with a `nodes` list covering every worker.

use super::{process, Shared};
use rivulet::metrics::{Metrics, TaskSnapshot};
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
    /// Per task name: (records in, records out).
    tasks: Vec<(String, u64, u64)>,
}

impl Rates {
    pub(crate) fn sample(&mut self, m: &Metrics) {
        let s = m.snapshot();
        let tasks = m.tasks().into_iter().map(|t| (t.name, t.records_in, t.records_out)).collect();
        self.prev = self.last.take();
        self.last = Some(Sample { at: Instant::now(), records_in: s.records_in, records_out: s.records_out, tasks });
    }

    /// Per second between the last two samples: (in, out) of the job, or
    /// of the task `name`.
    fn per_second(&self, name: Option<&str>) -> (f64, f64) {
        let (Some(p), Some(l)) = (&self.prev, &self.last) else { return (0.0, 0.0) };
        let dt = l.at.duration_since(p.at).as_secs_f64();
        if dt <= 0.0 {
            return (0.0, 0.0);
        }
        let (a, b) = match name {
            None => ((p.records_in, p.records_out), (l.records_in, l.records_out)),
            Some(n) => {
                let find = |s: &Sample| s.tasks.iter().find(|t| t.0 == n).map_or((0, 0), |t| (t.1, t.2));
                (find(p), find(l))
            }
        };
        (b.0.saturating_sub(a.0) as f64 / dt, b.1.saturating_sub(a.1) as f64 / dt)
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
    let s = m.snapshot();
    let c = m.checkpoint_log.totals();
    let (rin, rout) = rates.per_second(None);
    let mut tasks = m.tasks();
    // Operators in the order of their ids: data-flow order for a chain.
    tasks.sort_by_key(|t| (op_id(&t.operator), t.subtask));
    let operators: Vec<Value> = tasks.iter().map(|t| operator(t, rates)).collect();
    let wm = m.watermark_ms();
    json!({
        "name": shared.job.name,
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
    })
}

/// The number in an operator label (`window-3` → 3).
fn op_id(operator: &str) -> u32 {
    operator.rsplit_once('-').and_then(|(_, n)| n.parse().ok()).unwrap_or(u32::MAX)
}

fn operator(t: &TaskSnapshot, rates: &Rates) -> Value {
    let (rin, rout) = rates.per_second(Some(&t.name));
    json!({
        "operator": t.operator,
        "subtask": t.subtask,
        "task": t.name,
        "records_in": t.records_in,
        "records_out": t.records_out,
        "in_per_second": rin,
        "out_per_second": rout,
        "watermark_ms": t.watermark,
        "watermark_lag_seconds": lag_seconds(t.watermark),
        "state_cache_bytes": t.state_cache_bytes,
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

/// `/api/v1/nodes`: this process (a cluster's coordinator lists each
/// worker).
pub(crate) fn nodes(shared: &Shared) -> Value {
    json!({
        "nodes": [{
            "id": "local",
            "host": process::hostname(),
            "pid": std::process::id(),
            "role": "single-process",
            "state": "up",
            "started_ms": started_ms(shared),
            "uptime_seconds": shared.started.elapsed().as_secs_f64(),
            "rss_bytes": process::rss_bytes(),
            "cpu_seconds": process::cpu_seconds(),
            "tasks": shared.job.metrics.tasks().len(),
        }]
    })
}
