//! `/metrics`: the job's counters in the Prometheus text format, encoded by
//! `prometheus-client` from a collector that reads them at each scrape.

use super::view::Now;
use super::{process, Shared};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::TypedMetric;
use prometheus_client::registry::Registry;
use rivulet::metrics::{Metrics, TaskSnapshot};
use std::sync::Arc;

/// The content type of the Prometheus text format.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Renders every metric.
pub(crate) fn render(shared: &Shared) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::default();
    let now = super::view::now(shared);
    let disk = match shared.job.role {
        crate::role::Role::Coordinator(_) => None,
        _ => shared.job.metrics.state_disk_bytes(),
    };
    registry.register_collector(Box::new(JobCollector { metrics: shared.job.metrics.clone(), now, disk }));
    let mut text = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)?;
    Ok(text)
}

struct JobCollector {
    /// This process's counters (the checkpoint log: a coordinator's own).
    metrics: Arc<Metrics>,
    /// The job as read for this scrape.
    now: Now,
    /// Bytes of this process's state directory.
    disk: Option<u64>,
}

impl std::fmt::Debug for JobCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobCollector").finish_non_exhaustive()
    }
}

fn now_s() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// One metric without labels.
fn one<M: EncodeMetric + TypedMetric>(e: &mut DescriptorEncoder<'_>, name: &str, help: &str, m: M) -> std::fmt::Result {
    let enc = e.encode_descriptor(name, help, None, m.metric_type())?;
    m.encode(enc)
}

/// One metric per task, labelled with its operator and subtask; tasks
/// `value` gives `None` for are left out.
/// In a cluster tasks also carry the worker `slot` they run on.
fn per_task<M: EncodeMetric + TypedMetric>(
    e: &mut DescriptorEncoder<'_>,
    tasks: &[(Option<u16>, TaskSnapshot)],
    name: &str,
    help: &str,
    value: impl Fn(&TaskSnapshot) -> Option<M>,
) -> std::fmt::Result {
    let values: Vec<(&Option<u16>, &TaskSnapshot, M)> =
        tasks.iter().filter_map(|(s, t)| value(t).map(|v| (s, t, v))).collect();
    let Some((_, _, first)) = values.first() else { return Ok(()) };
    let mut enc = e.encode_descriptor(name, help, None, first.metric_type())?;
    for (slot, t, v) in &values {
        let mut labels = vec![("operator", t.operator.clone()), ("subtask", t.subtask.to_string())];
        if let Some(s) = slot {
            labels.push(("slot", s.to_string()));
        }
        v.encode(enc.encode_family(&labels)?)?;
    }
    Ok(())
}

/// One metric per worker slot.
fn per_worker<M: EncodeMetric + TypedMetric>(
    e: &mut DescriptorEncoder<'_>,
    workers: &[rivulet::cluster::WorkerView],
    name: &str,
    help: &str,
    value: impl Fn(&rivulet::cluster::WorkerView) -> Option<M>,
) -> std::fmt::Result {
    let values: Vec<(u16, M)> = workers.iter().filter_map(|w| value(w).map(|v| (w.slot, v))).collect();
    let Some((_, first)) = values.first() else { return Ok(()) };
    let mut enc = e.encode_descriptor(name, help, None, first.metric_type())?;
    for (slot, v) in &values {
        v.encode(enc.encode_family(&[("slot", slot.to_string())])?)?;
    }
    Ok(())
}

impl Collector for JobCollector {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> std::fmt::Result {
        let m = &self.metrics;
        let s = self.now.totals;
        let tasks = &self.now.tasks;
        let now = now_s();
        let e = &mut e;
        // Counter names get `_total` from the encoder.
        one(e, "rivulet_job_records_in", "Records read by the job's sources.", ConstCounter::new(s.records_in))?;
        one(e, "rivulet_job_records_out", "Records handed to the job's sinks.", ConstCounter::new(s.records_out))?;
        one(e, "rivulet_late_records", "Records dropped because their window was late.", ConstCounter::new(s.late))?;
        one(e, "rivulet_malformed_records", "Malformed input records skipped.", ConstCounter::new(s.bad_input))?;
        per_task(e, tasks, "rivulet_records_in", "Records a task received.", |t| {
            Some(ConstCounter::new(t.records_in))
        })?;
        per_task(e, tasks, "rivulet_records_out", "Records a task handed on.", |t| {
            Some(ConstCounter::new(t.records_out))
        })?;
        per_task(e, tasks, "rivulet_watermark_seconds", "A task's event-time watermark (Unix time).", |t| {
            t.watermark.map(|w| ConstGauge::new(w as f64 / 1e3))
        })?;
        per_task(e, tasks, "rivulet_watermark_lag_seconds", "Wall-clock time minus a task's watermark.", |t| {
            t.watermark.map(|w| ConstGauge::new(now - w as f64 / 1e3))
        })?;
        per_task(
            e,
            tasks,
            "rivulet_backpressure_seconds",
            "Time a task waited for room in a full downstream queue.",
            |t| Some(ConstCounter::new(t.backpressure_ns as f64 / 1e9)),
        )?;
        if let Some(w) = self.now.watermark {
            one(
                e,
                "rivulet_job_watermark_seconds",
                "The sinks' watermark (Unix time).",
                ConstGauge::new(w as f64 / 1e3),
            )?;
            one(
                e,
                "rivulet_job_watermark_lag_seconds",
                "Wall-clock time minus the sinks' watermark.",
                ConstGauge::new(now - w as f64 / 1e3),
            )?;
        }
        let c = m.checkpoint_log.totals();
        one(e, "rivulet_checkpoints", "Checkpoints completed.", ConstCounter::new(c.completed))?;
        one(e, "rivulet_checkpoint_failures", "Checkpoints that failed.", ConstCounter::new(c.failed))?;
        one(
            e,
            "rivulet_checkpoint_duration_seconds",
            "Time from trigger to completion, summed over completed checkpoints.",
            ConstCounter::new(c.duration.as_secs_f64()),
        )?;
        one(
            e,
            "rivulet_checkpoint_bytes",
            "Bytes of state deltas committed by checkpoints.",
            ConstCounter::new(c.bytes),
        )?;
        if let Some(last) = m.checkpoint_log.history().iter().rev().find_map(|r| r.duration) {
            one(
                e,
                "rivulet_checkpoint_last_duration_seconds",
                "Duration of the last completed checkpoint.",
                ConstGauge::new(last.as_secs_f64()),
            )?;
        }
        if let Some(at) = c.last_complete_ms {
            one(
                e,
                "rivulet_checkpoint_last_complete_age_seconds",
                "Time since the last checkpoint completed.",
                ConstGauge::new((now - at as f64 / 1e3).max(0.0)),
            )?;
        }
        per_task(e, tasks, "rivulet_state_cache_bytes", "Keyed state cached in memory (estimate).", |t| {
            keyed(t).then(|| ConstGauge::new(t.state_cache_bytes as i64))
        })?;
        per_task(
            e,
            tasks,
            "rivulet_state_spilled_entries",
            "Keyed state entries written from the cache to disk.",
            |t| keyed(t).then(|| ConstCounter::new(t.spilled_entries)),
        )?;
        per_task(e, tasks, "rivulet_state_cache_hits", "Keyed state lookups answered from the cache.", |t| {
            keyed(t).then(|| ConstCounter::new(t.cache_hits))
        })?;
        per_task(e, tasks, "rivulet_state_cache_misses", "Keyed state lookups that read the disk store.", |t| {
            keyed(t).then(|| ConstCounter::new(t.cache_misses))
        })?;
        if let Some(b) = self.disk {
            one(e, "rivulet_state_disk_bytes", "Bytes of this process's state directory.", ConstGauge::new(b as i64))?;
        }
        if let Some(c) = &self.now.cluster {
            per_worker(
                e,
                &c.workers,
                "rivulet_worker_state_disk_bytes",
                "Bytes of a worker's state directory.",
                |w| w.report.as_ref().and_then(|r| r.state_disk_bytes).map(|b| ConstGauge::new(b as i64)),
            )?;
            per_worker(e, &c.workers, "rivulet_worker_up", "1 while the worker's control link is up.", |w| {
                Some(ConstGauge::new(i64::from(w.alive)))
            })?;
            per_worker(
                e,
                &c.workers,
                "rivulet_worker_last_heartbeat_age_seconds",
                "Time since the coordinator last heard from the worker.",
                |w| Some(ConstGauge::new((now - w.last_heard_ms as f64 / 1e3).max(0.0))),
            )?;
            per_worker(e, &c.workers, "rivulet_worker_resident_memory_bytes", "A worker's resident memory.", |w| {
                w.report.as_ref().and_then(|r| r.rss_bytes).map(|b| ConstGauge::new(b as i64))
            })?;
            per_worker(e, &c.workers, "rivulet_worker_cpu_seconds", "A worker's user and system CPU time.", |w| {
                w.report.as_ref().and_then(|r| r.cpu_seconds).map(ConstCounter::new)
            })?;
            one(e, "rivulet_workers_alive", "Workers whose control link is up.", ConstGauge::new(c.alive() as i64))?;
            one(e, "rivulet_workers", "The job's worker slots.", ConstGauge::new(i64::from(c.slots)))?;
            one(
                e,
                "rivulet_generation",
                "The job's current generation (bumped by every recovery).",
                ConstGauge::new(c.generation as i64),
            )?;
        }
        per_task(e, tasks, "rivulet_mqtt_connected", "1 while the source's broker connection is up.", |t| {
            t.health.map(|h| ConstGauge::new(i64::from(h.connected)))
        })?;
        per_task(e, tasks, "rivulet_mqtt_inflight_messages", "Messages received whose acks are pending.", |t| {
            t.health.map(|h| ConstGauge::new(h.inflight as i64))
        })?;
        per_task(e, tasks, "rivulet_mqtt_redeliveries", "Redelivered messages recognised and dropped.", |t| {
            t.health.map(|h| ConstCounter::new(h.redeliveries))
        })?;
        per_task(
            e,
            tasks,
            "rivulet_mqtt_dead_letters",
            "Malformed messages published to the dead-letter topic.",
            |t| t.health.map(|h| ConstCounter::new(h.dead_letters)),
        )?;
        per_task(e, tasks, "rivulet_mqtt_reconnects", "Connections made after the first.", |t| {
            t.health.map(|h| ConstCounter::new(h.reconnects))
        })?;
        if let Some(b) = process::rss_bytes() {
            one(e, "process_resident_memory_bytes", "Resident memory size in bytes.", ConstGauge::new(b as i64))?;
        }
        if let Some(s) = process::cpu_seconds() {
            one(e, "process_cpu_seconds", "Total user and system CPU time spent in seconds.", ConstCounter::new(s))?;
        }
        Ok(())
    }
}

/// Tasks that may hold keyed state (not sources or sinks).
fn keyed(t: &TaskSnapshot) -> bool {
    !t.operator.starts_with("source-") && !t.operator.starts_with("sink-")
}
