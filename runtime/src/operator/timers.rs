//! Per-key timers of a process operator, in event time and processing time.
//!
//! Timers are state: each lives in a [`Table`] keyed by `(key, (timestamp,
//! domain))`, so registering one twice is one timer (Flink's dedup), the
//! epoch delta checkpoints them, and a restart rebuilds the in-memory queues
//! from the committed table. The queues may hold stale entries (a deleted
//! or already fired timer); the table decides whether an entry still fires.

use crate::error::Result;
use crate::key::Key;
use crate::state::Table;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// Which clock a timer follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TimeDomain {
    /// Fires when the operator's watermark reaches the timestamp.
    EventTime,
    /// Fires when the wall clock (ms since the Unix epoch) reaches it.
    ProcessingTime,
}

/// The timers of one operator instance.
pub(crate) struct Timers<K: Key> {
    table: Table<K, (i64, TimeDomain), ()>,
    event: BTreeMap<i64, VecDeque<K>>,
    processing: BTreeMap<i64, VecDeque<K>>,
}

impl<K: Key> Timers<K> {
    pub(crate) fn new(table: Table<K, (i64, TimeDomain), ()>) -> Self {
        Self { table, event: BTreeMap::new(), processing: BTreeMap::new() }
    }

    /// Rebuilds the queues from the committed timers of `groups`.
    pub(crate) fn restore(&mut self, groups: std::ops::Range<u16>) -> Result<()> {
        let (event, processing) = (&mut self.event, &mut self.processing);
        self.table.restore(groups, |k, (ts, d), ()| {
            let q = match d {
                TimeDomain::EventTime => &mut *event,
                TimeDomain::ProcessingTime => &mut *processing,
            };
            q.entry(ts).or_default().push_back(k.clone());
        })
    }

    /// Registers a timer of `key`; a duplicate is ignored.
    pub(crate) fn register(&mut self, key: &K, ts: i64, domain: TimeDomain) -> Result<()> {
        if self.table.get(key, (ts, domain))?.is_some() {
            return Ok(());
        }
        self.table.put(key, (ts, domain), ())?;
        let q = match domain {
            TimeDomain::EventTime => &mut self.event,
            TimeDomain::ProcessingTime => &mut self.processing,
        };
        q.entry(ts).or_default().push_back(key.clone());
        Ok(())
    }

    /// Deletes a timer of `key` (if it exists).
    pub(crate) fn delete(&mut self, key: &K, ts: i64, domain: TimeDomain) -> Result<()> {
        // The queue entry stays; `pop` skips it once the table forgot it.
        self.table.take(key, (ts, domain))?;
        Ok(())
    }

    /// Removes and returns the earliest timer of `domain` due at `time`
    /// (`timestamp <= time`), in timestamp order.
    pub(crate) fn pop(&mut self, domain: TimeDomain, time: i64) -> Result<Option<(i64, K)>> {
        loop {
            let q = match domain {
                TimeDomain::EventTime => &mut self.event,
                TimeDomain::ProcessingTime => &mut self.processing,
            };
            let Some(mut entry) = q.first_entry() else {
                return Ok(None);
            };
            let ts = *entry.key();
            if ts > time {
                return Ok(None);
            }
            let keys = entry.get_mut();
            // Registration order within a timestamp: take from the front.
            let Some(key) = keys.pop_front() else {
                entry.remove();
                continue;
            };
            if keys.is_empty() {
                entry.remove();
            }
            if self.table.take(&key, (ts, domain))?.is_some() {
                return Ok(Some((ts, key)));
            }
        }
    }

    /// The earliest processing-time timer still queued.
    pub(crate) fn next_processing(&self) -> Option<i64> {
        self.processing.first_key_value().map(|(t, _)| *t)
    }

    /// Timers of `domain` queued (stale entries included).
    #[cfg(test)]
    pub(crate) fn queued(&self, domain: TimeDomain) -> usize {
        let q = match domain {
            TimeDomain::EventTime => &self.event,
            TimeDomain::ProcessingTime => &self.processing,
        };
        q.values().map(VecDeque::len).sum()
    }

    /// Adds the timers' delta of `epoch` to `batch`.
    pub(crate) fn snapshot(&mut self, epoch: u64, batch: &mut fjall::OwnedWriteBatch) -> Result<()> {
        self.table.snapshot(epoch, batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timers() -> Timers<u32> {
        Timers::new(Table::new(0x8010, 128, 1 << 20, None, 1))
    }

    #[test]
    fn fire_in_order_and_dedupe() {
        let mut t = timers();
        t.register(&1, 30, TimeDomain::EventTime).unwrap();
        t.register(&2, 10, TimeDomain::EventTime).unwrap();
        t.register(&1, 30, TimeDomain::EventTime).unwrap();
        t.register(&1, 10, TimeDomain::EventTime).unwrap();
        t.register(&3, 5, TimeDomain::ProcessingTime).unwrap();
        assert_eq!(t.queued(TimeDomain::EventTime), 3);
        let mut fired = Vec::new();
        while let Some(x) = t.pop(TimeDomain::EventTime, 30).unwrap() {
            fired.push(x);
        }
        assert_eq!(fired, vec![(10, 2), (10, 1), (30, 1)]);
        assert_eq!(t.next_processing(), Some(5));
        assert_eq!(t.pop(TimeDomain::ProcessingTime, 4).unwrap(), None);
        assert_eq!(t.pop(TimeDomain::ProcessingTime, 5).unwrap(), Some((5, 3)));
    }

    #[test]
    fn deleted_timers_do_not_fire_and_can_come_back() {
        let mut t = timers();
        t.register(&7, 100, TimeDomain::EventTime).unwrap();
        t.delete(&7, 100, TimeDomain::EventTime).unwrap();
        assert_eq!(t.pop(TimeDomain::EventTime, i64::MAX).unwrap(), None);
        t.register(&7, 100, TimeDomain::EventTime).unwrap();
        t.delete(&7, 100, TimeDomain::EventTime).unwrap();
        t.register(&7, 100, TimeDomain::EventTime).unwrap();
        assert_eq!(t.pop(TimeDomain::EventTime, 100).unwrap(), Some((100, 7)));
        assert_eq!(t.pop(TimeDomain::EventTime, 100).unwrap(), None);
    }
}
