//! Per-key timers of a process operator, in event time and processing time.
//!
//! Timers are state: each lives in a [`Table`] keyed by `(key, (timestamp,
//! domain))`, so registering one twice is one timer (Flink's dedup), the
//! epoch delta checkpoints them, and a restart rebuilds the in-memory queues
//! from the committed table. The queues may hold stale entries (a deleted
//! or already fired timer); the table decides whether an entry still fires.

use crate::error::Result;
use crate::key::Key;
use crate::state::{Store, Table, TimerQueue};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::Arc;

/// Which clock a timer follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TimeDomain {
    /// Fires when the operator's watermark reaches the timestamp.
    EventTime,
    /// Fires when the wall clock (ms since the Unix epoch) reaches it.
    ProcessingTime,
}

/// Timers handed out of a queue at a time.
const CHUNK: usize = 4096;

/// One clock's queue, and the timers of one time taken out of it.
struct Queue<K> {
    queue: TimerQueue<K>,
    ready: VecDeque<K>,
    ready_ts: i64,
}

impl<K: Key> Queue<K> {
    fn new(site: Option<(&Arc<Store>, u16, u16)>, kind: u8, budget: usize) -> Self {
        let (store, op, instance) = match site {
            Some((s, op, i)) => (Some(s), op, i),
            None => (None, 0, 0),
        };
        Self { queue: TimerQueue::new(store, op, kind, instance, budget), ready: VecDeque::new(), ready_ts: 0 }
    }

    fn push(&mut self, ts: i64, key: K) -> Result<()> {
        self.queue.push(ts, key)
    }

    /// The next queued timer due at `time`, in timestamp order.
    fn next(&mut self, time: i64) -> Result<Option<(i64, K)>> {
        loop {
            if !self.ready.is_empty() {
                // A timer registered meanwhile for an earlier time goes first.
                if self.queue.next_time().is_some_and(|t| t < self.ready_ts) {
                    for k in self.ready.drain(..) {
                        self.queue.push(self.ready_ts, k)?;
                    }
                    continue;
                }
                return Ok(self.ready.pop_front().map(|k| (self.ready_ts, k)));
            }
            let mut out = Vec::new();
            let Some(t) = self.queue.pop_due(time, CHUNK, &mut out)? else { return Ok(None) };
            self.ready_ts = t;
            self.ready.extend(out);
        }
    }

    fn next_time(&self) -> Option<i64> {
        match (self.ready.is_empty(), self.queue.next_time()) {
            (true, t) => t,
            (false, Some(t)) => Some(t.min(self.ready_ts)),
            (false, None) => Some(self.ready_ts),
        }
    }
}

/// The timers of one operator instance.
pub(crate) struct Timers<K: Key> {
    table: Table<K, (i64, TimeDomain), ()>,
    event: Queue<K>,
    processing: Queue<K>,
}

impl<K: Key> Timers<K> {
    /// Timers kept in `table`; their queues spill to `site`'s store (`op`
    /// and first key group of the instance) beyond `budget` bytes.
    pub(crate) fn new(
        table: Table<K, (i64, TimeDomain), ()>,
        site: Option<(&Arc<Store>, u16, u16)>,
        budget: usize,
    ) -> Self {
        Self { table, event: Queue::new(site, 0, budget / 2), processing: Queue::new(site, 1, budget / 2) }
    }

    fn queue(&mut self, domain: TimeDomain) -> &mut Queue<K> {
        match domain {
            TimeDomain::EventTime => &mut self.event,
            TimeDomain::ProcessingTime => &mut self.processing,
        }
    }

    /// Rebuilds the queues from the committed timers of `groups`.
    pub(crate) fn restore(&mut self, groups: std::ops::Range<u16>) -> Result<()> {
        let (event, processing) = (&mut self.event, &mut self.processing);
        let mut err = None;
        self.table.restore(groups, |k, (ts, d), ()| {
            let q = match d {
                TimeDomain::EventTime => &mut *event,
                TimeDomain::ProcessingTime => &mut *processing,
            };
            if let Err(e) = q.push(ts, k.clone()) {
                err.get_or_insert(e);
            }
        })?;
        err.map_or(Ok(()), Err)
    }

    /// Registers a timer of `key`; a duplicate is ignored.
    pub(crate) fn register(&mut self, key: &K, ts: i64, domain: TimeDomain) -> Result<()> {
        if self.table.get(key, (ts, domain))?.is_some() {
            return Ok(());
        }
        self.table.put(key, (ts, domain), ())?;
        self.queue(domain).push(ts, key.clone())
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
        while let Some((ts, key)) = self.queue(domain).next(time)? {
            if self.table.take(&key, (ts, domain))?.is_some() {
                return Ok(Some((ts, key)));
            }
        }
        Ok(None)
    }

    /// The earliest processing-time timer still queued.
    pub(crate) fn next_processing(&self) -> Option<i64> {
        self.processing.next_time()
    }

    /// Timers of `domain` queued (stale entries included).
    #[cfg(test)]
    pub(crate) fn queued(&self, domain: TimeDomain) -> usize {
        let q = match domain {
            TimeDomain::EventTime => &self.event,
            TimeDomain::ProcessingTime => &self.processing,
        };
        q.queue.in_memory() + q.ready.len()
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
        Timers::new(Table::new(0x8010, 128, 1 << 20, None, 1), None, 1 << 20)
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
