//! Watermark generation at the source.

use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// Bounded-out-of-orderness watermark generator (Flink's
/// `WatermarkStrategy.forBoundedOutOfOrderness`), advanced per event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoundedOutOfOrderness {
    delay: i64,
    max_ts: i64,
}

impl BoundedOutOfOrderness {
    /// A generator that tolerates `delay` of disorder.
    pub fn new(delay: Duration) -> Self {
        let delay = delay.as_millis().min(i64::MAX as u128 / 4) as i64;
        Self { delay, max_ts: i64::MIN + delay + 1 }
    }

    /// Observes an event timestamp.
    #[inline]
    pub fn on_event(&mut self, ts: i64) {
        if ts > self.max_ts {
            self.max_ts = ts;
        }
    }

    /// The current watermark.
    #[inline]
    pub fn current(&self) -> i64 {
        self.max_ts.saturating_sub(self.delay).saturating_sub(1)
    }
}

/// How a source's records get event time: a timestamp extractor plus the
/// watermark rule, or processing time.
pub struct Watermarks<T> {
    pub(crate) kind: WatermarkKind<T>,
    pub(crate) idle_timeout: Option<Duration>,
}

pub(crate) enum WatermarkKind<T> {
    EventTime { delay: Duration, timestamp: Arc<dyn Fn(&T) -> i64 + Send + Sync> },
    ProcessingTime,
}

impl<T> Watermarks<T> {
    /// Event time read by `timestamp`, watermarks `delay` behind the largest
    /// timestamp seen.
    pub fn bounded_out_of_orderness(delay: Duration, timestamp: impl Fn(&T) -> i64 + Send + Sync + 'static) -> Self {
        Self { kind: WatermarkKind::EventTime { delay, timestamp: Arc::new(timestamp) }, idle_timeout: None }
    }

    /// Records are stamped with the wall clock when read; windows close by
    /// the clock. Results then depend on timing, as in any engine.
    pub fn processing_time() -> Self {
        Self { kind: WatermarkKind::ProcessingTime, idle_timeout: None }
    }

    /// After `timeout` without data the source stops holding back the
    /// watermark of the operators it feeds, until data flows again.
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Some(timeout);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flink_rule() {
        let mut g = BoundedOutOfOrderness::new(Duration::from_secs(2));
        assert_eq!(g.current(), i64::MIN);
        g.on_event(10_000);
        assert_eq!(g.current(), 7_999);
        g.on_event(9_000);
        assert_eq!(g.current(), 7_999);
    }
}
