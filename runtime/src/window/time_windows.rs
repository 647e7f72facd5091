//! Tumbling and sliding event-time windows, run as panes.
//!
//! A sliding window of `size` every `slide` is cut into panes of
//! `gcd(size, slide)`: an element updates exactly one pane, and a window's
//! result merges its panes. A tumbling window is the one-pane case. A
//! cumulating window (Flink SQL's `CUMULATE`) grows by `step` from a start
//! aligned to its maximum `size`: its panes are the steps.

use super::{size_ms, window_start, Window};
use crate::error::Result;
use std::time::Duration;

/// Non-overlapping windows of a fixed size, aligned to the epoch (plus offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tumbling {
    size: i64,
    offset: i64,
}

impl Tumbling {
    /// Windows of `size`, aligned to the Unix epoch.
    ///
    /// # Errors
    /// [`crate::Error::Config`] naming `window` when `size` is zero, has a
    /// fraction of a millisecond or is longer than [`super::MAX_SIZE`].
    pub fn of(size: Duration) -> Result<Self> {
        Ok(Self { size: size_ms("window", size)?, offset: 0 })
    }

    /// Shifts the alignment by `offset`.
    pub fn with_offset(mut self, offset: Duration) -> Self {
        self.offset = (offset.as_millis() % self.size as u128) as i64;
        self
    }

    pub(crate) fn panes(self) -> Panes {
        Panes { size: self.size, slide: self.size, pane: self.size, offset: self.offset, cumulate: false }
    }
}

/// Overlapping windows of `size` starting every `slide`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sliding {
    size: i64,
    slide: i64,
    offset: i64,
}

impl Sliding {
    /// Windows of `size` starting every `slide`.
    ///
    /// # Errors
    /// [`crate::Error::Config`] naming `window` or `slide` when either is
    /// zero, has a fraction of a millisecond or is longer than
    /// [`super::MAX_SIZE`].
    pub fn of(size: Duration, slide: Duration) -> Result<Self> {
        Ok(Self { size: size_ms("window", size)?, slide: size_ms("slide", slide)?, offset: 0 })
    }

    /// Shifts the alignment by `offset`.
    pub fn with_offset(mut self, offset: Duration) -> Self {
        self.offset = (offset.as_millis() % self.slide as u128) as i64;
        self
    }

    pub(crate) fn panes(self) -> Panes {
        let pane = gcd(self.size, self.slide);
        Panes { size: self.size, slide: self.slide, pane, offset: self.offset, cumulate: false }
    }
}

/// Windows that start every `size` and end every `step` until they reach
/// `size` (Flink SQL's `CUMULATE(..., step, size)`): `[s, s + step)`,
/// `[s, s + 2 step)`, ..., `[s, s + size)`, each firing when its end passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cumulate {
    size: i64,
    step: i64,
}

impl Cumulate {
    /// Windows growing by `step` up to `size`, aligned to the Unix epoch.
    ///
    /// # Errors
    /// [`crate::Error::Config`] naming `step` or `window` when either is
    /// zero, has a fraction of a millisecond or is longer than
    /// [`super::MAX_SIZE`], or when `size` is not a whole number of steps.
    pub fn of(step: Duration, size: Duration) -> Result<Self> {
        let (step, size) = (size_ms("step", step)?, size_ms("window", size)?);
        if size % step != 0 {
            return Err(crate::Error::config(
                "window",
                format!("a cumulating window's size ({size} ms) must be a whole number of steps ({step} ms)"),
            ));
        }
        Ok(Self { size, step })
    }

    pub(crate) fn panes(self) -> Panes {
        Panes { size: self.size, slide: self.step, pane: self.step, offset: 0, cumulate: true }
    }
}

fn gcd(mut a: i64, mut b: i64) -> i64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}

/// The pane geometry shared by tumbling and sliding windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Panes {
    pub(crate) size: i64,
    pub(crate) slide: i64,
    pub(crate) pane: i64,
    pub(crate) offset: i64,
    /// Windows share their start and grow by `slide` up to `size`.
    pub(crate) cumulate: bool,
}

impl Panes {
    /// True when the pane and every window holding `ts` can be computed
    /// without overflowing i64 (a timestamp within a window size plus a
    /// pane of `i64::MIN` or `i64::MAX` cannot: its window end would wrap).
    #[inline]
    pub fn fits(&self, ts: i64) -> bool {
        let Some(reach) = self.size.checked_add(self.pane) else { return false };
        ts.checked_sub(reach).is_some() && ts.checked_add(reach).is_some()
    }

    /// Start of the pane holding `ts`.
    #[inline]
    pub fn pane_start(&self, ts: i64) -> i64 {
        window_start(ts, self.offset, self.pane)
    }

    /// True when every window is one pane (tumbling).
    #[inline]
    pub fn is_tumbling(&self) -> bool {
        self.size == self.slide
    }

    /// The last window (largest end) that contains the pane starting at `p`.
    #[inline]
    pub fn last_window_of_pane(&self, p: i64) -> Window {
        let start = window_start(p, self.offset, if self.cumulate { self.size } else { self.slide });
        Window { start, end: start + self.size }
    }

    /// The window whose end is `end`.
    #[inline]
    pub fn window_ending(&self, end: i64) -> Window {
        let start = if self.cumulate { window_start(end - 1, self.offset, self.size) } else { end - self.size };
        Window { start, end }
    }

    /// The windows containing the pane starting at `p`, earliest end first.
    pub fn windows_of_pane(&self, p: i64) -> impl Iterator<Item = Window> {
        let last = self.last_window_of_pane(p);
        // Sliding: starts run from the earliest with `start > p - size` up
        // to `last`'s, each window `slide` later. Cumulating: one start,
        // ends from the pane's own end up to `last`'s, `slide` apart.
        let (first, n, shift) = if self.cumulate {
            let end = p + self.pane;
            (Window { start: last.start, end }, (last.end - end) / self.slide + 1, 0)
        } else {
            let n = (last.start - (p - self.size) - 1) / self.slide + 1;
            let start = last.start - (n - 1) * self.slide;
            (Window { start, end: start + self.size }, n, self.slide)
        };
        let grow = self.slide;
        (0..n).map(move |i| Window { start: first.start + i * shift, end: first.end + i * grow })
    }

    /// The pane starts that make up `w`.
    pub fn panes_of_window(&self, w: Window) -> impl Iterator<Item = i64> {
        let pane = self.pane;
        (0..(w.end - w.start) / pane).map(move |i| w.start + i * pane)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sliding_panes_cover_windows() {
        let p = Sliding::of(Duration::from_millis(10), Duration::from_millis(4)).unwrap().panes();
        assert_eq!(p.pane, 2);
        // every timestamp belongs to exactly the windows Flink would assign
        for ts in -30i64..30 {
            let pane = p.pane_start(ts);
            let mut ours: Vec<_> = p.windows_of_pane(pane).collect();
            ours.sort();
            let mut flink = Vec::new();
            let last_start = window_start(ts, 0, 4);
            let mut s = last_start;
            while s > ts - 10 {
                flink.push(Window { start: s, end: s + 10 });
                s -= 4;
            }
            flink.sort();
            assert_eq!(ours, flink, "ts={ts}");
            for w in &ours {
                assert!(p.panes_of_window(*w).any(|q| q == pane));
            }
        }
    }

    /// Guards window arithmetic at the limits of i64: timestamps whose
    /// window end would wrap are refused, the rest get correct windows.
    #[test]
    fn timestamps_near_the_limits_do_not_wrap() {
        let p = Tumbling::of(Duration::from_secs(5)).unwrap().panes();
        for ts in [i64::MAX, i64::MAX - 9_999, i64::MIN, i64::MIN + 9_999] {
            assert!(!p.fits(ts), "{ts}");
        }
        for ts in [i64::MAX - 10_000, i64::MIN + 10_000, 0, crate::time::MAX_EVENT_TIME_MS] {
            assert!(p.fits(ts), "{ts}");
            let w = p.last_window_of_pane(p.pane_start(ts));
            assert!(w.start <= ts && ts < w.end, "{ts}: {w:?}");
        }
        let s = Sliding::of(Duration::from_secs(10), Duration::from_secs(4)).unwrap().panes();
        assert!(!s.fits(i64::MAX - 11_000));
        let ts = i64::MAX - 12_000;
        assert!(s.fits(ts));
        assert!(s.windows_of_pane(s.pane_start(ts)).all(|w| w.start <= ts && ts < w.end));
        // The largest accepted size still fits every valid event time.
        let largest = Tumbling::of(crate::window::MAX_SIZE).unwrap().panes();
        assert!(largest.fits(crate::time::MAX_EVENT_TIME_MS));
    }

    /// Every timestamp belongs to the windows Flink SQL's CUMULATE gives
    /// it: the start aligned to the size, every end past it up to the size.
    #[test]
    fn cumulating_panes_cover_windows() {
        let p = Cumulate::of(Duration::from_millis(3), Duration::from_millis(12)).unwrap().panes();
        for ts in -30i64..30 {
            let pane = p.pane_start(ts);
            let ours: Vec<_> = p.windows_of_pane(pane).collect();
            let start = window_start(ts, 0, 12);
            let flink: Vec<_> = (1..=4).map(|i| Window { start, end: start + 3 * i }).filter(|w| w.end > ts).collect();
            assert_eq!(ours, flink, "ts={ts}");
            assert_eq!(p.last_window_of_pane(pane), *flink.last().unwrap(), "ts={ts}");
            for w in &ours {
                assert_eq!(p.window_ending(w.end), *w);
                assert!(p.panes_of_window(*w).any(|q| q == pane));
            }
        }
        assert!(matches!(
            Cumulate::of(Duration::from_millis(5), Duration::from_millis(12)),
            Err(crate::Error::Config { field: "window", .. })
        ));
    }

    #[test]
    fn tumbling_is_one_pane() {
        let p = Tumbling::of(Duration::from_secs(5)).unwrap().panes();
        assert!(p.is_tumbling());
        let ws: Vec<_> = p.windows_of_pane(5000).collect();
        assert_eq!(ws, vec![Window { start: 5000, end: 10_000 }]);
    }

    // Guards issue 12 §10: a zero, sub-millisecond or huge size is a typed
    // config error naming the field, never a silent 1 ms window or a
    // window end that overflows.
    #[test]
    fn bad_sizes_are_config_errors() {
        let field = |r: Result<Tumbling>| match r {
            Err(crate::Error::Config { field, .. }) => field,
            other => panic!("expected a config error, got {other:?}"),
        };
        assert_eq!(field(Tumbling::of(Duration::ZERO)), "window");
        assert_eq!(field(Tumbling::of(Duration::from_micros(500))), "window");
        assert_eq!(field(Tumbling::of(Duration::from_micros(1500))), "window");
        assert_eq!(field(Tumbling::of(Duration::from_secs(u64::MAX))), "window");
        assert_eq!(field(Tumbling::of(super::super::MAX_SIZE + Duration::from_millis(1))), "window");
        assert!(Tumbling::of(super::super::MAX_SIZE).is_ok());
        assert!(matches!(
            Sliding::of(Duration::from_secs(1), Duration::ZERO),
            Err(crate::Error::Config { field: "slide", .. })
        ));
    }
}
