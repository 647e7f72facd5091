//! The packed tier: entries evicted from a table's typed cache, kept in
//! memory as the bytes they would be written to disk as.
//!
//! A typed cache entry of the seed job takes 88 bytes (a fixed-size key
//! buffer, the namespace, the value and its flags) in a hash table that is
//! at most 7/8 full; the same entry packed is its state key and its
//! stage/spill entry, about 30 bytes, plus 5 bytes of index. So a budget
//! holds about three times as many keys here as in the typed cache, and a
//! key that comes back costs a hash probe and a decode instead of a read of
//! the disk store.
//!
//! Records are appended to one arena in eviction order; a hash index maps a
//! state key to its record. An entry replaced by one of the same length is
//! overwritten in place; a record that is taken back, or replaced by an
//! entry of another length (appended anew), is marked dead, and its bytes
//! are reclaimed by sliding the live records down once the dead ones make
//! up a quarter of the arena. When the tier is over
//! its budget, the oldest records go to the disk store, in key order.

use hashbrown::HashTable;
use rustc_hash::FxHasher;
use std::hash::Hasher;

/// Record header: flags, key length (u16 LE), entry length (u16 LE).
const HEADER: usize = 5;
const LIVE: u8 = 1;
const DIRTY: u8 = 2;
/// Bytes an index slot costs: a `u32` offset and hashbrown's control byte.
const SLOT_BYTES: usize = 5;

pub(super) struct Packed {
    arena: Vec<u8>,
    index: HashTable<u32>,
    /// Bytes of live records in the arena.
    live_bytes: usize,
    budget: usize,
}

fn hash(key: &[u8]) -> u64 {
    let mut h = FxHasher::default();
    h.write(key);
    h.finish()
}

/// The key, entry and flags of the record at `at`, and its length.
fn record(arena: &[u8], at: usize) -> (u8, &[u8], &[u8], usize) {
    let h = &arena[at..at + HEADER];
    let klen = usize::from(u16::from_le_bytes([h[1], h[2]]));
    let elen = usize::from(u16::from_le_bytes([h[3], h[4]]));
    let k = at + HEADER;
    (h[0], &arena[k..k + klen], &arena[k + klen..k + klen + elen], HEADER + klen + elen)
}

fn key_at(arena: &[u8], at: u32) -> &[u8] {
    record(arena, at as usize).1
}

impl Packed {
    /// An empty tier that holds about `budget` bytes, index included.
    pub(super) fn new(budget: usize) -> Self {
        Self { arena: Vec::new(), index: HashTable::new(), live_bytes: 0, budget }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Live records.
    pub(super) fn len(&self) -> usize {
        self.index.len()
    }

    /// Memory held: the arena (dead records included) and the index.
    pub(super) fn bytes(&self) -> usize {
        self.arena.len() + self.index.num_buckets() * SLOT_BYTES
    }

    /// Removes the record of `key` and hands its entry and whether it is
    /// dirty to `f`.
    pub(super) fn take<R>(&mut self, key: &[u8], f: impl FnOnce(&[u8], bool) -> R) -> Option<R> {
        let Self { arena, index, live_bytes, .. } = self;
        let found = index.find_entry(hash(key), |&at| key_at(arena, at) == key).ok()?;
        let (at, _) = found.remove();
        let at = at as usize;
        let (flags, _, entry, len) = record(arena, at);
        let r = f(entry, flags & DIRTY != 0);
        arena[at] = 0;
        *live_bytes -= len;
        Some(r)
    }

    /// The offset of `key`'s record, valid until the tier next changes
    /// other than through [`Packed::replace`] of that record.
    pub(super) fn find(&self, key: &[u8]) -> Option<u32> {
        let arena = &self.arena;
        self.index.find(hash(key), |&at| key_at(arena, at) == key).copied()
    }

    /// The entry of the record at `at` and whether it is dirty.
    pub(super) fn entry_at(&self, at: u32) -> (&[u8], bool) {
        let (flags, _, entry, _) = record(&self.arena, at as usize);
        (entry, flags & DIRTY != 0)
    }

    /// Replaces the entry of the record at `at` with `entry`, marked dirty:
    /// in place when the two are the same length, else as a new record at
    /// the end of the arena (the old one dead). Returns false, changing
    /// nothing, where [`Packed::insert`] would refuse the new record.
    #[must_use]
    pub(super) fn replace(&mut self, at: u32, entry: &[u8]) -> bool {
        let Self { arena, index, live_bytes, .. } = self;
        let start = at as usize;
        let (_, key, old, len) = record(arena, start);
        let (k, klen) = (start + HEADER, key.len());
        if old.len() == entry.len() {
            arena[start] = LIVE | DIRTY;
            arena[k + klen..k + klen + entry.len()].copy_from_slice(entry);
            return true;
        }
        let h = hash(key);
        let (Ok(moved), Ok(elen)) = (u32::try_from(arena.len()), u16::try_from(entry.len())) else {
            return false;
        };
        arena.push(LIVE | DIRTY);
        arena.extend_from_within(start + 1..start + 3);
        arena.extend_from_slice(&elen.to_le_bytes());
        arena.extend_from_within(k..k + klen);
        arena.extend_from_slice(entry);
        arena[start] = 0;
        *live_bytes = *live_bytes + HEADER + klen + entry.len() - len;
        if let Some(slot) = index.find_mut(h, |&a| a == at) {
            *slot = moved;
        }
        true
    }

    /// Removes the record at `at`.
    pub(super) fn remove_at(&mut self, at: u32) {
        let Self { arena, index, live_bytes, .. } = self;
        let (_, key, _, len) = record(arena, at as usize);
        if let Ok(e) = index.find_entry(hash(key), |&a| a == at) {
            e.remove();
        }
        arena[at as usize] = 0;
        *live_bytes -= len;
    }

    /// Packs `entry` for `key`, which must not be packed already (the
    /// table takes a key out before it caches it). Returns false, packing
    /// nothing, for a key or entry longer than 64 KiB or an arena past
    /// 4 GiB: those go to disk directly.
    #[must_use]
    pub(super) fn insert(&mut self, key: &[u8], entry: &[u8], dirty: bool) -> bool {
        let Self { arena, index, .. } = self;
        let (Ok(at), Ok(klen), Ok(elen)) =
            (u32::try_from(arena.len()), u16::try_from(key.len()), u16::try_from(entry.len()))
        else {
            return false;
        };
        arena.push(LIVE | if dirty { DIRTY } else { 0 });
        arena.extend_from_slice(&klen.to_le_bytes());
        arena.extend_from_slice(&elen.to_le_bytes());
        arena.extend_from_slice(key);
        arena.extend_from_slice(entry);
        self.live_bytes += HEADER + key.len() + entry.len();
        index.insert_unique(hash(key), at, |&a| hash(key_at(arena, a)));
        true
    }

    /// The tier is over its budget, or its arena's offsets would overflow.
    pub(super) fn over_budget(&self) -> bool {
        self.bytes() > self.budget || self.arena.len() > (u32::MAX as usize) / 2
    }

    /// Brings the tier back under its budget: reclaims dead records, then,
    /// if that is not enough, hands the oldest live ones, down to four
    /// fifths of the budget, to `write(key, entry, dirty)` in key order and
    /// then removes them. They are handed out from the arena, not copied
    /// out of it: a copy of each would cost several times its packed size
    /// at the moment memory is shortest. On an error from `write` the tier
    /// keeps every record.
    pub(super) fn shrink<E>(&mut self, mut write: impl FnMut(&[u8], &[u8], bool) -> Result<(), E>) -> Result<(), E> {
        if self.arena.len() - self.live_bytes >= self.arena.len() / 4 {
            self.slide();
            if !self.over_budget() {
                return Ok(());
            }
        }
        let index_bytes = self.index.num_buckets() * SLOT_BYTES;
        let target = (self.budget - self.budget / 5).saturating_sub(index_bytes);
        let mut excess = self.live_bytes.saturating_sub(target);
        let mut oldest = Vec::new();
        let mut at = 0;
        while excess > 0 && at < self.arena.len() {
            let (flags, _, _, len) = record(&self.arena, at);
            if flags & LIVE != 0 {
                oldest.push(at as u32);
                excess = excess.saturating_sub(len);
            }
            at += len;
        }
        self.sort_by_key(&mut oldest);
        for &at in &oldest {
            let (flags, key, entry, _) = record(&self.arena, at as usize);
            write(key, entry, flags & DIRTY != 0)?;
        }
        for at in oldest {
            let len = record(&self.arena, at as usize).3;
            self.arena[at as usize] = 0;
            self.live_bytes -= len;
        }
        self.slide();
        Ok(())
    }

    /// Sorts `offsets` (of live records, with the tier unchanged since) by
    /// their records' keys.
    pub(super) fn sort_by_key(&self, offsets: &mut [u32]) {
        let arena = &self.arena;
        offsets.sort_unstable_by(|a, b| key_at(arena, *a).cmp(key_at(arena, *b)));
    }

    /// Hands `f` the offset of every dirty record, in arena order.
    pub(super) fn dirty_offsets(&self, mut f: impl FnMut(u32)) {
        let mut at = 0;
        while at < self.arena.len() {
            let (flags, _, _, len) = record(&self.arena, at);
            if flags == LIVE | DIRTY {
                f(at as u32);
            }
            at += len;
        }
    }

    /// The key and entry of the record at `at` (an offset from
    /// [`Packed::dirty_offsets`], with the tier unchanged since).
    pub(super) fn record_at(&self, at: u32) -> (&[u8], &[u8]) {
        let (_, key, entry, _) = record(&self.arena, at as usize);
        (key, entry)
    }

    /// Visits every dirty record (as its key and entry, which `f` may
    /// change in place without changing its length) and marks it clean;
    /// `f` returns whether to drop it.
    pub(super) fn drain_dirty(&mut self, mut f: impl FnMut(&[u8], &mut [u8]) -> bool) {
        let mut dropped = Vec::new();
        let mut at = 0;
        while at < self.arena.len() {
            let (flags, key, entry, len) = record(&self.arena, at);
            if flags == LIVE | DIRTY {
                let (klen, elen) = (key.len(), entry.len());
                let k = at + HEADER;
                let (key, entry) = self.arena[k..k + klen + elen].split_at_mut(klen);
                if f(key, entry) {
                    dropped.push(at as u32);
                }
                self.arena[at] = LIVE;
            }
            at += len;
        }
        for at in dropped {
            self.remove_at(at);
        }
    }

    /// Slides live records down over dead ones, in order. Then rebuilds
    /// the index at its size, which also clears the deletion marks that
    /// taken records left in it (enough of those would make the index
    /// double).
    fn slide(&mut self) {
        let Self { arena, index, .. } = self;
        let (mut read, mut write) = (0usize, 0usize);
        while read < arena.len() {
            let (flags, _, _, len) = record(arena, read);
            if flags & LIVE != 0 {
                arena.copy_within(read..read + len, write);
                write += len;
            }
            read += len;
        }
        arena.truncate(write);
        index.clear();
        let mut at = 0;
        while at < arena.len() {
            let (_, key, _, len) = record(arena, at);
            index.insert_unique(hash(key), at as u32, |&a| hash(key_at(arena, a)));
            at += len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn key(i: u32) -> Vec<u8> {
        format!("key-{i:06}").into_bytes()
    }

    // A model check: whatever mix of inserts, takes, shrinks and
    // checkpoints, every key is either packed with its latest entry or was
    // handed out by `shrink`, exactly once, and the tier stays in budget.
    #[test]
    fn agrees_with_a_map_through_churn() {
        let mut p = Packed::new(64 << 10);
        let mut model: BTreeMap<Vec<u8>, (Vec<u8>, bool)> = BTreeMap::new();
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        for step in 0..200_000u32 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let k = key((rng % 5_000) as u32);
            match rng >> 60 {
                0..=7 => {
                    let got = p.take(&k, |e, d| (e.to_vec(), d));
                    assert_eq!(got, model.remove(&k), "take at step {step}");
                    let entry = vec![(step % 251) as u8; (rng % 40) as usize + 1];
                    let dirty = rng & 1 == 1;
                    assert!(p.insert(&k, &entry, dirty));
                    model.insert(k, (entry, dirty));
                }
                8..=11 => {
                    assert_eq!(p.take(&k, |e, d| (e.to_vec(), d)), model.remove(&k), "take at step {step}");
                }
                12 => {
                    p.drain_dirty(|key, entry| {
                        let m = model.get_mut(key).expect("a packed key is in the model");
                        assert!(m.1 && m.0 == entry);
                        m.1 = false;
                        entry[0] = 9;
                        m.0[0] = 9;
                        false
                    });
                    assert!(model.values().all(|(_, d)| !d));
                }
                _ => {}
            }
            if p.over_budget() {
                let mut last: Option<Vec<u8>> = None;
                p.shrink(|key, entry, dirty| {
                    if let Some(l) = &last {
                        assert!(l.as_slice() < key, "handed out in key order");
                    }
                    last = Some(key.to_vec());
                    let m = model.remove(key).expect("evicted once");
                    assert_eq!(m, (entry.to_vec(), dirty));
                    Ok::<(), ()>(())
                })
                .unwrap();
                assert!(!p.over_budget(), "in budget after a shrink");
            }
            assert_eq!(p.len(), model.len());
        }
        for (k, (entry, dirty)) in &model {
            assert_eq!(p.take(k, |e, d| (e.to_vec(), d)), Some((entry.clone(), *dirty)));
        }
        assert!(p.is_empty());
    }

    // Guards changes in place: a same-length entry overwrites its record,
    // a longer or shorter one moves to the end of the arena, and either
    // way the key finds its newest entry, marked dirty.
    #[test]
    fn replaced_records_keep_one_findable_version() {
        let mut p = Packed::new(1 << 20);
        for i in 0..100 {
            assert!(p.insert(&key(i), &[1, i as u8], false));
        }
        let len = p.arena.len();
        let at = p.find(&key(7)).unwrap();
        assert!(p.replace(at, &[1, 70]));
        assert_eq!((p.find(&key(7)), p.arena.len()), (Some(at), len), "same length: in place");
        assert!(p.replace(p.find(&key(8)).unwrap(), &[1, 80, 81]));
        assert!(p.replace(p.find(&key(9)).unwrap(), &[0]));
        assert!(p.arena.len() > len, "other lengths: moved");
        assert_eq!(p.len(), 100);
        p.remove_at(p.find(&key(10)).unwrap());
        assert_eq!(p.find(&key(10)), None);
        for (i, want) in [(7, vec![1, 70]), (8, vec![1, 80, 81]), (9, vec![0]), (11, vec![1, 11])] {
            let (entry, dirty) = p.entry_at(p.find(&key(i)).unwrap());
            assert_eq!((entry, dirty), (&want[..], i != 11), "key {i}");
        }
        // A slide keeps exactly the live versions.
        p.slide();
        assert_eq!(p.len(), 99);
        assert_eq!(p.take(&key(8), |e, d| (e.to_vec(), d)), Some((vec![1, 80, 81], true)));
    }

    // A write that fails part-way through a shrink loses nothing: the
    // records it had not yet handed out, and those it had, stay packed.
    #[test]
    fn a_failed_shrink_keeps_every_record() {
        let mut p = Packed::new(4 << 10);
        let mut n = 0;
        while !p.over_budget() {
            assert!(p.insert(&key(n), &[1, n as u8], true));
            n += 1;
        }
        let mut handed = 0;
        let r = p.shrink(|_, _, _| {
            handed += 1;
            if handed > 3 {
                Err("disk full")
            } else {
                Ok(())
            }
        });
        assert_eq!(r, Err("disk full"));
        assert_eq!(p.len(), n as usize);
        for i in 0..n {
            assert_eq!(p.take(&key(i), |e, _| e.to_vec()), Some(vec![1, i as u8]), "key {i}");
        }
    }

    #[test]
    fn dropped_records_leave_the_index() {
        let mut p = Packed::new(1 << 20);
        for i in 0..100 {
            assert!(p.insert(&key(i), &[1, i as u8], true));
        }
        p.drain_dirty(|_, e| e[1] % 2 == 0);
        assert_eq!(p.len(), 50);
        assert_eq!(p.take(&key(2), |e, _| e.to_vec()), None);
        assert_eq!(p.take(&key(3), |e, d| (e.to_vec(), d)), Some((vec![1, 3], false)));
    }
}
