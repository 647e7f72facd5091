//! Window assigners and the window type.
//!
//! A window `[start, end)` fires when the watermark reaches `end - 1`; it is
//! late — and so is an element for it — when `end - 1 + allowed_lateness <=
//! watermark` (Flink's `isWindowLate`).

pub(crate) mod session;
pub(crate) mod time_windows;

pub use session::Session;
pub use time_windows::{Cumulate, Sliding, Tumbling};

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The longest window, slide or session gap: 10 years (3,650 days). With
/// timestamps in a sane range, window ends (`start + size`) stay far inside
/// `i64` milliseconds.
pub const MAX_SIZE: Duration = Duration::from_secs(3650 * 86_400);

/// `d` in whole milliseconds, checked: not zero, no fraction of a
/// millisecond, at most [`MAX_SIZE`]; errors name `field`.
fn size_ms(field: &'static str, d: Duration) -> Result<i64> {
    if d.is_zero() {
        return Err(Error::config(field, "must be at least 1ms"));
    }
    if !d.subsec_nanos().is_multiple_of(1_000_000) {
        return Err(Error::config(
            field,
            format!("{d:?} has a fraction of a millisecond; windows count whole milliseconds"),
        ));
    }
    if d > MAX_SIZE {
        return Err(Error::config(field, format!("{d:?} is longer than the maximum of 3650 days")));
    }
    i64::try_from(d.as_millis()).map_err(|_| Error::config(field, "out of range"))
}

/// A half-open interval of event time, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Window {
    /// First millisecond inside the window.
    pub start: i64,
    /// First millisecond after the window.
    pub end: i64,
}

impl Window {
    /// The largest timestamp inside the window; its timer fires here.
    #[inline]
    pub fn max_timestamp(&self) -> i64 {
        self.end - 1
    }
}

/// What a windowed aggregation emits: one row per key and window firing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Windowed<K, O> {
    /// The key.
    pub key: K,
    /// The window that fired.
    pub window: Window,
    /// The aggregate's result.
    pub value: O,
}

/// Start of the window of size `size` (with `offset`) holding `ts` — Flink's
/// `TimeWindow.getWindowStartWithOffset`, correct for negative timestamps.
#[inline]
pub fn window_start(ts: i64, offset: i64, size: i64) -> i64 {
    ts - (ts - offset).rem_euclid(size)
}

/// The kinds of window the runtime can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assigner {
    /// Tumbling, sliding and cumulating windows, run as panes.
    Time(time_windows::Panes),
    /// Gap-merging per key.
    Session(Session),
    /// Every `n` elements of a key.
    Count(u64),
}

/// Count windows: a window per `n` elements of a key (`GlobalWindows` with a
/// purging count trigger in Flink).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count(pub u64);

impl From<Tumbling> for Assigner {
    fn from(t: Tumbling) -> Self {
        Assigner::Time(t.panes())
    }
}
impl From<Sliding> for Assigner {
    fn from(s: Sliding) -> Self {
        Assigner::Time(s.panes())
    }
}
impl From<Cumulate> for Assigner {
    fn from(c: Cumulate) -> Self {
        Assigner::Time(c.panes())
    }
}
impl From<Session> for Assigner {
    fn from(s: Session) -> Self {
        Assigner::Session(s)
    }
}
impl From<Count> for Assigner {
    fn from(c: Count) -> Self {
        Assigner::Count(c.0.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_like_flink() {
        assert_eq!(window_start(1_700_000_001_234, 0, 5000), 1_700_000_000_000);
        assert_eq!(window_start(-1, 0, 5000), -5000);
        assert_eq!(window_start(4999, 0, 5000), 0);
        assert_eq!(window_start(5000, 0, 5000), 5000);
        assert_eq!(window_start(7, 2, 5), 7);
        assert_eq!(window_start(6, 2, 5), 2);
    }
}
