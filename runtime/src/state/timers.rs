//! Timer queues with a bounded memory footprint.
//!
//! Window and process operators keep "at time `t`, visit `p`" entries — one
//! per key and window, so a million keys make a million entries. A
//! [`TimerQueue`] keeps about `cap` bytes of them in memory, as their
//! encodings; beyond that the
//! entries with the latest times go to the store's `timers` keyspace (keyed
//! `op | kind | instance | time | payload`, so a time's entries are one
//! range scan), and come back in chunks when their time is due.
//!
//! Spilled timers are a working copy like the `spill` keyspace: operators
//! rebuild their timers from committed state at a restore, so the keyspace
//! is cleared at every start and written without syncing.

use super::codec;
use super::store::{Store, WRITE_CHUNK};
use crate::error::{Error, Result};
use serde::{de::DeserializeOwned, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::marker::PhantomData;
use std::ops::Bound;
use std::sync::Arc;

/// Length of a spilled key's head: `op u16 | kind u8 | instance u16`.
const HEAD: usize = 5;

/// A queue of payloads by time, ordered by time, spilling to the store.
/// In memory a time's entries are kept as their encodings, one after the
/// other: a window timer's key is a few bytes that way, where the typed
/// payload (a fixed-size key buffer) takes tens, so the same memory holds
/// several times the entries before any goes to the store.
pub(crate) struct TimerQueue<P> {
    mem: BTreeMap<i64, Bucket>,
    /// Bytes of the buckets in memory.
    bytes: usize,
    /// Bytes the buckets may take before the latest go to the store.
    cap: usize,
    spill: Option<Spill>,
    payload: PhantomData<fn(P) -> P>,
}

/// The entries of one time: postcard encodings back to back, handed out
/// from `read` on.
#[derive(Default)]
struct Bucket {
    buf: Vec<u8>,
    read: usize,
}

struct Spill {
    store: Arc<Store>,
    head: [u8; HEAD],
    /// Times with entries in the store.
    times: BTreeSet<i64>,
    pending: Option<fjall::OwnedWriteBatch>,
    pending_len: usize,
    /// Where the drain of a time stopped (the last key handed out).
    cursor: Option<(i64, Vec<u8>)>,
    key: Vec<u8>,
}

impl<P: Serialize + DeserializeOwned> TimerQueue<P> {
    /// A queue of operator `op`'s instance `instance` (its first key
    /// group); `kind` tells the operator's queues apart. About
    /// `budget_bytes` of entries stay in memory when there is a store;
    /// without one everything does.
    pub(crate) fn new(store: Option<&Arc<Store>>, op: u16, kind: u8, instance: u16, budget_bytes: usize) -> Self {
        let spill = store.map(|s| {
            let mut head = [0u8; HEAD];
            head[..2].copy_from_slice(&op.to_be_bytes());
            head[2] = kind;
            head[3..].copy_from_slice(&instance.to_be_bytes());
            Spill {
                store: s.clone(),
                head,
                times: BTreeSet::new(),
                pending: None,
                pending_len: 0,
                cursor: None,
                key: Vec::new(),
            }
        });
        let cap = if spill.is_some() { budget_bytes.max(64) } else { usize::MAX };
        Self { mem: BTreeMap::new(), bytes: 0, cap, spill, payload: PhantomData }
    }

    /// Entries held in memory.
    #[cfg(test)]
    pub(crate) fn in_memory(&self) -> usize {
        let mut n = 0;
        for b in self.mem.values() {
            let mut rest = &b.buf[b.read..];
            while !rest.is_empty() {
                rest = decode::<P>(rest).map_or(&[][..], |(_, after)| after);
                n += 1;
            }
        }
        n
    }

    /// Adds `p` at time `t`.
    ///
    /// # Errors
    /// An encoding error, or a store error while spilling.
    pub(crate) fn push(&mut self, t: i64, p: P) -> Result<()> {
        if let Some(s) = &mut self.spill {
            // A time's entries are all in memory or all in the store (a
            // whole bucket moves), so a drain never meets one entry twice.
            if s.times.contains(&t) {
                return s.write(t, &p);
            }
            if self.bytes >= self.cap {
                match self.mem.last_key_value().map(|(&last, _)| last) {
                    Some(last) if last >= t => {
                        // Make room with the entries that are due last.
                        if let Some((last, bucket)) = self.mem.pop_last() {
                            self.bytes -= bucket.buf.len();
                            let mut rest = &bucket.buf[bucket.read..];
                            while !rest.is_empty() {
                                let (_, after) = decode::<P>(rest)?;
                                s.write_encoded(last, &rest[..rest.len() - after.len()])?;
                                rest = after;
                            }
                        }
                        if last == t {
                            return s.write(t, &p);
                        }
                    }
                    _ => return s.write(t, &p),
                }
            }
        }
        let bucket = self.mem.entry(t).or_default();
        let before = bucket.buf.len();
        bucket.buf = postcard::to_extend(&p, std::mem::take(&mut bucket.buf)).map_err(|e| corrupt_timer(&e))?;
        self.bytes += bucket.buf.len() - before;
        Ok(())
    }

    /// The earliest time with entries.
    pub(crate) fn next_time(&self) -> Option<i64> {
        let m = self.mem.first_key_value().map(|(&t, _)| t);
        let s = self.spill.as_ref().and_then(|s| s.times.first().copied());
        match (m, s) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Moves up to `max` entries of the earliest time, if it is `<=
    /// until`, into `out` and returns that time, so a time with a million
    /// entries comes in chunks. The entries of one
    /// time are handed out once each, but registering the same payload
    /// twice in memory hands it out twice. A call may hand out nothing
    /// while it finds a time exhausted. `None`: nothing is due.
    ///
    /// # Errors
    /// A store or decoding error.
    pub(crate) fn pop_due(&mut self, until: i64, max: usize, out: &mut Vec<P>) -> Result<Option<i64>> {
        let Some(t) = self.next_time() else { return Ok(None) };
        if t > until {
            return Ok(None);
        }
        if let Some(mut e) = self.mem.first_entry() {
            if *e.key() == t {
                let b = e.get_mut();
                for _ in 0..max.max(1) {
                    if b.read == b.buf.len() {
                        break;
                    }
                    let (p, rest) = decode(&b.buf[b.read..])?;
                    b.read = b.buf.len() - rest.len();
                    out.push(p);
                }
                if b.read == b.buf.len() {
                    self.bytes -= b.buf.len();
                    e.remove();
                }
                return Ok(Some(t));
            }
        }
        if let Some(s) = &mut self.spill {
            s.read(t, max, out)?;
        }
        Ok(Some(t))
    }
}

/// The first entry encoded in `bytes` and what follows it.
fn decode<P: DeserializeOwned>(bytes: &[u8]) -> Result<(P, &[u8])> {
    postcard::take_from_bytes(bytes).map_err(|e| codec::corrupt("a timer in memory", &e.to_string()))
}

fn corrupt_timer(e: &postcard::Error) -> Error {
    Error::Corrupt { what: "a timer".into(), reason: e.to_string() }
}

/// Time in big-endian order-preserving form.
fn time_bytes(t: i64) -> [u8; 8] {
    ((t as u64) ^ (1 << 63)).to_be_bytes()
}

/// The smallest key greater than every key starting with `prefix`.
fn successor(mut prefix: Vec<u8>) -> Option<Vec<u8>> {
    while let Some(last) = prefix.pop() {
        if last < u8::MAX {
            prefix.push(last + 1);
            return Some(prefix);
        }
    }
    None
}

impl Spill {
    fn prefix(&self, t: i64) -> Vec<u8> {
        let mut k = Vec::with_capacity(HEAD + 8);
        k.extend_from_slice(&self.head);
        k.extend_from_slice(&time_bytes(t));
        k
    }

    fn write<P: Serialize>(&mut self, t: i64, p: &P) -> Result<()> {
        self.key_head(t);
        self.key = postcard::to_extend(p, std::mem::take(&mut self.key)).map_err(|e| corrupt_timer(&e))?;
        self.put(t)
    }

    /// [`Spill::write`] of an entry already encoded.
    fn write_encoded(&mut self, t: i64, p: &[u8]) -> Result<()> {
        self.key_head(t);
        self.key.extend_from_slice(p);
        self.put(t)
    }

    /// Starts `self.key` as the key of an entry of time `t`.
    fn key_head(&mut self, t: i64) {
        self.key.clear();
        self.key.extend_from_slice(&self.head);
        self.key.extend_from_slice(&time_bytes(t));
    }

    /// Stages the key built in `self.key`, an entry of time `t`.
    fn put(&mut self, t: i64) -> Result<()> {
        let key = std::mem::take(&mut self.key);
        let batch = self.pending.get_or_insert_with(|| self.store.batch());
        batch.insert(&self.store.timers, key.as_slice(), []);
        self.key = key;
        self.pending_len += 1;
        self.times.insert(t);
        if self.cursor.as_ref().is_some_and(|(ct, _)| *ct == t) {
            // A new entry may sort before where the drain of `t` stopped.
            self.cursor = None;
        }
        if self.pending_len >= WRITE_CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.pending_len = 0;
        match self.pending.take() {
            Some(b) => self.store.commit(b),
            None => Ok(()),
        }
    }

    fn read<P: DeserializeOwned>(&mut self, t: i64, n: usize, out: &mut Vec<P>) -> Result<()> {
        self.flush()?;
        let prefix = self.prefix(t);
        let lo = match self.cursor.take() {
            Some((ct, k)) if ct == t => Bound::Excluded(k),
            _ => Bound::Included(prefix.clone()),
        };
        let hi = successor(prefix).map_or(Bound::Unbounded, Bound::Excluded);
        let store = self.store.clone();
        let mut done = store.batch();
        let mut got = 0usize;
        let mut last = None;
        for item in store.timers.range((lo, hi)) {
            let (k, _) = item.into_inner().map_err(|e| store.err(e))?;
            let p: P =
                postcard::from_bytes(&k[HEAD + 8..]).map_err(|e| codec::corrupt("a spilled timer", &e.to_string()))?;
            out.push(p);
            done.remove(&store.timers, k.clone());
            last = Some(k);
            got += 1;
            if got == n {
                break;
            }
        }
        store.commit(done)?;
        match last {
            Some(k) if got == n => self.cursor = Some((t, k.to_vec())),
            _ => {
                self.times.remove(&t);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::StoreConfig;

    fn drain(q: &mut TimerQueue<String>, until: i64) -> Vec<(i64, String)> {
        let mut all = Vec::new();
        let mut buf = Vec::new();
        while let Some(t) = q.pop_due(until, 7, &mut buf).unwrap() {
            all.extend(buf.drain(..).map(|p| (t, p)));
        }
        all
    }

    #[test]
    fn spills_beyond_its_budget_and_hands_out_everything_in_time_order() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(dir.path(), "t", &StoreConfig::default()).unwrap();
        let store = Arc::new(store);
        let mut q = TimerQueue::<String>::new(Some(&store), 1, 0, 0, 0);
        let mut other = TimerQueue::<String>::new(Some(&store), 1, 0, 64, 0);
        let mut want = Vec::new();
        for i in 0..3000i64 {
            let t = (i * 7919) % 50 - 20;
            q.push(t, format!("k{i}")).unwrap();
            other.push(t, format!("other{i}")).unwrap();
            want.push((t, format!("k{i}")));
        }
        assert!(q.in_memory() <= 16, "{}", q.in_memory());
        let mut got = drain(&mut q, 9);
        // Entries arriving while a time drains are not lost.
        q.push(10, "late".into()).unwrap();
        want.push((10, "late".into()));
        got.extend(drain(&mut q, i64::MAX));
        assert!(got.windows(2).all(|w| w[0].0 <= w[1].0), "time order");
        got.sort();
        want.sort();
        assert_eq!(got, want);
        assert_eq!(q.next_time(), None);
        assert_eq!(drain(&mut other, i64::MAX).len(), 3000, "instances do not see each other's timers");
    }

    // Guards the encoded buckets: a budget holds entries at the size of
    // their encodings, a time in memory is handed out in chunks of `max`,
    // and an entry pushed to a time while it drains is handed out too.
    #[test]
    fn a_time_in_memory_drains_in_chunks_and_takes_late_entries() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(dir.path(), "t", &StoreConfig::default()).unwrap();
        let mut q = TimerQueue::<String>::new(Some(&Arc::new(store)), 1, 0, 0, 64 << 10);
        for i in 0..8_000 {
            q.push(5, format!("k{i}")).unwrap();
        }
        assert_eq!(q.in_memory(), 8_000, "8,000 entries of about 6 bytes fit 64 KiB");
        let mut out = Vec::new();
        assert_eq!(q.pop_due(5, 3_000, &mut out).unwrap(), Some(5));
        assert_eq!(out.len(), 3_000);
        q.push(5, "late".into()).unwrap();
        while q.pop_due(5, 3_000, &mut out).unwrap().is_some() {}
        let mut want: Vec<String> = (0..8_000).map(|i| format!("k{i}")).collect();
        want.push("late".into());
        assert_eq!(out, want, "in push order, each once");
        assert_eq!((q.in_memory(), q.bytes), (0, 0));
    }

    #[test]
    fn without_a_store_everything_stays_in_memory() {
        let mut q = TimerQueue::<String>::new(None, 1, 0, 0, 0);
        for i in 0..1000 {
            q.push(i % 3, format!("k{i}")).unwrap();
        }
        assert_eq!(q.in_memory(), 1000);
        assert_eq!(drain(&mut q, 1).len(), 667);
        assert_eq!(q.next_time(), Some(2));
    }
}
