//! `/metrics`: the job's counters in the Prometheus text format, encoded by
//! `prometheus-client` from a collector that reads them at each scrape.

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
    registry.register_collector(Box::new(JobCollector { metrics: shared.job.metrics.clone() }));
    let mut text = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)?;
    Ok(text)
}

#[derive(Debug)]
struct JobCollector {
    metrics: Arc<Metrics>,
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
fn per_task<M: EncodeMetric + TypedMetric>(
    e: &mut DescriptorEncoder<'_>,
    tasks: &[TaskSnapshot],
    name: &str,
    help: &str,
    value: impl Fn(&TaskSnapshot) -> Option<M>,
) -> std::fmt::Result {
    let values: Vec<(&TaskSnapshot, M)> = tasks.iter().filter_map(|t| value(t).map(|v| (t, v))).collect();
    let Some((_, first)) = values.first() else { return Ok(()) };
    let mut enc = e.encode_descriptor(name, help, None, first.metric_type())?;
    for (t, v) in &values {
        let labels = [("operator", t.operator.clone()), ("subtask", t.subtask.to_string())];
        v.encode(enc.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for JobCollector {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> std::fmt::Result {
        let m = &self.metrics;
        let s = m.snapshot();
        let tasks = m.tasks();
        let now = now_s();
        let e = &mut e;
        // Counter names get `_total` from the encoder.
        one(e, "rivulet_job_records_in", "Records read by the job's sources.", ConstCounter::new(s.records_in))?;
        one(e, "rivulet_job_records_out", "Records handed to the job's sinks.", ConstCounter::new(s.records_out))?;
        one(e, "rivulet_late_records", "Records dropped because their window was late.", ConstCounter::new(s.late))?;
        one(e, "rivulet_malformed_records", "Malformed input records skipped.", ConstCounter::new(s.bad_input))?;
        per_task(e, &tasks, "rivulet_records_in", "Records a task received.", |t| {
            Some(ConstCounter::new(t.records_in))
        })?;
        per_task(e, &tasks, "rivulet_records_out", "Records a task handed on.", |t| {
            Some(ConstCounter::new(t.records_out))
        })?;
        per_task(e, &tasks, "rivulet_watermark_seconds", "A task's event-time watermark (Unix time).", |t| {
            t.watermark.map(|w| ConstGauge::new(w as f64 / 1e3))
        })?;
        per_task(e, &tasks, "rivulet_watermark_lag_seconds", "Wall-clock time minus a task's watermark.", |t| {
            t.watermark.map(|w| ConstGauge::new(now - w as f64 / 1e3))
        })?;
        if let Some(w) = m.watermark_ms() {
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
        per_task(e, &tasks, "rivulet_state_cache_bytes", "Keyed state cached in memory (estimate).", |t| {
            keyed(t).then(|| ConstGauge::new(t.state_cache_bytes as i64))
        })?;
        per_task(
            e,
            &tasks,
            "rivulet_state_spilled_entries",
            "Keyed state entries written from the cache to disk.",
            |t| keyed(t).then(|| ConstCounter::new(t.spilled_entries)),
        )?;
        per_task(e, &tasks, "rivulet_mqtt_connected", "1 while the source's broker connection is up.", |t| {
            t.health.map(|h| ConstGauge::new(i64::from(h.connected)))
        })?;
        per_task(e, &tasks, "rivulet_mqtt_inflight_messages", "Messages received whose acks are pending.", |t| {
            t.health.map(|h| ConstGauge::new(h.inflight as i64))
        })?;
        per_task(e, &tasks, "rivulet_mqtt_redeliveries", "Redelivered messages recognised and dropped.", |t| {
            t.health.map(|h| ConstCounter::new(h.redeliveries))
        })?;
        per_task(
            e,
            &tasks,
            "rivulet_mqtt_dead_letters",
            "Malformed messages published to the dead-letter topic.",
            |t| t.health.map(|h| ConstCounter::new(h.dead_letters)),
        )?;
        per_task(e, &tasks, "rivulet_mqtt_reconnects", "Connections made after the first.", |t| {
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
