//! Session windows: a key's elements closer than `gap` share a window.

use super::Window;
use std::time::Duration;

/// Gap-merging session windows (Flink's `EventTimeSessionWindows.withGap`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    pub(crate) gap: i64,
}

impl Session {
    /// Sessions closed by `gap` of inactivity.
    pub fn with_gap(gap: Duration) -> Self {
        Self { gap: (gap.as_millis() as i64).max(1) }
    }

    /// The proto-window of one element.
    #[inline]
    pub fn window_of(&self, ts: i64) -> Window {
        Window { start: ts, end: ts.saturating_add(self.gap) }
    }
}

/// True when two session windows overlap and so merge (Flink's `intersects`).
#[inline]
pub fn intersects(a: &Window, b: &Window) -> bool {
    a.start <= b.end && a.end >= b.start
}
