//! Keyed state handles for process functions: [`ValueState`], [`MapState`],
//! [`ListState`] and [`AggregatingState`] (Flink's keyed state).
//!
//! A function declares its states once, in `open`, through a
//! [`StateRegistry`]; each declaration returns a small `Copy` handle. At run
//! time a handle reads and writes the value of the *current key* through the
//! context the runtime passes to the function (anything implementing
//! [`StateContext`]).
//!
//! Every declared state is backed by its own [`Table`] (a bounded cache over
//! the store), so it is checkpointed in the epoch delta like window state,
//! and the operator's cache budget is split among its tables. Table ids are
//! derived from the operator id: see [`state_table_id`].

use super::table::{Backing, Namespace, Table};
use super::ttl::{Stamped, StateTtl, Sweeper, Ttl, SWEEP_STEP};
use crate::aggregate::Aggregate;
use crate::error::{Error, Result};
use crate::key::Key;
use serde::{de::DeserializeOwned, Serialize};
use std::any::Any;
use std::marker::PhantomData;

/// Tables an operator may have: table 0 holds its timers, 1..=15 its
/// declared states (a [`MapState`] takes two).
pub const MAX_TABLES: u16 = 16;
/// Largest operator id whose tables fit the id space.
pub const MAX_PROCESS_OP: u16 = 0x7FF;

/// The state-table id of table `index` (0..16) of process operator `op`:
/// `0x8000 | op << 4 | index`. The high bit keeps these ids apart from the
/// window operators', which use their operator id (always below `0x8000`);
/// four bits leave room for the timers and 15 state tables.
///
/// # Errors
/// [`Error::Config`] when `op` or `index` do not fit.
pub fn state_table_id(op: u16, index: u16) -> Result<u16> {
    if op > MAX_PROCESS_OP {
        return Err(Error::config(
            "process",
            format!("operator id {op} is above {MAX_PROCESS_OP}: the job has too many operators for keyed state"),
        ));
    }
    if index >= MAX_TABLES {
        return Err(Error::config(
            "process",
            format!("a process function may declare at most {} state tables (a map state takes two)", MAX_TABLES - 1),
        ));
    }
    Ok(0x8000 | (op << 4) | index)
}

/// Values a state may hold.
pub trait StateValue: Clone + Serialize + DeserializeOwned + Send + 'static {}
impl<T: Clone + Serialize + DeserializeOwned + Send + 'static> StateValue for T {}

/// Where the tables of one operator instance live.
#[derive(Clone)]
pub(crate) struct TableSite {
    pub(crate) op: u16,
    pub(crate) key_groups: u16,
    pub(crate) owned: std::ops::Range<u16>,
    pub(crate) budget: usize,
    pub(crate) backing: Option<Backing>,
    pub(crate) next_epoch: u64,
}

impl TableSite {
    pub(crate) fn table<K: Key, N: Namespace, V: Serialize + DeserializeOwned + Send + 'static>(
        &self,
        index: u16,
    ) -> Result<Table<K, N, V>> {
        let id = state_table_id(self.op, index)?;
        Ok(Table::new(id, self.key_groups, self.budget, self.backing.clone(), self.next_epoch))
    }
}

/// One declared state of an operator instance, type-erased.
pub(crate) trait Slot<K>: Send {
    fn as_any(&mut self) -> &mut dyn Any;
    /// Adds the state's delta of `epoch` to `batch`.
    fn snapshot(&mut self, epoch: u64, batch: &mut fjall::OwnedWriteBatch) -> Result<()>;
    /// Deletes a few expired values (no-op without TTL).
    fn sweep(&mut self, now: i64) -> Result<()>;
}

type MakeSlot<K> = Box<dyn FnOnce(&TableSite) -> Result<Box<dyn Slot<K>>> + Send>;

/// Where a process function declares its keyed states (in `open`).
///
/// Declaration order names the states on disk: keep it stable across
/// versions of a job, or its checkpoints will not restore.
pub struct StateRegistry<K> {
    makers: Vec<MakeSlot<K>>,
    tables: u16,
}

impl<K: Key> StateRegistry<K> {
    pub(crate) fn new() -> Self {
        Self {
            makers: Vec::new(),
            // Table 0 holds the timers.
            tables: 1,
        }
    }

    /// Tables declared (timers included).
    pub(crate) fn tables(&self) -> u16 {
        self.tables
    }

    /// Builds the declared states at `site` (whose budget is per table).
    pub(crate) fn build(self, site: &TableSite) -> Result<Vec<Box<dyn Slot<K>>>> {
        self.makers.into_iter().map(|m| m(site)).collect()
    }

    fn reserve(&mut self, n: u16) -> Result<(usize, u16)> {
        let first = self.tables;
        if first + n > MAX_TABLES {
            return Err(Error::config(
                "process",
                format!(
                    "a process function may declare at most {} state tables (a map state takes two)",
                    MAX_TABLES - 1
                ),
            ));
        }
        self.tables += n;
        Ok((self.makers.len(), first))
    }

    /// Declares a single value per key.
    ///
    /// # Errors
    /// [`Error::Config`] when too many states are declared.
    pub fn value<V: StateValue>(&mut self, ttl: Option<StateTtl>) -> Result<ValueState<V>> {
        let (slot, table) = self.reserve(1)?;
        self.makers.push(Box::new(move |site: &TableSite| {
            let s: Box<dyn Slot<K>> = Box::new(ValueSlot::<K, V> {
                table: site.table(table)?,
                ttl: Ttl::new(ttl),
                sweeper: Sweeper::new(site.owned.clone()),
                backed: site.backing.is_some(),
            });
            Ok(s)
        }));
        Ok(ValueState { slot, _v: PhantomData })
    }

    /// Declares a map per key, stored one entry per map key.
    ///
    /// # Errors
    /// [`Error::Config`] when too many states are declared.
    pub fn map<MK: StateValue + Namespace, V: StateValue>(&mut self, ttl: Option<StateTtl>) -> Result<MapState<MK, V>> {
        let (slot, table) = self.reserve(2)?;
        self.makers.push(Box::new(move |site: &TableSite| {
            let s: Box<dyn Slot<K>> = Box::new(MapSlot::<K, MK, V> {
                entries: site.table(table)?,
                index: site.table(table + 1)?,
                ttl: Ttl::new(ttl),
                sweeper: Sweeper::new(site.owned.clone()),
                backed: site.backing.is_some(),
            });
            Ok(s)
        }));
        Ok(MapState { slot, _v: PhantomData })
    }

    /// Declares a list per key. With TTL every element expires on its own.
    ///
    /// # Errors
    /// [`Error::Config`] when too many states are declared.
    pub fn list<V: StateValue>(&mut self, ttl: Option<StateTtl>) -> Result<ListState<V>> {
        let (slot, table) = self.reserve(1)?;
        self.makers.push(Box::new(move |site: &TableSite| {
            let s: Box<dyn Slot<K>> = Box::new(ListSlot::<K, V> {
                table: site.table(table)?,
                ttl: Ttl::new(ttl),
                sweeper: Sweeper::new(site.owned.clone()),
                backed: site.backing.is_some(),
            });
            Ok(s)
        }));
        Ok(ListState { slot, _v: PhantomData })
    }

    /// Declares an incremental aggregate per key: values are added with
    /// [`AggregatingState::add`], the result read with
    /// [`AggregatingState::get`].
    ///
    /// # Errors
    /// [`Error::Config`] when too many states are declared.
    pub fn aggregating<T: 'static, A: Aggregate<T>>(
        &mut self,
        agg: A,
        ttl: Option<StateTtl>,
    ) -> Result<AggregatingState<T, A>> {
        let (slot, table) = self.reserve(1)?;
        self.makers.push(Box::new(move |site: &TableSite| {
            let s: Box<dyn Slot<K>> = Box::new(AggSlot::<K, T, A> {
                table: site.table(table)?,
                agg,
                ttl: Ttl::new(ttl),
                sweeper: Sweeper::new(site.owned.clone()),
                backed: site.backing.is_some(),
                _t: PhantomData,
            });
            Ok(s)
        }));
        Ok(AggregatingState { slot, _v: PhantomData })
    }
}

/// The declared states seen from the current key.
pub struct Scope<'a, K> {
    pub(crate) key: &'a K,
    pub(crate) now: i64,
    pub(crate) slots: &'a mut [Box<dyn Slot<K>>],
}

/// A context through which state handles reach the current key's values
/// (the process function's context implements it).
pub trait StateContext<K> {
    /// The current key, processing time and declared states.
    fn scope(&mut self) -> Scope<'_, K>;
}

impl<'a, K: Key> Scope<'a, K> {
    fn slot<S: 'static>(self, index: usize) -> Result<(&'a K, i64, &'a mut S)> {
        let Scope { key, now, slots } = self;
        let s = slots
            .get_mut(index)
            .and_then(|s| s.as_any().downcast_mut::<S>())
            .ok_or_else(|| Error::config("state", "a state handle was used with a context that did not declare it"))?;
        Ok((key, now, s))
    }
}

// ---------------------------------------------------------------- value

struct ValueSlot<K: Key, V> {
    table: Table<K, (), Stamped<V>>,
    ttl: Ttl,
    sweeper: Sweeper<K, ()>,
    backed: bool,
}

impl<K: Key, V: StateValue> Slot<K> for ValueSlot<K, V> {
    fn as_any(&mut self) -> &mut dyn Any {
        self
    }
    fn snapshot(&mut self, epoch: u64, batch: &mut fjall::OwnedWriteBatch) -> Result<()> {
        self.table.snapshot(epoch, batch)
    }
    fn sweep(&mut self, now: i64) -> Result<()> {
        if self.ttl.ms.is_none() {
            return Ok(());
        }
        let ttl = self.ttl;
        self.sweeper.step(&mut self.table, self.backed, SWEEP_STEP, |v| ttl.expired(v.at, now), |_, _| {})
    }
}

/// A single value per key (Flink's `ValueState`).
#[derive(Debug)]
pub struct ValueState<V> {
    slot: usize,
    _v: PhantomData<fn() -> V>,
}

impl<V> Clone for ValueState<V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<V> Copy for ValueState<V> {}

impl<V: StateValue> ValueState<V> {
    /// The current key's value, if any (and not expired).
    ///
    /// # Errors
    /// A store error, or a handle used with a foreign context.
    pub fn value<K: Key>(&self, ctx: &mut impl StateContext<K>) -> Result<Option<V>> {
        let (key, now, s) = ctx.scope().slot::<ValueSlot<K, V>>(self.slot)?;
        let Some(v) = s.table.get(key, ())? else {
            return Ok(None);
        };
        if s.ttl.expired(v.at, now) {
            s.table.take(key, ())?;
            return Ok(None);
        }
        if !s.ttl.on_read {
            return Ok(Some(v.value.clone()));
        }
        let Some(v) = s.table.get_mut(key, ())? else {
            return Ok(None);
        };
        v.at = now;
        Ok(Some(v.value.clone()))
    }

    /// Sets the current key's value.
    ///
    /// # Errors
    /// A store error, or a handle used with a foreign context.
    pub fn update<K: Key>(&self, ctx: &mut impl StateContext<K>, value: V) -> Result<()> {
        let (key, now, s) = ctx.scope().slot::<ValueSlot<K, V>>(self.slot)?;
        let at = s.ttl.stamp(now);
        s.table.put(key, (), Stamped { at, value })
    }

    /// Removes the current key's value.
    ///
    /// # Errors
    /// A store error, or a handle used with a foreign context.
    pub fn clear<K: Key>(&self, ctx: &mut impl StateContext<K>) -> Result<()> {
        let (key, _, s) = ctx.scope().slot::<ValueSlot<K, V>>(self.slot)?;
        s.table.take(key, ())?;
        Ok(())
    }
}

// ---------------------------------------------------------------- map

struct MapSlot<K: Key, MK: Namespace, V> {
    entries: Table<K, MK, Stamped<V>>,
    /// The map keys present per key, in insertion order (for iteration).
    index: Table<K, (), Vec<MK>>,
    ttl: Ttl,
    sweeper: Sweeper<K, MK>,
    backed: bool,
}

impl<K: Key, MK: StateValue + Namespace, V: StateValue> MapSlot<K, MK, V> {
    fn unindex(&mut self, key: &K, mk: &MK) -> Result<()> {
        let Some(mut keys) = self.index.take(key, ())? else {
            return Ok(());
        };
        keys.retain(|k| k != mk);
        if !keys.is_empty() {
            self.index.put(key, (), keys)?;
        }
        Ok(())
    }

    /// The live value of `mk`, deleting it if expired.
    fn live(&mut self, key: &K, mk: &MK, now: i64) -> Result<Option<&Stamped<V>>> {
        let expired = match self.entries.get(key, mk.clone())? {
            None => return Ok(None),
            Some(v) => self.ttl.expired(v.at, now),
        };
        if expired {
            self.entries.take(key, mk.clone())?;
            self.unindex(key, mk)?;
            return Ok(None);
        }
        if self.ttl.on_read {
            if let Some(v) = self.entries.get_mut(key, mk.clone())? {
                v.at = now;
            }
        }
        // A read-only access must not mark the entry changed.
        self.entries.get(key, mk.clone())
    }
}

impl<K: Key, MK: StateValue + Namespace, V: StateValue> Slot<K> for MapSlot<K, MK, V> {
    fn as_any(&mut self) -> &mut dyn Any {
        self
    }
    fn snapshot(&mut self, epoch: u64, batch: &mut fjall::OwnedWriteBatch) -> Result<()> {
        self.entries.snapshot(epoch, batch)?;
        self.index.snapshot(epoch, batch)
    }
    fn sweep(&mut self, now: i64) -> Result<()> {
        if self.ttl.ms.is_none() {
            return Ok(());
        }
        let ttl = self.ttl;
        let mut gone = Vec::new();
        self.sweeper.step(
            &mut self.entries,
            self.backed,
            SWEEP_STEP,
            |v| ttl.expired(v.at, now),
            |k, mk| gone.push((k.clone(), mk.clone())),
        )?;
        for (k, mk) in gone {
            self.unindex(&k, &mk)?;
        }
        Ok(())
    }
}

/// A map per key (Flink's `MapState`). Each entry is stored on its own, so
/// reading or writing one entry never loads the others; iteration follows
/// a per-key list of the map keys in insertion order.
#[derive(Debug)]
pub struct MapState<MK, V> {
    slot: usize,
    _v: PhantomData<fn() -> (MK, V)>,
}

impl<MK, V> Clone for MapState<MK, V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<MK, V> Copy for MapState<MK, V> {}

impl<MK: StateValue + Namespace, V: StateValue> MapState<MK, V> {
    /// The value of `mk` in the current key's map.
    ///
    /// # Errors
    /// A store error, or a handle used with a foreign context.
    pub fn get<K: Key>(&self, ctx: &mut impl StateContext<K>, mk: &MK) -> Result<Option<V>> {
        let (key, now, s) = ctx.scope().slot::<MapSlot<K, MK, V>>(self.slot)?;
        Ok(s.live(key, mk, now)?.map(|v| v.value.clone()))
    }

    /// True when the current key's map holds `mk`.
    ///
    /// # Errors
    /// As for [`MapState::get`].
    pub fn contains<K: Key>(&self, ctx: &mut impl StateContext<K>, mk: &MK) -> Result<bool> {
        let (key, now, s) = ctx.scope().slot::<MapSlot<K, MK, V>>(self.slot)?;
        Ok(s.live(key, mk, now)?.is_some())
    }

    /// Sets `mk` to `value` in the current key's map.
    ///
    /// # Errors
    /// As for [`MapState::get`].
    pub fn put<K: Key>(&self, ctx: &mut impl StateContext<K>, mk: MK, value: V) -> Result<()> {
        let (key, now, s) = ctx.scope().slot::<MapSlot<K, MK, V>>(self.slot)?;
        let at = s.ttl.stamp(now);
        if s.live(key, &mk, now)?.is_none() {
            s.index.upsert(key, (), Vec::new)?.push(mk.clone());
        }
        s.entries.put(key, mk, Stamped { at, value })
    }

    /// Removes `mk` from the current key's map and returns its value.
    ///
    /// # Errors
    /// As for [`MapState::get`].
    pub fn remove<K: Key>(&self, ctx: &mut impl StateContext<K>, mk: &MK) -> Result<Option<V>> {
        let (key, now, s) = ctx.scope().slot::<MapSlot<K, MK, V>>(self.slot)?;
        let Some(v) = s.entries.take(key, mk.clone())? else {
            return Ok(None);
        };
        s.unindex(key, mk)?;
        Ok((!s.ttl.expired(v.at, now)).then_some(v.value))
    }

    /// The map keys of the current key, in insertion order.
    ///
    /// # Errors
    /// As for [`MapState::get`].
    pub fn keys<K: Key>(&self, ctx: &mut impl StateContext<K>) -> Result<Vec<MK>> {
        Ok(self.entries(ctx)?.into_iter().map(|(k, _)| k).collect())
    }

    /// The entries of the current key's map, in insertion order.
    ///
    /// # Errors
    /// As for [`MapState::get`].
    pub fn entries<K: Key>(&self, ctx: &mut impl StateContext<K>) -> Result<Vec<(MK, V)>> {
        let (key, now, s) = ctx.scope().slot::<MapSlot<K, MK, V>>(self.slot)?;
        let keys = s.index.get(key, ())?.cloned().unwrap_or_default();
        let mut out = Vec::with_capacity(keys.len());
        for mk in keys {
            if let Some(v) = s.live(key, &mk, now)? {
                let v = v.value.clone();
                out.push((mk, v));
            }
        }
        Ok(out)
    }

    /// True when the current key's map has no live entry.
    ///
    /// # Errors
    /// As for [`MapState::get`].
    pub fn is_empty<K: Key>(&self, ctx: &mut impl StateContext<K>) -> Result<bool> {
        Ok(self.entries(ctx)?.is_empty())
    }

    /// Removes the current key's whole map.
    ///
    /// # Errors
    /// As for [`MapState::get`].
    pub fn clear<K: Key>(&self, ctx: &mut impl StateContext<K>) -> Result<()> {
        let (key, _, s) = ctx.scope().slot::<MapSlot<K, MK, V>>(self.slot)?;
        for mk in s.index.take(key, ())?.unwrap_or_default() {
            s.entries.take(key, mk)?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- list

struct ListSlot<K: Key, V> {
    table: Table<K, (), Vec<Stamped<V>>>,
    ttl: Ttl,
    sweeper: Sweeper<K, ()>,
    backed: bool,
}

impl<K: Key, V: StateValue> Slot<K> for ListSlot<K, V> {
    fn as_any(&mut self) -> &mut dyn Any {
        self
    }
    fn snapshot(&mut self, epoch: u64, batch: &mut fjall::OwnedWriteBatch) -> Result<()> {
        self.table.snapshot(epoch, batch)
    }
    fn sweep(&mut self, now: i64) -> Result<()> {
        if self.ttl.ms.is_none() {
            return Ok(());
        }
        let ttl = self.ttl;
        // A list goes when its newest element expired; older expired
        // elements are dropped when the list is next read or written.
        self.sweeper.step(
            &mut self.table,
            self.backed,
            SWEEP_STEP,
            |l| l.iter().all(|e| ttl.expired(e.at, now)),
            |_, _| {},
        )
    }
}

impl<K: Key, V: StateValue> ListSlot<K, V> {
    /// Drops expired elements; returns the live list (if any).
    fn live(&mut self, key: &K, now: i64) -> Result<Option<&Vec<Stamped<V>>>> {
        let ttl = self.ttl;
        let stale = match self.table.get(key, ())? {
            None => return Ok(None),
            Some(l) => l.iter().any(|e| ttl.expired(e.at, now)),
        };
        if stale || ttl.on_read {
            let Some(l) = self.table.get_mut(key, ())? else {
                return Ok(None);
            };
            l.retain(|e| !ttl.expired(e.at, now));
            if ttl.on_read {
                l.iter_mut().for_each(|e| e.at = now);
            }
            if l.is_empty() {
                self.table.take(key, ())?;
                return Ok(None);
            }
        }
        self.table.get(key, ())
    }
}

/// A list per key (Flink's `ListState`).
#[derive(Debug)]
pub struct ListState<V> {
    slot: usize,
    _v: PhantomData<fn() -> V>,
}

impl<V> Clone for ListState<V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<V> Copy for ListState<V> {}

impl<V: StateValue> ListState<V> {
    /// The current key's list (empty when absent).
    ///
    /// # Errors
    /// A store error, or a handle used with a foreign context.
    pub fn get<K: Key>(&self, ctx: &mut impl StateContext<K>) -> Result<Vec<V>> {
        let (key, now, s) = ctx.scope().slot::<ListSlot<K, V>>(self.slot)?;
        Ok(s.live(key, now)?.map(|l| l.iter().map(|e| e.value.clone()).collect()).unwrap_or_default())
    }

    /// Appends `value` to the current key's list.
    ///
    /// # Errors
    /// As for [`ListState::get`].
    pub fn add<K: Key>(&self, ctx: &mut impl StateContext<K>, value: V) -> Result<()> {
        let (key, now, s) = ctx.scope().slot::<ListSlot<K, V>>(self.slot)?;
        let at = s.ttl.stamp(now);
        s.live(key, now)?;
        s.table.upsert(key, (), Vec::new)?.push(Stamped { at, value });
        Ok(())
    }

    /// Replaces the current key's list.
    ///
    /// # Errors
    /// As for [`ListState::get`].
    pub fn update<K: Key>(&self, ctx: &mut impl StateContext<K>, values: Vec<V>) -> Result<()> {
        let (key, now, s) = ctx.scope().slot::<ListSlot<K, V>>(self.slot)?;
        if values.is_empty() {
            s.table.take(key, ())?;
            return Ok(());
        }
        let at = s.ttl.stamp(now);
        let list = values.into_iter().map(|value| Stamped { at, value }).collect();
        s.table.put(key, (), list)
    }

    /// Removes the current key's list.
    ///
    /// # Errors
    /// As for [`ListState::get`].
    pub fn clear<K: Key>(&self, ctx: &mut impl StateContext<K>) -> Result<()> {
        let (key, _, s) = ctx.scope().slot::<ListSlot<K, V>>(self.slot)?;
        s.table.take(key, ())?;
        Ok(())
    }
}

// ---------------------------------------------------------------- aggregating

struct AggSlot<K: Key, T, A: Aggregate<T>> {
    table: Table<K, (), Stamped<A::Acc>>,
    agg: A,
    ttl: Ttl,
    sweeper: Sweeper<K, ()>,
    backed: bool,
    _t: PhantomData<fn(&T)>,
}

impl<K: Key, T: 'static, A: Aggregate<T>> Slot<K> for AggSlot<K, T, A> {
    fn as_any(&mut self) -> &mut dyn Any {
        self
    }
    fn snapshot(&mut self, epoch: u64, batch: &mut fjall::OwnedWriteBatch) -> Result<()> {
        self.table.snapshot(epoch, batch)
    }
    fn sweep(&mut self, now: i64) -> Result<()> {
        if self.ttl.ms.is_none() {
            return Ok(());
        }
        let ttl = self.ttl;
        self.sweeper.step(&mut self.table, self.backed, SWEEP_STEP, |v| ttl.expired(v.at, now), |_, _| {})
    }
}

/// An incremental aggregate per key (Flink's `AggregatingState`): values go
/// in with `add`, only the accumulator is stored.
#[derive(Debug)]
pub struct AggregatingState<T, A> {
    slot: usize,
    _v: PhantomData<fn() -> (T, A)>,
}

impl<T, A> Clone for AggregatingState<T, A> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T, A> Copy for AggregatingState<T, A> {}

impl<T: 'static, A: Aggregate<T>> AggregatingState<T, A> {
    /// Adds `value` to the current key's accumulator.
    ///
    /// # Errors
    /// A store error, or a handle used with a foreign context.
    pub fn add<K: Key>(&self, ctx: &mut impl StateContext<K>, value: &T) -> Result<()> {
        let (key, now, s) = ctx.scope().slot::<AggSlot<K, T, A>>(self.slot)?;
        let expired = s.table.get(key, ())?.is_some_and(|v| s.ttl.expired(v.at, now));
        if expired {
            s.table.take(key, ())?;
        }
        let at = s.ttl.stamp(now);
        let agg = &s.agg;
        let acc = s.table.upsert(key, (), || Stamped { at, value: agg.create() })?;
        agg.add(&mut acc.value, value);
        acc.at = at;
        Ok(())
    }

    /// The current key's aggregate, `None` when nothing was added.
    ///
    /// # Errors
    /// As for [`AggregatingState::add`].
    pub fn get<K: Key>(&self, ctx: &mut impl StateContext<K>) -> Result<Option<A::Out>> {
        let (key, now, s) = ctx.scope().slot::<AggSlot<K, T, A>>(self.slot)?;
        let Some(v) = s.table.get(key, ())? else {
            return Ok(None);
        };
        if s.ttl.expired(v.at, now) {
            s.table.take(key, ())?;
            return Ok(None);
        }
        if !s.ttl.on_read {
            return Ok(Some(s.agg.result(&v.value)));
        }
        let Some(v) = s.table.get_mut(key, ())? else {
            return Ok(None);
        };
        v.at = now;
        Ok(Some(s.agg.result(&v.value)))
    }

    /// Removes the current key's accumulator.
    ///
    /// # Errors
    /// As for [`AggregatingState::add`].
    pub fn clear<K: Key>(&self, ctx: &mut impl StateContext<K>) -> Result<()> {
        let (key, _, s) = ctx.scope().slot::<AggSlot<K, T, A>>(self.slot)?;
        s.table.take(key, ())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::{Avg, Count};
    use crate::state::{Store, StoreConfig};
    use std::sync::Arc;
    use std::time::Duration;

    struct Ctx {
        key: String,
        now: i64,
        slots: Vec<Box<dyn Slot<String>>>,
    }

    impl StateContext<String> for Ctx {
        fn scope(&mut self) -> Scope<'_, String> {
            Scope { key: &self.key, now: self.now, slots: &mut self.slots }
        }
    }

    fn site(backing: Option<Backing>) -> TableSite {
        TableSite { op: 3, key_groups: 128, owned: 0..128, budget: 1 << 20, backing, next_epoch: 1 }
    }

    fn ctx(reg: StateRegistry<String>, backing: Option<Backing>) -> Ctx {
        Ctx { key: "a".into(), now: 1_000, slots: reg.build(&site(backing)).unwrap() }
    }

    #[test]
    fn table_ids_are_disjoint_from_window_ids_and_bounded() {
        assert_eq!(state_table_id(3, 0).unwrap(), 0x8030);
        assert_eq!(state_table_id(MAX_PROCESS_OP, 15).unwrap(), u16::MAX);
        assert!(state_table_id(MAX_PROCESS_OP + 1, 0).is_err());
        assert!(state_table_id(1, 16).is_err());
        let mut reg = StateRegistry::<String>::new();
        for _ in 0..7 {
            reg.map::<String, u8>(None).unwrap();
        }
        reg.value::<u8>(None).unwrap();
        assert!(reg.value::<u8>(None).is_err(), "16 tables: timers + 15");
    }

    #[test]
    fn value_state_is_per_key() {
        let mut reg = StateRegistry::new();
        let count = reg.value::<u64>(None).unwrap();
        let mut c = ctx(reg, None);
        assert_eq!(count.value(&mut c).unwrap(), None);
        count.update(&mut c, 2).unwrap();
        c.key = "b".into();
        assert_eq!(count.value(&mut c).unwrap(), None);
        count.update(&mut c, 5).unwrap();
        c.key = "a".into();
        assert_eq!(count.value(&mut c).unwrap(), Some(2));
        count.clear(&mut c).unwrap();
        assert_eq!(count.value(&mut c).unwrap(), None);
    }

    #[test]
    fn foreign_handle_is_an_error_not_a_panic() {
        let mut reg = StateRegistry::new();
        let _v = reg.value::<u64>(None).unwrap();
        let mut c = ctx(reg, None);
        let mut other = StateRegistry::<String>::new();
        let wrong = other.list::<u8>(None).unwrap();
        assert!(wrong.get(&mut c).is_err());
    }

    #[test]
    fn map_state_keeps_insertion_order_and_removes() {
        let mut reg = StateRegistry::new();
        let m = reg.map::<String, i32>(None).unwrap();
        let mut c = ctx(reg, None);
        assert!(m.is_empty(&mut c).unwrap());
        m.put(&mut c, "z".into(), 1).unwrap();
        m.put(&mut c, "y".into(), 2).unwrap();
        m.put(&mut c, "z".into(), 3).unwrap();
        assert_eq!(m.get(&mut c, &"z".into()).unwrap(), Some(3));
        assert!(m.contains(&mut c, &"y".into()).unwrap());
        assert_eq!(m.entries(&mut c).unwrap(), vec![("z".into(), 3), ("y".into(), 2)]);
        assert_eq!(m.remove(&mut c, &"z".into()).unwrap(), Some(3));
        assert_eq!(m.keys(&mut c).unwrap(), vec!["y".to_string()]);
        c.key = "other".into();
        assert!(m.is_empty(&mut c).unwrap());
        c.key = "a".into();
        m.clear(&mut c).unwrap();
        assert!(m.is_empty(&mut c).unwrap());
        assert_eq!(m.get(&mut c, &"y".into()).unwrap(), None);
    }

    #[test]
    fn list_and_aggregating_state() {
        let mut reg = StateRegistry::new();
        let l = reg.list::<u32>(None).unwrap();
        let a = reg.aggregating((Avg::of(|x: &f64| *x), Count), None).unwrap();
        let mut c = ctx(reg, None);
        assert_eq!(l.get(&mut c).unwrap(), Vec::<u32>::new());
        l.add(&mut c, 1).unwrap();
        l.add(&mut c, 2).unwrap();
        assert_eq!(l.get(&mut c).unwrap(), vec![1, 2]);
        l.update(&mut c, vec![9]).unwrap();
        assert_eq!(l.get(&mut c).unwrap(), vec![9]);
        l.clear(&mut c).unwrap();
        assert!(l.get(&mut c).unwrap().is_empty());
        assert_eq!(a.get(&mut c).unwrap(), None);
        a.add(&mut c, &1.0).unwrap();
        a.add(&mut c, &3.0).unwrap();
        assert_eq!(a.get(&mut c).unwrap(), Some((2.0, 2)));
        a.clear(&mut c).unwrap();
        assert_eq!(a.get(&mut c).unwrap(), None);
    }

    #[test]
    fn ttl_on_write_and_on_read() {
        let ttl = Duration::from_millis(100);
        let mut reg = StateRegistry::new();
        let w = reg.value::<u8>(Some(StateTtl::after_write(ttl))).unwrap();
        let r = reg.value::<u8>(Some(StateTtl::after_access(ttl))).unwrap();
        let m = reg.map::<u8, u8>(Some(StateTtl::after_write(ttl))).unwrap();
        let l = reg.list::<u8>(Some(StateTtl::after_write(ttl))).unwrap();
        let mut c = ctx(reg, None);
        w.update(&mut c, 1).unwrap();
        r.update(&mut c, 1).unwrap();
        m.put(&mut c, 1, 1).unwrap();
        l.add(&mut c, 1).unwrap();
        c.now = 1_060;
        l.add(&mut c, 2).unwrap();
        m.put(&mut c, 2, 2).unwrap();
        assert_eq!(w.value(&mut c).unwrap(), Some(1));
        assert_eq!(r.value(&mut c).unwrap(), Some(1), "read at 1060 refreshes");
        c.now = 1_100;
        assert_eq!(w.value(&mut c).unwrap(), None, "expired 100 ms after the write");
        assert_eq!(r.value(&mut c).unwrap(), Some(1));
        assert_eq!(m.entries(&mut c).unwrap(), vec![(2, 2)]);
        assert_eq!(l.get(&mut c).unwrap(), vec![2]);
        c.now = 1_200;
        assert_eq!(r.value(&mut c).unwrap(), None);
        assert!(m.is_empty(&mut c).unwrap());
        assert!(l.get(&mut c).unwrap().is_empty());
    }

    #[test]
    fn sweep_cleans_untouched_values_incrementally() {
        let ttl = Some(StateTtl::after_write(Duration::from_millis(10)));
        let mut reg = StateRegistry::new();
        let v = reg.value::<u32>(ttl).unwrap();
        let m = reg.map::<u32, u32>(ttl).unwrap();
        let mut c = ctx(reg, None);
        for i in 0..500u32 {
            c.key = format!("k{i}");
            v.update(&mut c, i).unwrap();
            m.put(&mut c, i, i).unwrap();
        }
        c.now += 10;
        let cached = |c: &mut Ctx| {
            let Some(s) = c.slots[0].as_any().downcast_mut::<ValueSlot<String, u32>>() else { panic!("value slot") };
            s.table.cached()
        };
        assert_eq!(cached(&mut c), 500);
        c.slots[0].sweep(c.now).unwrap();
        let after_one = cached(&mut c);
        assert!((500 - SWEEP_STEP..500).contains(&after_one), "a step is bounded: {after_one}");
        for _ in 0..20 {
            for s in &mut c.slots {
                s.sweep(c.now).unwrap();
            }
        }
        assert_eq!(cached(&mut c), 0);
        let Some(ms) = c.slots[1].as_any().downcast_mut::<MapSlot<String, u32, u32>>() else { panic!("map slot") };
        assert_eq!((ms.entries.cached(), ms.index.cached()), (0, 0), "the map index goes too");
    }

    #[test]
    fn disk_sweep_deletes_expired_committed_values() {
        let dir = tempfile::tempdir().unwrap();
        // One checkpoint retained: a complete delta is in `state` at once
        // (retaining more defers it, and the sweep finds it later).
        let cfg = StoreConfig { retain_checkpoints: 1, ..StoreConfig::default() };
        let (store, _) = Store::open(dir.path(), "ttl", &cfg).unwrap();
        let store = Arc::new(store);
        let backing = Backing { store: store.clone(), base: false };
        let mut reg = StateRegistry::new();
        let v = reg.value::<u32>(Some(StateTtl::after_write(Duration::from_millis(10)))).unwrap();
        let mut c = ctx(reg, Some(backing));
        for i in 0..300u32 {
            c.key = format!("k{i}");
            v.update(&mut c, i).unwrap();
        }
        let mut b = store.batch();
        c.slots[0].snapshot(1, &mut b).unwrap();
        store.commit_durable(b).unwrap();
        store.mark_complete(1, false).unwrap();
        store.apply_epoch(1).unwrap();
        c.now += 10;
        for _ in 0..20 {
            c.slots[0].sweep(c.now).unwrap();
        }
        let mut b = store.batch();
        c.slots[0].snapshot(2, &mut b).unwrap();
        store.commit_durable(b).unwrap();
        store.mark_complete(2, false).unwrap();
        store.apply_epoch(2).unwrap();
        let mut prefix = Vec::new();
        super::super::codec::key_prefix(0, state_table_id(3, 1).unwrap(), &mut prefix);
        let live = (0..128u16)
            .map(|g| {
                let mut p = Vec::new();
                super::super::codec::key_prefix(g, state_table_id(3, 1).unwrap(), &mut p);
                store.state.prefix(p).count()
            })
            .sum::<usize>();
        assert_eq!(live, 0, "every expired value deleted from committed state");
    }
}
