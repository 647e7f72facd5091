//! Restoring key groups: the newest materialisation at or before the epoch,
//! then the later deltas of the chain applied in epoch order; and writing
//! materialisations.

use super::error::{Error, Result};
use super::format::{self, Kind};
use super::model::{key_group, Committed, Entry, EpochMeta, GcFloor, KeyGroups, Materialised};
use super::{paths, CheckpointStore};
use std::collections::{BTreeMap, BTreeSet};

/// Keys and values the coordinator's maintenance collects in memory at once
/// to write key-group copies (more only for a single key group larger
/// than this).
pub(crate) const MATERIALISE_BYTES: usize = 8 << 20;

/// A live state entry: key and value.
type KeyValue = (Vec<u8>, Vec<u8>);

/// A piece of the chain of committed checkpoints, newest first, as read by
/// following parent links.
pub(crate) struct Chain {
    pub(crate) metas: Vec<EpochMeta>,
    /// The walk reached the first checkpoint, or the `gc-floor` below which
    /// metadata was collected.
    ended: bool,
    gc_floor: u64,
}

impl Chain {
    pub(crate) fn generation_of(&self, epoch: u64) -> Option<u64> {
        self.metas.iter().find(|m| m.epoch == epoch).map(|m| m.generation)
    }

    fn oldest(&self) -> Option<&EpochMeta> {
        self.metas.last()
    }
}

impl CheckpointStore {
    pub(crate) fn gc_floor(&self) -> Result<u64> {
        Ok(self.read::<GcFloor>(paths::GC_FLOOR, Kind::GcFloor)?.map_or(0, |f| f.floor))
    }

    /// The chain from committed `epoch` (its first element) down; extend it
    /// with [`Self::extend`].
    pub(crate) fn chain_to(&self, epoch: u64) -> Result<Chain> {
        let meta = self.epoch_meta(epoch)?;
        Ok(Chain { metas: vec![meta], ended: false, gc_floor: self.gc_floor()? })
    }

    /// Follows parent links until the chain's oldest epoch is at or below
    /// `down_to`, or the chain ends.
    pub(crate) fn extend(&self, chain: &mut Chain, down_to: u64) -> Result<()> {
        while !chain.ended {
            let Some(oldest) = chain.oldest() else { return Ok(()) };
            if oldest.epoch <= down_to {
                return Ok(());
            }
            let child = paths::meta(Committed { epoch: oldest.epoch, generation: oldest.generation });
            let Some(parent) = oldest.parent else {
                chain.ended = true;
                return Ok(());
            };
            if parent.epoch >= oldest.epoch {
                return Err(Error::damaged(&child, format!("parent epoch {} is not before it", parent.epoch)));
            }
            let name = paths::meta(parent);
            match self.read::<EpochMeta>(&name, Kind::Meta)? {
                Some(meta) if meta.epoch == parent.epoch && meta.generation == parent.generation => {
                    chain.metas.push(meta)
                }
                Some(meta) => {
                    return Err(Error::damaged(
                        &name,
                        format!("describes epoch {} generation {}", meta.epoch, meta.generation),
                    ))
                }
                None if parent.epoch <= chain.gc_floor => chain.ended = true,
                None => return Err(self.missing(&name, format!("missing, but {child} names it as its parent"))),
            }
        }
        Ok(())
    }

    /// Materialisations of the key groups in `groups` at or before `epoch`,
    /// newest first per key group.
    pub(crate) fn materialisations(&self, groups: KeyGroups, epoch: u64) -> Result<BTreeMap<u16, Vec<Committed>>> {
        let dir = if groups.first == groups.last {
            format!("{}{:05}/", paths::MATERIALISED, groups.first)
        } else {
            paths::MATERIALISED.to_owned()
        };
        let mut out: BTreeMap<u16, Vec<Committed>> = BTreeMap::new();
        for name in self.io.list(&dir)? {
            let Some((kg, at)) = paths::parse_materialised(&name) else { continue };
            if groups.contains(kg) && at.epoch <= epoch {
                out.entry(kg).or_default().push(at);
            }
        }
        for list in out.values_mut() {
            list.sort_by(|a, b| b.cmp(a));
        }
        Ok(out)
    }

    /// The live state entries `(key, value)` of the key groups `groups` as of
    /// committed `epoch`, in key order.
    ///
    /// # Errors
    /// [`Error::Invalid`] if `epoch` is not a committed checkpoint;
    /// [`Error::Damaged`] naming the first object that is missing or damaged.
    pub fn restore(&self, groups: KeyGroups, epoch: u64) -> Result<Vec<KeyValue>> {
        let mut state: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        self.restore_into(groups, epoch, |writes| {
            writes.into_iter().for_each(|e| apply_to(&mut state, e));
            Ok::<(), Error>(())
        })?;
        Ok(state.into_iter().collect())
    }

    /// The state of the key groups `groups` as of committed `epoch`, handed
    /// to `apply` as writes (`None` deletes) one stored object at a time:
    /// applied in the order given, later writes winning, they leave exactly
    /// what [`Self::restore`] returns. So the caller holds one materialised
    /// key group or one delta part at a time, not the whole state.
    ///
    /// # Errors
    /// As [`Self::restore`], and whatever `apply` returns.
    pub fn restore_into<E: From<Error>>(
        &self,
        groups: KeyGroups,
        epoch: u64,
        mut apply: impl FnMut(Vec<Entry>) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let mut chain = self.chain_to(epoch)?;
        // Key group -> the epoch of the materialisation it starts from.
        let mut base: BTreeMap<u16, u64> = BTreeMap::new();
        for (kg, candidates) in self.materialisations(groups, epoch)? {
            for at in candidates {
                self.extend(&mut chain, at.epoch)?;
                // A materialisation of a checkpoint not on this chain (an
                // abandoned generation's) is not this state.
                if chain.generation_of(at.epoch) != Some(at.generation) {
                    continue;
                }
                let name = paths::materialised(kg, at);
                let copy: Materialised = self.read_required(&name, Kind::Materialised, "the store's listing")?;
                if copy.key_group != kg || copy.at != at {
                    return Err(Error::damaged(&name, "holds another key group or checkpoint").into());
                }
                apply(copy.entries.into_iter().map(|(key, v)| Entry { key, value: Some(v) }).collect())?;
                base.insert(kg, at.epoch);
                break;
            }
        }
        if (base.len() as u64) < u64::from(groups.last - groups.first) + 1 {
            self.extend(&mut chain, 0)?;
        }
        let starts_before = |kg: u16, epoch: u64| base.get(&kg).is_none_or(|b| *b < epoch);
        for meta in chain.metas.iter().rev() {
            for delta in meta.deltas.iter().filter(|d| d.groups.overlaps(&groups)) {
                let lo = delta.groups.first.max(groups.first);
                let hi = delta.groups.last.min(groups.last);
                if !(lo..=hi).any(|kg| starts_before(kg, meta.epoch)) {
                    continue;
                }
                let mut writes = self.read_delta(delta)?;
                writes.retain(|e| e.key_group().is_some_and(|kg| groups.contains(kg) && starts_before(kg, meta.epoch)));
                if !writes.is_empty() {
                    apply(writes)?;
                }
            }
        }
        Ok(())
    }

    /// Writes a full copy of key group `kg` as of committed `epoch`, so later
    /// restores start there instead of replaying older deltas. Safe to run
    /// on a thread of its own beside commits (it only adds an object).
    ///
    /// # Errors
    /// As [`Self::restore`], and [`Error::Backend`] on the write.
    pub fn materialise(&self, kg: u16, epoch: u64) -> Result<Committed> {
        let entries = self.restore(KeyGroups::one(kg), epoch)?;
        let generation = self.epoch_meta(epoch)?.generation;
        let at = Committed { epoch, generation };
        self.write_materialised(kg, at, entries)?;
        Ok(at)
    }

    /// [`Self::materialise`] for every key group of `groups` (a key group
    /// without entries gets an empty copy, so GC can free its older deltas
    /// too). Returns the checkpoint copied.
    ///
    /// Memory stays bounded by [`MATERIALISE_BYTES`]: one pass over the
    /// deltas builds the copies while the state is smaller than that, and
    /// otherwise measures each key group, after which the key groups are
    /// copied in runs that fit it, each run reading its own deltas again.
    ///
    /// # Errors
    /// As [`Self::materialise`].
    pub fn materialise_all(&self, groups: impl IntoIterator<Item = u16>, epoch: u64) -> Result<Committed> {
        self.materialise_within(groups, epoch, MATERIALISE_BYTES)
    }

    pub(crate) fn materialise_within(
        &self,
        groups: impl IntoIterator<Item = u16>,
        epoch: u64,
        budget: usize,
    ) -> Result<Committed> {
        let generation = self.epoch_meta(epoch)?.generation;
        let at = Committed { epoch, generation };
        let wanted: BTreeSet<u16> = groups.into_iter().collect();
        let (Some(&first), Some(&last)) = (wanted.first(), wanted.last()) else {
            return Ok(at);
        };
        let mut left = wanted.clone();
        self.state_in_runs(KeyGroups { first, last }, epoch, budget, |run, entries| {
            let groups: BTreeSet<u16> = wanted.range(run.first..=run.last).copied().collect();
            left.retain(|kg| !groups.contains(kg));
            self.write_copies(&groups, at, entries)
        })?;
        self.write_copies(&left, at, Vec::new())?;
        Ok(at)
    }

    /// The state of the key groups `range` as of committed `epoch`, handed
    /// to `visit` as entries in key order, in runs of whole key groups
    /// (with the range of key groups each run covers) that hold at most
    /// `budget` bytes of keys and values, more only for a single larger
    /// key group. One pass over the deltas builds the state while it fits
    /// (one run, all of `range`); otherwise it measures each key group,
    /// and each run then reads its own objects again. Key groups no object
    /// writes to are in no run then.
    pub(crate) fn state_in_runs(
        &self,
        range: KeyGroups,
        epoch: u64,
        budget: usize,
        mut visit: impl FnMut(KeyGroups, Vec<KeyValue>) -> Result<()>,
    ) -> Result<()> {
        // Bytes written per key group (overwritten ones included: an upper
        // bound of what its state holds).
        let mut sizes: BTreeMap<u16, usize> = BTreeMap::new();
        let mut total = 0usize;
        let mut state: Option<BTreeMap<Vec<u8>, Vec<u8>>> = Some(BTreeMap::new());
        self.restore_into(range, epoch, |writes| {
            for e in writes {
                let n = e.key.len() + e.value.as_ref().map_or(0, Vec::len);
                if let Some(kg) = e.key_group() {
                    *sizes.entry(kg).or_default() += n;
                }
                total = total.saturating_add(n);
                if total > budget {
                    state = None;
                }
                if let Some(state) = &mut state {
                    apply_to(state, e);
                }
            }
            Ok::<(), Error>(())
        })?;
        if let Some(state) = state {
            return visit(range, state.into_iter().collect());
        }
        let mut run: Option<(KeyGroups, usize)> = None;
        for (kg, n) in sizes {
            if let Some((groups, bytes)) = &mut run {
                if bytes.saturating_add(n) <= budget {
                    groups.last = kg;
                    *bytes += n;
                    continue;
                }
                visit(*groups, self.restore(*groups, epoch)?)?;
            }
            run = Some((KeyGroups::one(kg), n));
        }
        if let Some((groups, _)) = run {
            visit(groups, self.restore(groups, epoch)?)?;
        }
        Ok(())
    }

    /// Writes a copy of each key group of `groups` at `at` from `entries`
    /// (in key order; entries of other key groups are left out).
    fn write_copies(&self, groups: &BTreeSet<u16>, at: Committed, entries: Vec<KeyValue>) -> Result<()> {
        let mut by_group: BTreeMap<u16, Vec<KeyValue>> = groups.iter().map(|&kg| (kg, Vec::new())).collect();
        for (k, v) in entries {
            if let Some(list) = key_group(&k).and_then(|kg| by_group.get_mut(&kg)) {
                list.push((k, v));
            }
        }
        for (kg, entries) in by_group {
            self.write_materialised(kg, at, entries)?;
        }
        Ok(())
    }

    pub(crate) fn write_materialised(&self, kg: u16, at: Committed, entries: Vec<(Vec<u8>, Vec<u8>)>) -> Result<()> {
        let count = entries.len();
        let body = format::encode(Kind::Materialised, &Materialised { key_group: kg, at, entries })?;
        self.io.put_overwrite(&paths::materialised(kg, at), body)?;
        tracing::debug!(job = %self.job, kg, epoch = at.epoch, entries = count, "key group materialised");
        Ok(())
    }
}

/// Applies a restored write to `state`: a put, or a deletion (`None`).
fn apply_to(state: &mut BTreeMap<Vec<u8>, Vec<u8>>, e: Entry) {
    match e.value {
        Some(v) => state.insert(e.key, v),
        None => state.remove(&e.key),
    };
}
