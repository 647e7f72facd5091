//! Time-to-live of keyed state, in processing time.
//!
//! Each stored value carries the wall-clock millisecond it was last written
//! (or read, with [`TtlUpdate::OnReadAndWrite`]). An expired value reads as
//! absent and is deleted when touched; a [`Sweeper`] also walks the state a
//! bounded number of entries per batch so that values nobody touches again
//! leave memory and disk too. Nothing ever scans all state at once.

use super::table::{Namespace, ScanCursor, Table};
use crate::error::Result;
use crate::key::Key;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::time::Duration;

/// Entries a sweep step examines (per declared state, per batch).
pub(crate) const SWEEP_STEP: usize = 64;

/// When the TTL clock of a value restarts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TtlUpdate {
    /// Only writes refresh a value (Flink's `OnCreateAndWrite`).
    #[default]
    OnWrite,
    /// Reads refresh it too (Flink's `OnReadAndWrite`).
    OnReadAndWrite,
}

/// Time-to-live of a declared state, in processing time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateTtl {
    /// How long a value lives after its last refresh.
    pub ttl: Duration,
    /// What refreshes it.
    pub update_on: TtlUpdate,
}

impl StateTtl {
    /// Values expire `ttl` after their last write.
    pub fn after_write(ttl: Duration) -> Self {
        Self { ttl, update_on: TtlUpdate::OnWrite }
    }

    /// Values expire `ttl` after their last read or write.
    pub fn after_access(ttl: Duration) -> Self {
        Self { ttl, update_on: TtlUpdate::OnReadAndWrite }
    }

    pub(crate) fn millis(&self) -> i64 {
        i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX)
    }
}

/// A stored value with the processing time of its last refresh (`0` when
/// the state has no TTL).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Stamped<V> {
    pub(crate) at: i64,
    pub(crate) value: V,
}

/// The TTL rule of one state, as the handles apply it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Ttl {
    /// Milliseconds to live; `None` without TTL.
    pub(crate) ms: Option<i64>,
    pub(crate) on_read: bool,
}

impl Ttl {
    pub(crate) fn new(ttl: Option<StateTtl>) -> Self {
        Self { ms: ttl.map(|t| t.millis()), on_read: ttl.is_some_and(|t| t.update_on == TtlUpdate::OnReadAndWrite) }
    }

    /// The stamp a write at `now` gets.
    #[inline]
    pub(crate) fn stamp(&self, now: i64) -> i64 {
        if self.ms.is_some() {
            now
        } else {
            0
        }
    }

    /// A value stamped `at` is expired at `now`.
    #[inline]
    pub(crate) fn expired(&self, at: i64, now: i64) -> bool {
        self.ms.is_some_and(|ms| at.saturating_add(ms) <= now)
    }
}

/// Walks a table a few entries at a time and deletes expired values.
///
/// With a store it scans the committed state (every live value reaches it
/// at the next checkpoint); without one it walks a snapshot of the cached
/// keys, refilled once it is used up, so each entry costs O(1) amortised.
pub(crate) struct Sweeper<K, N> {
    groups: std::ops::Range<u16>,
    cursor: ScanCursor,
    pending: Vec<(K, N)>,
    candidates: Vec<(K, N)>,
}

impl<K: Key, N: Namespace> Sweeper<K, N> {
    pub(crate) fn new(groups: std::ops::Range<u16>) -> Self {
        Self { groups, cursor: ScanCursor::default(), pending: Vec::new(), candidates: Vec::new() }
    }

    /// Examines about `limit` entries of `table`; `expired(value)` says
    /// whether one is gone. Returns the `(key, namespace)` pairs deleted.
    pub(crate) fn step<V: Serialize + DeserializeOwned + Send + 'static>(
        &mut self,
        table: &mut Table<K, N, V>,
        backed: bool,
        limit: usize,
        expired: impl Fn(&V) -> bool,
        mut deleted: impl FnMut(&K, &N),
    ) -> Result<()> {
        self.candidates.clear();
        if backed {
            let c = &mut self.candidates;
            table.scan_committed(self.groups.clone(), &mut self.cursor, limit, |k, n, v| {
                if expired(&v) {
                    c.push((k, n));
                }
            })?;
        } else {
            if self.pending.is_empty() {
                let p = &mut self.pending;
                table.for_each_cached(|k, n, _| p.push((k.clone(), n)));
            }
            let from = self.pending.len().saturating_sub(limit);
            self.candidates.extend(self.pending.drain(from..));
        }
        for (k, n) in self.candidates.drain(..) {
            // The committed copy may be stale: decide on the live value.
            let live = table.get(&k, n.clone())?.is_some_and(&expired);
            if live {
                table.take(&k, n.clone())?;
                deleted(&k, &n);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_rule() {
        let none = Ttl::new(None);
        assert_eq!(none.stamp(1_000), 0);
        assert!(!none.expired(0, i64::MAX));
        let t = Ttl::new(Some(StateTtl::after_write(Duration::from_millis(10))));
        assert_eq!(t.stamp(1_000), 1_000);
        assert!(!t.expired(1_000, 1_009));
        assert!(t.expired(1_000, 1_010));
        assert!(!t.on_read);
        assert!(Ttl::new(Some(StateTtl::after_access(Duration::from_millis(1)))).on_read);
    }

    #[test]
    fn memory_sweep_deletes_only_expired_values() {
        let mut table: Table<u32, (), Stamped<u8>> = Table::new(1, 128, 1 << 20, None, 1);
        for k in 0..200u32 {
            let at = if k % 2 == 0 { 0 } else { 100 };
            table.put(&k, (), Stamped { at, value: 1 }).unwrap();
        }
        let mut sweeper = Sweeper::new(0..128);
        let mut gone = 0;
        for _ in 0..10 {
            sweeper.step(&mut table, false, 64, |v| v.at + 50 <= 60, |_, _| gone += 1).unwrap();
        }
        assert_eq!(gone, 100);
        assert_eq!(table.cached(), 100);
    }
}
