//! Session windows: a key's elements closer than `gap` share a window.

use super::{size_ms, Window};
use crate::error::Result;
use std::time::Duration;

/// Gap-merging session windows (Flink's `EventTimeSessionWindows.withGap`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    pub(crate) gap: i64,
}

impl Session {
    /// Sessions closed by `gap` of inactivity.
    ///
    /// # Errors
    /// [`crate::Error::Config`] naming `gap` when it is zero, has a fraction
    /// of a millisecond or is longer than [`super::MAX_SIZE`].
    pub fn with_gap(gap: Duration) -> Result<Self> {
        Ok(Self { gap: size_ms("gap", gap)? })
    }

    /// The proto-window of one element.
    #[inline]
    pub fn window_of(&self, ts: i64) -> Window {
        Window { start: ts, end: ts.saturating_add(self.gap) }
    }
}

/// True when two session windows overlap and so merge (Flink's `intersects`).
#[inline]
pub(crate) fn intersects(a: &Window, b: &Window) -> bool {
    a.start <= b.end && a.end >= b.start
}
