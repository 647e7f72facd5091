//! A keyed state table: typed values in a bounded in-memory cache, backed
//! by the store.
//!
//! The hot path touches only a hash map of typed values; bytes are made only
//! when an entry is evicted or checkpointed. Layers, newest first: the typed
//! map → the [packed tier](super::packed) (evicted entries as bytes, in
//! memory) → `spill` (on disk, the packed tier's overflow) → `state`
//! (committed; read only after a restore, until every key has been
//! touched). A key lives in at most one of the two memory layers.

use super::codec::{self, TOMBSTONE};
use super::packed::Packed;
use super::store::{Store, RUN_MIN, WRITE_CHUNK};
use crate::error::Result;
use crate::key::{key_group, Key};
use hashbrown::hash_map::EntryRef;
use hashbrown::{Equivalent, HashMap};
use rustc_hash::FxBuildHasher;
use serde::{de::DeserializeOwned, Serialize};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// What a table's entries are further keyed by under the user key (a window
/// start, a map key, `()` for a plain value). Window namespaces are `Copy`;
/// a map key such as a `String` is cloned when an entry is cached.
pub trait Namespace: Clone + Eq + Hash + Serialize + DeserializeOwned + Send + 'static {}
impl<T: Clone + Eq + Hash + Serialize + DeserializeOwned + Send + 'static> Namespace for T {}

struct Slot<V> {
    /// `None` marks a deletion that lower layers must still learn about.
    value: Option<V>,
    /// Changed since the last checkpoint.
    dirty: bool,
    /// Some version of the key may exist in `spill`, `stage` or `state`.
    persisted: bool,
    /// Touched since the eviction clock last passed.
    hot: bool,
}

/// A key and namespace borrowed for a lookup: a hit clones neither. Hashes
/// as the owned `(K, N)` does (the fields in order).
struct Probe<'a, K, N>(&'a K, &'a N);

impl<K: Hash, N: Hash> Hash for Probe<'_, K, N> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
        self.1.hash(state);
    }
}

impl<K: Eq, N: Eq> Equivalent<(K, N)> for Probe<'_, K, N> {
    fn equivalent(&self, key: &(K, N)) -> bool {
        *self.0 == key.0 && *self.1 == key.1
    }
}

/// Where a table stores its overflow and checkpoints.
#[derive(Clone)]
pub struct Backing {
    pub(crate) store: Arc<Store>,
    /// Read committed `state` on a miss (after a restore).
    pub(crate) base: bool,
}

impl Backing {
    /// Backing by `store`; `base` reads committed state on a miss (set it
    /// after a restore).
    pub fn new(store: Arc<Store>, base: bool) -> Self {
        Self { store, base }
    }
}

/// The share of a table's budget its typed map keeps once its keys
/// outgrow it, the rest going to the packed tier: 1/8. Until then the
/// typed map may fill half the budget (every key typed is the fastest
/// there is), not all of it: when it first evicts, it is held beside the
/// packed records of the keys it evicts (about two fifths of its size) and
/// beside the smaller map it shrinks to, and all three must fit the
/// budget together. A typed entry costs about three packed ones, and a hit
/// in the packed tier costs a hash of the key's bytes and a decode, far
/// less than a read of the disk store; so a small typed map in front of a
/// large packed tier holds about three times the keys of a typed map of
/// the whole budget, and a working set of a few thousand keys still never
/// leaves the typed map.
const TYPED_SHARE: usize = 8;

/// The largest packed tier: its records are addressed by `u32` offsets.
const MAX_PACKED_BYTES: usize = 1 << 30;

/// An entry read back from a layer below the typed map.
struct Loaded<V> {
    /// `None`: that layer records a deletion.
    value: Option<V>,
    /// Changed since the last checkpoint (from the packed tier only).
    dirty: bool,
    /// Some version of the key may exist on disk.
    persisted: bool,
}

impl<V: DeserializeOwned> Loaded<V> {
    /// A packed tier's `entry`, `dirty` or not; `what` names it in errors.
    fn from_entry(entry: &[u8], dirty: bool, what: &str) -> Result<Self> {
        let value = codec::read_entry(entry)?.map(|v| codec::decode_value(v, what)).transpose()?;
        Ok(Self { value, dirty, persisted: !codec::is_new(entry) })
    }
}

impl<V> Loaded<V> {
    fn into_slot(self, hot: bool) -> Slot<V> {
        Slot { value: self.value, dirty: self.dirty, persisted: self.persisted, hot }
    }
}

/// A packed key handed out while the typed map is full: decoded here
/// instead of moved into the map (which would evict another key to the
/// packed tier), and written back to its record, in place when its length
/// is unchanged, by the next call that touches another key. The record
/// stays in the tier meanwhile, so the key is still in one memory layer.
struct Pending<K, N, V> {
    key: (K, N),
    /// `dirty`: changed since it was decoded (the record keeps its own
    /// flag), so to be written back.
    slot: Slot<V>,
    /// The record's offset in the packed tier.
    at: u32,
}

impl<K: Eq, N: Eq, V> Pending<K, N, V> {
    fn is(&self, key: &K, ns: &N) -> bool {
        self.key.0 == *key && self.key.1 == *ns
    }
}

/// Keyed state of one operator in one task.
pub struct Table<K: Key, N: Namespace, V> {
    op: u16,
    groups: u16,
    map: HashMap<(K, N), Slot<V>, FxBuildHasher>,
    /// Entries evicted from `map`, as bytes.
    packed: Packed,
    /// A packed key being read or changed in place.
    pending: Option<Pending<K, N, V>>,
    entry_bytes: usize,
    bytes: usize,
    budget: usize,
    /// Four fifths of `budget`, what eviction leaves the map at: past it
    /// the map is [crowded](Self::crowded).
    crowd_at: usize,
    /// Entries the map may grow to (0: unbounded, no backing).
    cap: usize,
    /// The map has grown to `cap` (its last size).
    at_cap: bool,
    /// The entries the map keeps once it first has to evict (then 0): it
    /// shrinks from filling the budget to its [share](TYPED_SHARE).
    small_cap: usize,
    backing: Option<Backing>,
    spilled: bool,
    /// Entries written to `spill` so far (for metrics).
    spilled_entries: u64,
    /// Lookups answered from the cache (for metrics).
    hits: u64,
    /// Lookups that read the disk store (for metrics).
    misses: u64,
    /// The epoch whose delta dirty entries evicted to disk belong to.
    next_epoch: u64,
    what: String,
    scratch: Vec<u8>,
    /// The state key of the last lookup below the typed map.
    key_buf: Vec<u8>,
}

impl<K: Key, N: Namespace, V: Serialize + DeserializeOwned + Send + 'static> Table<K, N, V> {
    /// A table for operator `op` with a cache of about `budget` bytes. With
    /// no backing the budget is ignored: everything stays in memory.
    pub fn new(op: u16, groups: u16, budget: usize, backing: Option<Backing>, next_epoch: u64) -> Self {
        let entry_bytes = std::mem::size_of::<((K, N), Slot<V>)>();
        let budget = budget.min(crate::memory::MAX_STATE_CACHE_BYTES);
        let typed = budget / TYPED_SHARE;
        // Without a store nothing can be evicted: the budget does not apply.
        // With one, the map grows by doubling up to `cap` entries, a full
        // power-of-two table of at most half the budget (see
        // [`TYPED_SHARE`]), and then evicts. Allocated at that size at
        // once, a few thousand keys hashed all over it would touch nearly
        // every page of it (5 MB of an 8 MB cache for 2,000 keys); growing
        // costs, once, the old table beside the new one.
        let cap = backing.as_ref().map(|_| max_entries(budget / 2, entry_bytes));
        let small_cap = backing.as_ref().map_or(0, |_| max_entries(typed, entry_bytes));
        let packed = if backing.is_some() { (budget - typed).min(MAX_PACKED_BYTES) } else { 0 };
        Self {
            op,
            groups,
            map: HashMap::default(),
            packed: Packed::new(packed),
            pending: None,
            entry_bytes,
            bytes: 0,
            budget: cap.map_or(usize::MAX, |c| c * entry_bytes),
            crowd_at: cap.map_or(usize::MAX, |c| crowd_at(c * entry_bytes)),
            cap: cap.unwrap_or(0),
            at_cap: false,
            small_cap,
            backing,
            spilled: false,
            spilled_entries: 0,
            hits: 0,
            misses: 0,
            next_epoch,
            what: format!("state of operator {op}"),
            scratch: Vec::new(),
            key_buf: Vec::new(),
        }
    }

    /// Number of entries cached in memory (typed and packed).
    pub fn cached(&self) -> usize {
        self.map.len() + self.packed.len()
    }

    /// Entries evicted to disk so far.
    pub fn spilled_entries(&self) -> u64 {
        self.spilled_entries
    }

    /// Lookups answered from the cache, and those that read the disk
    /// store, so far.
    pub fn lookups(&self) -> (u64, u64) {
        (self.hits, self.misses)
    }

    /// Estimated bytes held in memory (typed and packed).
    pub fn cached_bytes(&self) -> usize {
        self.bytes + self.packed.bytes()
    }

    /// The value for `key` in `ns`, created by `init` when absent. Marks the
    /// entry changed.
    ///
    /// # Errors
    /// A store error while reading a lower layer or spilling.
    #[inline]
    pub fn upsert(&mut self, key: &K, ns: N, init: impl FnOnce() -> V) -> Result<&mut V> {
        // Checked here, not only in `claim`: the per-event path then moves
        // nothing when no key is pending.
        if self.pending.is_some() {
            if let Some(p) = self.claim(key, &ns)? {
                self.hits += 1;
                return Ok(change(&mut self.pending.insert(p).slot, init));
            }
        }
        // With the map crowded, a packed key is changed where it is; any
        // other miss makes room (if the map is full) before the lookup, so
        // a hit costs one hash and no second probe; eviction frees a fifth
        // of the budget at a time.
        let mut packed_read = false;
        if self.crowded() && !self.map.contains_key(&Probe(key, &ns)) {
            if let Some(p) = self.unpack(key, &ns)? {
                return Ok(change(&mut self.pending.insert(p).slot, init));
            }
            packed_read = true;
            self.make_room()?;
        }
        let Self { map, packed, backing, spilled, groups, op, what, bytes, entry_bytes, hits, misses, key_buf, .. } =
            self;
        let slot = match map.entry_ref(&Probe(key, &ns)) {
            EntryRef::Occupied(e) => {
                *hits += 1;
                e.into_mut()
            }
            EntryRef::Vacant(e) => {
                let layers = Layers { backing: backing.as_ref(), spilled: *spilled, groups: *groups, op: *op, what };
                let packed = if packed_read { None } else { Some(packed) };
                let loaded = layers.load(packed, (hits, misses), key_buf, key, &ns)?;
                *bytes += *entry_bytes;
                let slot = loaded
                    .map_or(Slot { value: None, dirty: false, persisted: false, hot: true }, |l| l.into_slot(true));
                e.insert_with_key((key.clone(), ns.clone()), slot)
            }
        };
        slot.hot = true;
        Ok(change(slot, init))
    }

    /// Reads the value for `key` in `ns` without marking it changed.
    ///
    /// # Errors
    /// A store error while reading a lower layer or spilling.
    pub fn get(&mut self, key: &K, ns: N) -> Result<Option<&V>> {
        Ok(self.cache(key, ns)?.and_then(|s| {
            s.hot = true;
            s.value.as_ref()
        }))
    }

    /// The cached slot of `key` in `ns`, loaded from a lower layer when it
    /// is not in memory; `None` when no layer holds it.
    fn cache(&mut self, key: &K, ns: N) -> Result<Option<&mut Slot<V>>> {
        if let Some(p) = self.claim(key, &ns)? {
            self.hits += 1;
            return Ok(Some(&mut self.pending.insert(p).slot));
        }
        if self.map.contains_key(&Probe(key, &ns)) {
            self.hits += 1;
        } else {
            let loaded = if self.crowded() {
                if let Some(p) = self.unpack(key, &ns)? {
                    return Ok(Some(&mut self.pending.insert(p).slot));
                }
                self.read_disk(key, &ns)?
            } else {
                self.load(key, &ns)?
            };
            let Some(loaded) = loaded else {
                return Ok(None);
            };
            self.make_room()?;
            self.bytes += self.entry_bytes;
            self.map.insert((key.clone(), ns.clone()), loaded.into_slot(true));
        }
        Ok(self.map.get_mut(&Probe(key, &ns)))
    }

    /// The value for `key` in `ns` to change in place, if present. Marks
    /// the entry changed.
    ///
    /// # Errors
    /// A store error while reading a lower layer or spilling.
    pub fn get_mut(&mut self, key: &K, ns: N) -> Result<Option<&mut V>> {
        let Some(slot) = self.cache(key, ns)? else { return Ok(None) };
        if slot.value.is_none() {
            return Ok(None);
        }
        slot.dirty = true;
        slot.hot = true;
        Ok(slot.value.as_mut())
    }

    /// Replaces the value for `key` in `ns`.
    ///
    /// # Errors
    /// A store error while spilling.
    pub fn put(&mut self, key: &K, ns: N, value: V) -> Result<()> {
        let mut pending = self.claim(key, &ns)?;
        if pending.is_none() && self.crowded() && !self.map.contains_key(&Probe(key, &ns)) {
            pending = self.unpack(key, &ns)?;
        }
        if let Some(mut p) = pending {
            p.slot.value = Some(value);
            p.slot.dirty = true;
            self.pending = Some(p);
            return Ok(());
        }
        if let Some(s) = self.map.get_mut(&Probe(key, &ns)) {
            s.value = Some(value);
            s.dirty = true;
            s.hot = true;
            return Ok(());
        }
        // A packed version is replaced: its record goes, and with it what
        // it knew of the disk.
        let mut persisted = self.disk_layers();
        if !self.packed.is_empty() {
            let sk = codec::state_key(key_group(key, self.groups), self.op, key, &ns)?;
            persisted |= self.packed.take(&sk, |entry, _| !codec::is_new(entry)).unwrap_or(false);
        }
        self.make_room()?;
        self.bytes += self.entry_bytes;
        self.map.insert((key.clone(), ns), Slot { value: Some(value), dirty: true, persisted, hot: true });
        Ok(())
    }

    /// Removes and returns the value for `key` in `ns`.
    ///
    /// # Errors
    /// A store error while reading a lower layer.
    pub fn take(&mut self, key: &K, ns: N) -> Result<Option<V>> {
        if let Some(p) = self.claim(key, &ns)? {
            return self.take_packed(p);
        }
        let slot = match self.map.remove(&Probe(key, &ns)) {
            Some(s) => Some(s),
            None => match self.unpack(key, &ns)? {
                Some(p) => return self.take_packed(p),
                None => self.read_disk(key, &ns)?,
            }
            .map(|l| {
                self.bytes += self.entry_bytes;
                l.into_slot(false)
            }),
        };
        let Some(slot) = slot else { return Ok(None) };
        if slot.persisted {
            // Lower layers hold a version: keep a deletion marker until it
            // reaches them. Deletion markers count against the budget like
            // values: a purge of many spilled keys must not grow memory.
            self.make_room()?;
            self.map.insert((key.clone(), ns), Slot { value: None, dirty: true, persisted: true, hot: false });
        } else {
            self.bytes -= self.entry_bytes;
        }
        Ok(slot.value)
    }

    /// Visits every value cached in memory (not those spilled).
    pub fn for_each_cached(&self, mut f: impl FnMut(&K, N, &V)) {
        for ((k, n), s) in &self.map {
            if let Some(v) = &s.value {
                f(k, n.clone(), v);
            }
        }
    }

    /// The disk store may hold versions of keys not in memory.
    fn disk_layers(&self) -> bool {
        self.backing.as_ref().is_some_and(|b| b.base || self.spilled)
    }

    /// Takes `key`/`ns` out of the layers below the typed map; `None` when
    /// none holds it.
    fn load(&mut self, key: &K, ns: &N) -> Result<Option<Loaded<V>>> {
        let Self { packed, backing, spilled, groups, op, what, hits, misses, key_buf, .. } = self;
        Layers { backing: backing.as_ref(), spilled: *spilled, groups: *groups, op: *op, what }.load(
            Some(packed),
            (hits, misses),
            key_buf,
            key,
            ns,
        )
    }

    /// The pending key if it is `key`/`ns`, taken out; any other is
    /// written back.
    fn claim(&mut self, key: &K, ns: &N) -> Result<Option<Pending<K, N, V>>> {
        match self.pending.take() {
            Some(p) if p.is(key, ns) => Ok(Some(p)),
            Some(p) => self.write_back(p).map(|()| None),
            None => Ok(None),
        }
    }

    /// Reads `key`/`ns` from the packed tier without moving it, as the
    /// pending key to hand out; `None` when the tier does not hold it.
    fn unpack(&mut self, key: &K, ns: &N) -> Result<Option<Pending<K, N, V>>> {
        if self.packed.is_empty() {
            return Ok(None);
        }
        codec::state_key_into(key_group(key, self.groups), self.op, key, ns, &mut self.key_buf)?;
        let Some(at) = self.packed.find(&self.key_buf) else { return Ok(None) };
        // `dirty` of a pending slot is whether it changed since (the record
        // keeps its own flag).
        let slot = Loaded::from_entry(self.packed.entry_at(at).0, false, &self.what)?.into_slot(true);
        self.hits += 1;
        Ok(Some(Pending { key: (key.clone(), ns.clone()), slot, at }))
    }

    /// Reads `key`/`ns` from the disk layers (not the packed tier).
    fn read_disk(&mut self, key: &K, ns: &N) -> Result<Option<Loaded<V>>> {
        let Self { backing, spilled, groups, op, what, hits, misses, key_buf, .. } = self;
        Layers { backing: backing.as_ref(), spilled: *spilled, groups: *groups, op: *op, what }.load(
            None,
            (hits, misses),
            key_buf,
            key,
            ns,
        )
    }

    /// Writes the pending key `p` back to its record when it changed.
    fn write_back(&mut self, p: Pending<K, N, V>) -> Result<()> {
        if !p.slot.dirty {
            return Ok(());
        }
        match &p.slot.value {
            Some(v) => codec::encode_entry(v, p.slot.persisted, &mut self.scratch)?,
            None => {
                self.scratch.clear();
                self.scratch.extend_from_slice(TOMBSTONE);
            }
        }
        if !self.packed.replace(p.at, &self.scratch) {
            self.unpack_into_map(p.at, p.key, p.slot)?;
        }
        self.fit_packed()
    }

    /// Moves the packed record at `at` into the map as `slot`: for an
    /// entry the packed tier refuses (past 64 KiB).
    fn unpack_into_map(&mut self, at: u32, key: (K, N), slot: Slot<V>) -> Result<()> {
        self.packed.remove_at(at);
        self.make_room()?;
        self.bytes += self.entry_bytes;
        self.map.insert(key, slot);
        Ok(())
    }

    /// Takes the pending key `p` out of the table: a deletion marker
    /// replaces its record when lower layers hold a version, else the
    /// record goes.
    fn take_packed(&mut self, p: Pending<K, N, V>) -> Result<Option<V>> {
        if !p.slot.persisted {
            self.packed.remove_at(p.at);
        } else if !self.packed.replace(p.at, TOMBSTONE) {
            self.unpack_into_map(p.at, p.key, Slot { value: None, dirty: true, persisted: true, hot: false })?;
        }
        self.fit_packed()?;
        Ok(p.slot.value)
    }

    /// The typed map has no room to spare: it is past the four fifths of
    /// its budget that eviction leaves it at. A packed key touched then
    /// stays packed (see [`Pending`]): moving it into the map would, in
    /// time, evict another key to the packed tier, and a working set
    /// larger than the map would keep trading keys between the two.
    fn crowded(&mut self) -> bool {
        self.bytes + self.entry_bytes > self.crowd_at || self.worn()
    }

    /// Writes the pending key back.
    fn flush(&mut self) -> Result<()> {
        match self.pending.take() {
            Some(p) => self.write_back(p),
            None => Ok(()),
        }
    }

    /// The map is at its last size and has no free slot left for a new
    /// key: the next insert would reallocate it. Evicting leaves deleted
    /// slots that inserts reuse only where they land, so a map kept near
    /// its capacity runs out of empty slots in time; the standard map then
    /// doubles (both tables held at once, 2.5× the budget) unless at most
    /// half its capacity is in use, in which case it tidies itself in
    /// place. Below its last size a full map may double.
    fn worn(&mut self) -> bool {
        if self.cap == 0 {
            return false;
        }
        // The size below the last holds at most `cap / 2`; deleted slots
        // lower `capacity()` only after the growth was seen.
        self.at_cap |= self.map.capacity() > self.cap / 2;
        self.at_cap && self.map.len() >= self.map.capacity()
    }

    /// Evicts cold entries when the typed map is over budget, or down to
    /// half of it when the map is [worn](Self::worn), into the packed tier;
    /// when that is over its budget, its oldest entries go to `spill`, and a
    /// changed one also to the next epoch's delta.
    fn make_room(&mut self) -> Result<()> {
        let worn = self.worn();
        if self.bytes + self.entry_bytes <= self.budget && !worn {
            return Ok(());
        }
        let Some(b) = self.backing.clone() else {
            return Ok(());
        };
        // The first eviction shrinks the map to its share, the rest of it
        // going packed.
        let shrink = std::mem::take(&mut self.small_cap);
        let target = if shrink > 0 {
            (shrink - shrink / 5) * self.entry_bytes
        } else if worn {
            (self.cap / 2).saturating_sub(1) * self.entry_bytes
        } else {
            self.crowd_at
        };
        let mut victims = Vec::new();
        let mut freed = 0usize;
        // Clock: the first pass spares entries touched since the last sweep.
        for pass in 0..2 {
            for (k, s) in self.map.iter_mut() {
                if self.bytes - freed <= target {
                    break;
                }
                if s.hot && pass == 0 {
                    s.hot = false;
                    continue;
                }
                if s.value.is_none() && !s.dirty && !s.persisted {
                    continue;
                }
                victims.push(k.clone());
                freed += self.entry_bytes;
                s.hot = true; // not picked twice
            }
        }
        // To disk in batches of bounded size: spill entries are a working
        // copy, so nothing needs the eviction to be one atomic write, and one
        // batch of half the table held several MiB at a time.
        let mut disk = Spill { batch: b.store.batch(), store: &b.store, epoch: self.next_epoch, entries: 0 };
        for k in victims {
            let Some(s) = self.map.remove(&k) else { continue };
            self.bytes -= self.entry_bytes;
            let sk = codec::state_key(key_group(&k.0, self.groups), self.op, &k.0, &k.1)?;
            let entry = match &s.value {
                Some(v) => {
                    self.scratch.clear();
                    codec::encode_value(v, &mut self.scratch)?;
                    put(s.persisted, &self.scratch)
                }
                None => TOMBSTONE.to_vec(),
            };
            if !self.packed.insert(&sk, &entry, s.dirty) {
                disk.write(&sk, &entry, s.dirty)?;
            }
        }
        if shrink > 0 {
            self.map.shrink_to(shrink);
            (self.cap, self.budget, self.at_cap) = (shrink, shrink * self.entry_bytes, false);
            self.crowd_at = crowd_at(self.budget);
        }
        self.spill(disk)
    }

    /// Brings the packed tier back under its budget, its oldest entries to
    /// `spill` through `disk`, and commits `disk`.
    fn spill(&mut self, mut disk: Spill<'_>) -> Result<()> {
        if self.packed.over_budget() {
            self.packed.shrink(|key, entry, dirty| disk.write(key, entry, dirty))?;
        }
        if disk.entries > 0 {
            self.spilled_entries += disk.entries;
            self.spilled = true;
            disk.store.commit(disk.batch)?;
        }
        Ok(())
    }

    /// [`Table::spill`] when the packed tier is over its budget.
    fn fit_packed(&mut self) -> Result<()> {
        if !self.packed.over_budget() {
            return Ok(());
        }
        let Some(b) = self.backing.clone() else { return Ok(()) };
        self.spill(Spill { batch: b.store.batch(), store: &b.store, epoch: self.next_epoch, entries: 0 })
    }

    /// Writes the delta of `epoch` (every entry changed since the last
    /// checkpoint) into `batch`, which the caller commits durably; a delta
    /// of [`RUN_MIN`] entries or more goes to `stage` at once as one sorted
    /// run instead (see [`Store::ingest`]), durable when this returns.
    ///
    /// # Errors
    /// An encoding or store error.
    pub fn snapshot(&mut self, epoch: u64, batch: &mut fjall::OwnedWriteBatch) -> Result<()> {
        self.flush()?;
        let Some(b) = &self.backing else { return Ok(()) };
        let store = b.store.clone();
        let keep_tombstones = self.spilled || b.base;
        let mut packed = Vec::new();
        self.packed.dirty_offsets(|at| packed.push(at));
        let typed = self.map.values().filter(|s| s.dirty).count();
        self.next_epoch = epoch + 1;
        if typed + packed.len() >= RUN_MIN {
            self.stage_run(epoch, &store, packed)?;
        } else {
            self.stage_batches(epoch, &store, batch, &packed)?;
        }
        // Written: every entry is persisted from now on.
        self.packed.drain_dirty(|_, entry| {
            codec::mark_persisted(entry);
            entry == TOMBSTONE && !keep_tombstones
        });
        Ok(())
    }

    /// [`Table::snapshot`] of a small delta: into `batch`, committed (not
    /// synced) every [`WRITE_CHUNK`] entries; `packed` are the offsets of
    /// the packed tier's dirty records.
    fn stage_batches(
        &mut self,
        epoch: u64,
        store: &Store,
        batch: &mut fjall::OwnedWriteBatch,
        packed: &[u32],
    ) -> Result<()> {
        let mut put = |key: Vec<u8>, entry: &[u8]| -> Result<()> {
            batch.insert(&store.stage, key, entry);
            if batch.len() >= WRITE_CHUNK {
                // The delta need not be one batch: an epoch counts only once
                // the task acks, after its last (durable) batch.
                store.commit(std::mem::replace(batch, store.batch()))?;
            }
            Ok(())
        };
        self.drain_typed(|sk, entry| put(codec::stage_key(epoch, sk), entry))?;
        for &at in packed {
            let (sk, entry) = self.packed.record_at(at);
            put(codec::stage_key(epoch, sk), entry)?;
        }
        Ok(())
    }

    /// [`Table::snapshot`] of a large delta: the typed map's changed entries
    /// encoded into one buffer, sorted with the packed tier's dirty records
    /// (at `packed`) by key, and written to `stage` as one run.
    fn stage_run(&mut self, epoch: u64, store: &Store, mut packed: Vec<u32>) -> Result<()> {
        // Records `[key len u16 LE][entry len u32 LE][key][entry]`.
        let mut buf = Vec::new();
        let mut typed = Vec::new();
        self.drain_typed(|sk, entry| {
            let (Ok(at), Ok(klen), Ok(elen)) =
                (u32::try_from(buf.len()), u16::try_from(sk.len()), u32::try_from(entry.len()))
            else {
                return Err(codec::corrupt("state being written", "a delta entry too large to sort"));
            };
            typed.push(at);
            buf.extend_from_slice(&klen.to_le_bytes());
            buf.extend_from_slice(&elen.to_le_bytes());
            buf.extend_from_slice(sk);
            buf.extend_from_slice(entry);
            Ok(())
        })?;
        let run = |at: u32| {
            let at = at as usize;
            let klen = usize::from(u16::from_le_bytes([buf[at], buf[at + 1]]));
            let elen = u32::from_le_bytes([buf[at + 2], buf[at + 3], buf[at + 4], buf[at + 5]]) as usize;
            buf[at + 6..at + 6 + klen + elen].split_at(klen)
        };
        let tier = &self.packed;
        let n = typed.len() + packed.len();
        typed.sort_unstable_by(|a, b| run(*a).0.cmp(run(*b).0));
        tier.sort_by_key(&mut packed);
        // A key is in one tier at most: merging the two gives ascending keys.
        let (mut t, mut p) =
            (typed.into_iter().map(run).peekable(), packed.into_iter().map(|at| tier.record_at(at)).peekable());
        let merged = std::iter::from_fn(|| match (t.peek(), p.peek()) {
            (Some(a), Some(b)) if a.0 < b.0 => t.next(),
            (Some(_), Some(_)) | (None, _) => p.next(),
            (Some(_), None) => t.next(),
        });
        // Each stage key is made in one buffer and copied once, into the
        // run's own key, not first into a key of its own.
        let mut key = Vec::new();
        let keys = merged.map(|(sk, entry)| {
            codec::stage_key_into(epoch, sk, &mut key);
            Ok((fjall::Slice::new(&key), Some(entry)))
        });
        store.ingest(&store.stage, keys)?;
        tracing::debug!(op = self.op, epoch, entries = n, "delta staged as a sorted run");
        Ok(())
    }

    /// Hands `write` the state key and entry of every changed entry of the
    /// typed map and marks it written; a deletion no layer below memory
    /// needs is dropped from the map (its delta carries it).
    fn drain_typed(&mut self, mut write: impl FnMut(&[u8], &[u8]) -> Result<()>) -> Result<()> {
        let Some(b) = &self.backing else { return Ok(()) };
        let keep_tombstones = self.spilled || b.base;
        let (op, groups) = (self.op, self.groups);
        let mut dropped = 0usize;
        let (mut buf, mut sk) = (std::mem::take(&mut self.scratch), std::mem::take(&mut self.key_buf));
        let mut err = None;
        self.map.retain(|(k, n), s| {
            if !s.dirty || err.is_some() {
                return true;
            }
            let written =
                codec::state_key_into(key_group(k, groups), op, k, n, &mut sk).and_then(|()| match &s.value {
                    Some(v) => {
                        buf.clear();
                        codec::encode_value(v, &mut buf)?;
                        write(&sk, &put(s.persisted, &buf))
                    }
                    None => write(&sk, TOMBSTONE),
                });
            if let Err(e) = written {
                err = Some(e);
                return true;
            }
            s.dirty = false;
            s.persisted = true;
            if s.value.is_none() && !keep_tombstones {
                // No layer below memory is read at runtime: the deletion
                // lives on in the delta alone.
                dropped += 1;
                return false;
            }
            true
        });
        (self.scratch, self.key_buf) = (buf, sk);
        self.bytes -= dropped * self.entry_bytes;
        err.map_or(Ok(()), Err)
    }

    /// Loads every committed entry of the key groups in `groups_owned` into
    /// memory or hands it to `visit` (used at restore to rebuild timers).
    ///
    /// # Errors
    /// A store or decoding error.
    pub fn restore(&mut self, groups_owned: std::ops::Range<u16>, mut visit: impl FnMut(&K, N, &V)) -> Result<()> {
        self.flush()?;
        let Some(b) = &self.backing else { return Ok(()) };
        let store = b.store.clone();
        let (started, mut entries) = (std::time::Instant::now(), 0u64);
        for g in groups_owned.clone() {
            let mut prefix = Vec::with_capacity(4);
            codec::key_prefix(g, self.op, &mut prefix);
            for item in store.state.prefix(&prefix) {
                let (k, v) = item.into_inner().map_err(|e| store.err(e))?;
                let (_, _, key, ns): (u16, u16, K, N) = codec::decode_state_key(&k)?;
                let value: V = codec::decode_value(&v, &self.what)?;
                visit(&key, ns.clone(), &value);
                entries += 1;
                if self.bytes + self.entry_bytes <= self.budget {
                    self.bytes += self.entry_bytes;
                    self.map.insert((key, ns), Slot { value: Some(value), dirty: false, persisted: true, hot: false });
                }
            }
        }
        tracing::info!(op = self.op, groups = ?groups_owned, entries, ms = started.elapsed().as_secs_f64() * 1e3, "state restored");
        Ok(())
    }
    /// Visits up to about `limit` committed entries of this table in the key
    /// groups `groups`, continuing where `cursor` stopped; the cursor wraps
    /// around after the last group. Lets TTL cleanup walk the disk a little
    /// at a time instead of scanning it at once. Without a store it does
    /// nothing.
    ///
    /// # Errors
    /// A store or decoding error.
    pub fn scan_committed(
        &self,
        groups: std::ops::Range<u16>,
        cursor: &mut ScanCursor,
        limit: usize,
        mut visit: impl FnMut(K, N, V),
    ) -> Result<()> {
        use std::ops::Bound;
        let Some(b) = &self.backing else { return Ok(()) };
        let store = &b.store;
        let mut seen = 0usize;
        let mut g = cursor.group.max(groups.start);
        while seen < limit {
            if g >= groups.end {
                *cursor = ScanCursor::default();
                return Ok(());
            }
            let prefix = (u32::from(g) << 16) | u32::from(self.op);
            let lo = match cursor.after.take() {
                Some(a) => Bound::Excluded(a),
                None => Bound::Included(prefix.to_be_bytes().to_vec()),
            };
            let hi = Bound::Excluded((u64::from(prefix) + 1).to_be_bytes()[4..].to_vec());
            // An empty group costs a seek: count it so a call stays bounded.
            seen += 1;
            for item in store.state.range((lo, hi)) {
                let (k, v) = item.into_inner().map_err(|e| store.err(e))?;
                let (_, _, key, ns): (u16, u16, K, N) = codec::decode_state_key(&k)?;
                visit(key, ns, codec::decode_value(&v, &self.what)?);
                seen += 1;
                if seen >= limit {
                    cursor.group = g;
                    cursor.after = Some(k.to_vec());
                    return Ok(());
                }
            }
            g += 1;
        }
        cursor.group = g;
        Ok(())
    }
}

/// Where a map of `budget` bytes is crowded: four fifths of it.
fn crowd_at(budget: usize) -> usize {
    budget - budget / 5
}

/// Marks `slot` changed and hands out its value, created by `init` when
/// absent.
fn change<V>(slot: &mut Slot<V>, init: impl FnOnce() -> V) -> &mut V {
    slot.dirty = true;
    slot.value.get_or_insert_with(init)
}

/// How many entries of `entry_bytes` a cache of `budget` bytes holds: the
/// capacity of the largest hash table (a power of two of buckets, each an
/// entry and a control byte, at most 7/8 full) that fits the budget — the
/// table itself, not just its entries, is what memory must hold.
/// The budget is capped at [`crate::memory::MAX_STATE_CACHE_BYTES`], so the
/// hash table's own size arithmetic (buckets × entry) cannot overflow.
fn max_entries(budget: usize, entry_bytes: usize) -> usize {
    let budget = budget.min(crate::memory::MAX_STATE_CACHE_BYTES);
    let fits = (budget / (entry_bytes + 1)).max(16);
    let buckets = 1usize << (usize::BITS - 1 - fits.leading_zeros());
    buckets / 8 * 7
}

#[cfg(test)]
mod max_entries_tests {
    // Guards issue 12 §9: no accepted budget, and no budget at all, makes
    // the table's allocation size overflow ("Hash table capacity
    // overflow") or come out as 0 entries.
    #[test]
    fn every_budget_gives_an_allocatable_table() {
        for entry in [1usize, 24, 64, 4096] {
            for budget in [0, 1, 64 << 10, 8 << 20, crate::memory::MAX_STATE_CACHE_BYTES, usize::MAX] {
                let n = super::max_entries(budget, entry);
                assert!(n >= 14, "budget {budget} entry {entry}: {n}");
                let buckets = (n / 7 * 8).next_power_of_two();
                let bytes = buckets.checked_mul(entry + 1).expect("table size overflows");
                assert!(bytes <= crate::memory::MAX_STATE_CACHE_BYTES.max(16 * (entry + 1)), "{budget} {entry}");
            }
        }
    }
}

/// Where [`Table::scan_committed`] continues.
#[derive(Debug, Clone, Default)]
pub struct ScanCursor {
    group: u16,
    after: Option<Vec<u8>>,
}

/// A put for the stage or spill keyspace of an entry whose lower layers
/// hold a version (`persisted`) or none.
fn put(persisted: bool, value: &[u8]) -> Vec<u8> {
    if persisted {
        codec::put_entry(value)
    } else {
        codec::put_new_entry(value)
    }
}

/// Entries on their way to `spill` (and, when changed, to the delta of
/// `epoch`), committed in batches of at most [`WRITE_CHUNK`].
struct Spill<'a> {
    batch: fjall::OwnedWriteBatch,
    store: &'a Store,
    epoch: u64,
    entries: u64,
}

impl Spill<'_> {
    fn write(&mut self, sk: &[u8], entry: &[u8], dirty: bool) -> Result<()> {
        if self.batch.len() >= WRITE_CHUNK {
            self.store.commit(std::mem::replace(&mut self.batch, self.store.batch()))?;
        }
        if dirty {
            self.batch.insert(&self.store.stage, codec::stage_key(self.epoch, sk), entry);
        }
        self.batch.insert(&self.store.spill, sk, entry);
        self.entries += 1;
        Ok(())
    }
}

/// What reading the layers below the typed map needs, borrowed apart from
/// the map itself.
struct Layers<'a> {
    backing: Option<&'a Backing>,
    spilled: bool,
    groups: u16,
    op: u16,
    what: &'a str,
}

impl Layers<'_> {
    /// Takes `key`/`ns` out of the packed tier (counted in `hits`), or
    /// reads it from disk (counted in `misses`); `None` when no layer
    /// holds it. The state key is encoded into `buf`.
    fn load<K: Key, N: Namespace, V: DeserializeOwned>(
        &self,
        packed: Option<&mut Packed>,
        (hits, misses): (&mut u64, &mut u64),
        buf: &mut Vec<u8>,
        key: &K,
        ns: &N,
    ) -> Result<Option<Loaded<V>>> {
        let Some(b) = self.backing else { return Ok(None) };
        let disk = self.spilled || b.base;
        let packed = packed.filter(|p| !p.is_empty());
        if packed.is_none() && !disk {
            return Ok(None);
        }
        codec::state_key_into(key_group(key, self.groups), self.op, key, ns, buf)?;
        let sk = &buf[..];
        let unpacked = packed.and_then(|p| p.take(sk, |entry, dirty| Loaded::from_entry(entry, dirty, self.what)));
        if let Some(l) = unpacked {
            *hits += 1;
            return l.map(Some);
        }
        if !disk {
            return Ok(None);
        }
        *misses += 1;
        let store = &b.store;
        let clean = |value| Ok(Some(Loaded { value, dirty: false, persisted: true }));
        if self.spilled {
            if let Some(e) = store.spill.get(sk).map_err(|e| store.err(e))? {
                return clean(codec::read_entry(&e)?.map(|v| codec::decode_value(v, self.what)).transpose()?);
            }
        }
        if b.base {
            if let Some(v) = store.state.get(sk).map_err(|e| store.err(e))? {
                return clean(Some(codec::decode_value(&v, self.what)?));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::StoreConfig;

    /// Checkpoints `t` as `epoch`: staged durably, complete, applied.
    fn checkpoint(t: &mut Table<u64, i64, u64>, store: &Store, epoch: u64) {
        let mut b = store.batch();
        t.snapshot(epoch, &mut b).unwrap();
        store.commit_durable(b).unwrap();
        store.mark_complete(epoch, false).unwrap();
        store.apply_epoch(epoch).unwrap();
    }

    /// Reopens the store in `dir` (which settles the retained epochs into
    /// `state`) and checks that `state` holds exactly `model`.
    fn assert_committed(dir: &std::path::Path, model: &std::collections::HashMap<(u64, i64), u64>) {
        let (store, _) = Store::open(dir, "t", &StoreConfig::default()).unwrap();
        let mut held = 0;
        for item in store.state.iter() {
            let (k, v) = item.into_inner().unwrap();
            let (_, _, key, ns): (u16, u16, u64, i64) = codec::decode_state_key(&k).unwrap();
            let v: u64 = codec::decode_value(&v, "test").unwrap();
            assert_eq!(model.get(&(key, ns)), Some(&v), "committed {key}/{ns}");
            held += 1;
        }
        assert_eq!(held, model.len());
    }

    /// The markers of the entries staged for `epoch`, in key order.
    fn staged_markers(store: &Store, epoch: u64) -> Vec<u8> {
        store.stage.prefix(epoch.to_be_bytes()).map(|i| i.into_inner().unwrap().1[0]).collect()
    }

    // Guards the undo read the table saves: a key no checkpoint holds is
    // staged as a new put, one it has written before (or read back from
    // the store) as a plain put.
    #[test]
    fn keys_no_checkpoint_holds_are_staged_as_new() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(dir.path(), "t", &StoreConfig::default()).unwrap();
        let store = Arc::new(store);
        let mut t: Table<u64, i64, u64> = Table::new(1, 128, 64 << 10, Some(Backing::new(store.clone(), false)), 1);
        let new = codec::put_new_entry(&[])[0];
        let old = codec::put_entry(&[])[0];
        *t.upsert(&7, 0, || 0).unwrap() += 1;
        let mut b = store.batch();
        t.snapshot(1, &mut b).unwrap();
        store.commit(b).unwrap();
        assert_eq!(staged_markers(&store, 1), [new]);
        *t.upsert(&7, 0, || 0).unwrap() += 1;
        *t.upsert(&8, 0, || 0).unwrap() += 1;
        let mut b = store.batch();
        t.snapshot(2, &mut b).unwrap();
        store.commit(b).unwrap();
        let mut got = staged_markers(&store, 2);
        got.sort_unstable();
        let mut want = vec![old, new];
        want.sort_unstable();
        assert_eq!(got, want, "key 7 was checkpointed at 1, key 8 is new");
    }

    // Guards the live path's memory (issue 16): a big cache holding few
    // keys is a small map.
    #[test]
    fn the_map_grows_with_its_keys() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(dir.path(), "t", &StoreConfig::default()).unwrap();
        let backing = Backing::new(Arc::new(store), false);
        let mut t: Table<u64, i64, u64> = Table::new(1, 128, 64 << 20, Some(backing), 1);
        for k in 0..2_000u64 {
            *t.upsert(&k, 0, || 0).unwrap() += 1;
        }
        assert!(t.cap > 50_000, "the typed map of a 64 MiB cache holds {} entries", t.cap);
        assert!(t.map.capacity() < 4_000, "2,000 keys in a map of {} entries", t.map.capacity());
        assert_eq!(t.spilled_entries(), 0);
    }

    // Guards the packed tier (issue 16): puts, takes, reads and changes of
    // keys that move between the typed map, the packed tier and disk, with
    // checkpoints between them, read back as a plain map says.
    // Guards the sorted-run delta: checkpoints whose deltas exceed
    // RUN_MIN, drawn from the typed map, the packed tier and (evicted
    // meanwhile) the memtable path, leave in `state` exactly the model's
    // contents once the store is reopened.
    #[test]
    fn large_deltas_written_as_runs_commit_what_the_table_held() {
        let dir = tempfile::tempdir().unwrap();
        let keys = 12 * RUN_MIN as u64;
        let mut model = std::collections::HashMap::new();
        {
            let (store, _) = Store::open(dir.path(), "t", &StoreConfig::default()).unwrap();
            let store = Arc::new(store);
            let mut t: Table<u64, i64, u64> = Table::new(1, 128, 2 << 20, Some(Backing::new(store.clone(), false)), 1);
            let mut x = 0x2545_f491_4f6c_dd1du64;
            let mut epoch = 0;
            for step in 1..=8 * keys {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let (k, ns) = (x % keys, ((x >> 20) % 2) as i64);
                if (x >> 40).is_multiple_of(8) {
                    assert_eq!(t.take(&k, ns).unwrap(), model.remove(&(k, ns)), "take {k} at {step}");
                } else {
                    *t.upsert(&k, ns, || 0).unwrap() += 1;
                    *model.entry((k, ns)).or_insert(0u64) += 1;
                }
                if step.is_multiple_of(2 * keys) {
                    epoch += 1;
                    checkpoint(&mut t, &store, epoch);
                }
            }
            assert!(t.packed.len() > 1_000 && t.spilled_entries() > 0, "every layer was used");
            assert!(store.get_meta::<u64>(super::super::store::META_APPLIED).unwrap().is_some(), "applied as runs");
        }
        assert_committed(dir.path(), &model);
    }

    #[test]
    fn every_operation_agrees_with_a_map_across_the_layers() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(dir.path(), "t", &StoreConfig::default()).unwrap();
        let store = Arc::new(store);
        let mut t: Table<u64, i64, u64> = Table::new(1, 128, 48 << 10, Some(Backing::new(store.clone(), false)), 1);
        let mut model = std::collections::HashMap::new();
        let mut epoch = 0;
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for step in 0..60_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let (k, ns) = (x % 4_000, ((x >> 20) % 2) as i64);
            match (x >> 40) % 10 {
                0..=4 => {
                    let v = t.upsert(&k, ns, || 0).unwrap();
                    *v += 1;
                    let m = model.entry((k, ns)).or_insert(0u64);
                    *m += 1;
                    assert_eq!(*v, *m, "upsert {k} at {step}");
                }
                5 => {
                    t.put(&k, ns, step).unwrap();
                    model.insert((k, ns), step);
                }
                6 => assert_eq!(t.take(&k, ns).unwrap(), model.remove(&(k, ns)), "take {k} at {step}"),
                7 => assert_eq!(t.get(&k, ns).unwrap().copied(), model.get(&(k, ns)).copied(), "get {k} at {step}"),
                8 => {
                    // Read, then change: both land on the same pending key.
                    let seen = t.get(&k, ns).unwrap().copied();
                    assert_eq!(seen, model.get(&(k, ns)).copied(), "get {k} at {step}");
                    if let Some(v) = t.get_mut(&k, ns).unwrap() {
                        *v += 1000;
                        *model.get_mut(&(k, ns)).unwrap() += 1000;
                    }
                }
                _ => {
                    if step % 50 == 0 {
                        epoch += 1;
                        checkpoint(&mut t, &store, epoch);
                    }
                }
            }
        }
        assert!(t.packed.len() > 500, "the packed tier held {} entries", t.packed.len());
        assert!(t.spilled_entries() > 0, "and overflowed to disk");
        for k in 0..4_000 {
            for ns in 0..2 {
                assert_eq!(t.get(&k, ns).unwrap().copied(), model.get(&(k, ns)).copied(), "key {k}/{ns}");
            }
        }
        // What a checkpoint of it all commits is the model.
        checkpoint(&mut t, &store, epoch + 1);
        drop((t, store));
        assert_committed(dir.path(), &model);
    }

    // Guards issue 16 §1: the moment the typed map first evicts, it is
    // held beside the packed records of the keys it evicts and beside the
    // smaller map it shrinks to; all three fit the budget.
    #[test]
    fn the_first_eviction_fits_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(dir.path(), "t", &StoreConfig::default()).unwrap();
        let backing = Backing::new(Arc::new(store), false);
        let budget = 1 << 20;
        let mut t: Table<u64, i64, u64> = Table::new(1, 128, budget, Some(backing), 1);
        // A hashbrown table of `capacity` entries allocates a power of two
        // of buckets, each an entry and a control byte.
        let alloc = |t: &Table<u64, i64, u64>| (t.map.capacity() * 8 / 7).next_power_of_two() * (t.entry_bytes + 1);
        let (mut before, mut peak) = (0, None);
        for k in 0..100_000u64 {
            *t.upsert(&(k * 7919), 0, || 0).unwrap() += 1;
            if t.small_cap == 0 {
                peak = Some(before + t.packed.bytes() + alloc(&t));
                break;
            }
            before = alloc(&t);
        }
        let peak = peak.expect("the map evicted");
        assert!(before <= budget / 2, "the map took {before} bytes of {budget} before evicting");
        assert!(peak <= budget, "the first eviction held {peak} bytes of a {budget}-byte budget");
    }

    /// Regression: keys streaming through a full cache used to wear the
    /// map out (deleted slots) until it doubled, past its budget.
    #[test]
    fn churn_through_a_full_cache_never_grows_the_map() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(dir.path(), "t", &StoreConfig::default()).unwrap();
        let backing = Backing::new(Arc::new(store), false);
        let mut t: Table<u64, i64, u64> = Table::new(1, 128, 64 << 10, Some(backing), 1);
        let cap = t.cap;
        let mut model = std::collections::HashMap::new();
        for i in 0..50 * cap as u64 {
            // New keys, and every fifth step one seen long ago (read back
            // from the store).
            let k = if i % 5 == 0 { i / 2 } else { i };
            *t.upsert(&(k * 7919), (k % 3) as i64, || 0).unwrap() += 1;
            *model.entry(k).or_insert(0u64) += 1;
        }
        assert!(t.at_cap, "the map grew to its last size");
        assert!(t.map.capacity() <= cap, "the map grew past its last size: {} > {cap}", t.map.capacity());
        assert!(t.bytes <= t.budget);
        assert!(t.spilled_entries() > 0, "the packed tier overflowed to disk");
        for (k, n) in model.iter().step_by(17) {
            assert_eq!(t.get(&(k * 7919), (k % 3) as i64).unwrap(), Some(n), "key {k}");
        }
    }
}
