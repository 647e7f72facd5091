//! A tap on the sinks: the last [`RESULTS_CAPACITY`] rows they received,
//! as their encoder wrote them, for a live view of the results. Off until
//! enabled; then it costs one lock and a copy of the encoded rows per
//! batch reaching a sink.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// Rows the tap keeps.
pub const RESULTS_CAPACITY: usize = 4096;
/// Longest row kept (longer ones are cut at a character boundary).
const MAX_ROW: usize = 512;

/// The latest rows the sinks received (before their checkpoint commits
/// them), newest last.
#[derive(Debug, Default)]
pub struct ResultsTap {
    enabled: AtomicBool,
    /// Rows seen since enabled (also those no longer kept).
    seen: AtomicU64,
    rows: Mutex<VecDeque<String>>,
}

impl ResultsTap {
    /// Starts keeping rows.
    pub fn enable(&self) {
        self.enabled.store(true, Ordering::Relaxed);
    }

    /// Whether rows are kept.
    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Keeps the lines of `encoded` (rows as a sink's encoder wrote them).
    pub(crate) fn push(&self, encoded: &[u8]) {
        if encoded.is_empty() {
            return;
        }
        let Ok(mut rows) = self.rows.lock() else { return };
        let mut n = 0;
        for line in encoded.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            n += 1;
            let line = &line[..line.len().min(MAX_ROW)];
            if rows.len() == RESULTS_CAPACITY {
                rows.pop_front();
            }
            rows.push_back(String::from_utf8_lossy(line).into_owned());
        }
        self.seen.fetch_add(n, Ordering::Relaxed);
    }

    /// The rows kept, oldest first, and how many were seen in all.
    pub fn rows(&self) -> (Vec<String>, u64) {
        let rows = self.rows.lock().map(|r| r.iter().cloned().collect()).unwrap_or_default();
        (rows, self.seen.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_rows_only() {
        let tap = ResultsTap::default();
        tap.enable();
        let mut text = String::new();
        for i in 0..RESULTS_CAPACITY + 10 {
            text.push_str(&format!("s{i},1,2.5,3\n"));
        }
        tap.push(text.as_bytes());
        let (rows, seen) = tap.rows();
        assert_eq!(seen, (RESULTS_CAPACITY + 10) as u64);
        assert_eq!(rows.len(), RESULTS_CAPACITY);
        assert_eq!(rows[0], "s10,1,2.5,3");
        assert_eq!(rows.last().map(String::as_str), Some(format!("s{},1,2.5,3", RESULTS_CAPACITY + 9).as_str()));
    }
}
