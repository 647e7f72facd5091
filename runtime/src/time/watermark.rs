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
        Self::with_lag(lag_ms(delay))
    }

    /// A generator whose watermark is `max_ts - lag - 1`; `lag` is at
    /// least -1 (a watermark equal to the largest timestamp).
    pub(crate) fn with_lag(lag: i64) -> Self {
        let delay = lag.max(-1);
        // The start is `i64::MIN` for every lag.
        Self { delay, max_ts: i64::MIN + (delay + 1) }
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
    /// Watermark `max_ts - lag - 1` (see [`BoundedOutOfOrderness::with_lag`]).
    EventTime {
        lag: i64,
        timestamp: Arc<dyn Fn(&T) -> i64 + Send + Sync>,
    },
    ProcessingTime,
}

/// `delay` in whole milliseconds, capped far inside `i64`.
fn lag_ms(delay: Duration) -> i64 {
    delay.as_millis().min(i64::MAX as u128 / 4) as i64
}

impl<T> Watermarks<T> {
    /// Event time read by `timestamp`, watermarks `delay` behind the largest
    /// timestamp seen.
    pub fn bounded_out_of_orderness(delay: Duration, timestamp: impl Fn(&T) -> i64 + Send + Sync + 'static) -> Self {
        Self {
            kind: WatermarkKind::EventTime { lag: lag_ms(delay), timestamp: Arc::new(timestamp) },
            idle_timeout: None,
        }
    }

    /// Flink SQL's rule for `WATERMARK FOR ts AS ts - INTERVAL 'd'`: the
    /// watermark is `max_ts_seen - delay`, one millisecond later than
    /// [`Watermarks::bounded_out_of_orderness`] (the DataStream API's
    /// `max_ts_seen - delay - 1`). A window `[start, end)` then fires once a
    /// timestamp `end - 1 + delay` was seen.
    pub fn max_minus(delay: Duration, timestamp: impl Fn(&T) -> i64 + Send + Sync + 'static) -> Self {
        let lag = lag_ms(delay) - 1;
        Self { kind: WatermarkKind::EventTime { lag, timestamp: Arc::new(timestamp) }, idle_timeout: None }
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

    #[test]
    fn flink_sql_rule_has_no_extra_millisecond() {
        // `Watermarks::max_minus`: lag = delay - 1.
        let mut g = BoundedOutOfOrderness::with_lag(2_000 - 1);
        assert_eq!(g.current(), i64::MIN);
        g.on_event(10_000);
        assert_eq!(g.current(), 8_000);
        // A zero delay: the watermark is the largest timestamp itself, and
        // the start is still `i64::MIN` (not the idle marker `MIN + 1`).
        let mut g = BoundedOutOfOrderness::with_lag(-1);
        assert_eq!(g.current(), i64::MIN);
        g.on_event(10_000);
        assert_eq!(g.current(), 10_000);
    }
}
