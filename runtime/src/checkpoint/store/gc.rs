//! Garbage collection: delete the deltas, metadata and materialisations
//! that no retained checkpoint's restore reads.

use super::error::{Error, Result};
use super::format::{self, Kind};
use super::model::{Committed, GcFloor, KeyGroups};
use super::{paths, CheckpointStore};
use std::collections::{BTreeMap, BTreeSet, HashSet};

impl CheckpointStore {
    /// Keeps every checkpoint in `retained` (and the latest, always)
    /// restorable and deletes the rest of the job's objects at or below the
    /// latest epoch: deltas and materialisations no retained restore reads,
    /// metadata below the lowest epoch any of them reads, and leftovers of
    /// aborted epochs and fenced generations. Objects of epochs after the
    /// latest (an epoch being written) are left alone. Returns how many
    /// objects were deleted.
    ///
    /// A key group that has data but no materialisation at or before a
    /// retained epoch needs every delta back to its first: materialise
    /// each key group from time to time so that GC can free space.
    ///
    /// # Errors
    /// [`Error::Invalid`] if a retained epoch is not a committed checkpoint
    /// (or was already collected); [`Error::Damaged`] if the chain of
    /// metadata is damaged; [`Error::Backend`] on I/O.
    pub fn gc(&self, retained: &[u64]) -> Result<u64> {
        let Some(latest) = self.latest()? else {
            return Ok(0);
        };
        let retained: BTreeSet<u64> = retained.iter().copied().chain([latest.epoch]).collect();
        let old_floor = self.gc_floor()?;
        let mut chain = self.chain_to(latest.epoch)?;
        self.extend(&mut chain, 0)?;
        if let Some(r) = retained.iter().find(|r| chain.generation_of(**r).is_none()) {
            return Err(Error::invalid(format!("retained epoch {r} is not a committed checkpoint (or was collected)")));
        }
        let all = KeyGroups { first: 0, last: u16::MAX };
        let mut mats: BTreeMap<u16, Vec<Committed>> = self.materialisations(all, latest.epoch)?;
        for list in mats.values_mut() {
            list.retain(|at| chain.generation_of(at.epoch) == Some(at.generation));
        }

        let mut keep: HashSet<String> = HashSet::new();
        let mut floor = u64::MAX;
        for &r in &retained {
            // The materialisation each key group's restore of `r` starts from.
            let base: BTreeMap<u16, Committed> = mats
                .iter()
                .filter_map(|(kg, list)| list.iter().find(|at| at.epoch <= r).map(|at| (*kg, *at)))
                .collect();
            keep.extend(base.iter().map(|(kg, at)| paths::materialised(*kg, *at)));
            let below_r = || chain.metas.iter().filter(move |m| m.epoch <= r);
            let mut floor_r = base.values().map(|at| at.epoch).min().unwrap_or(r).min(r);
            let bare = below_r().flat_map(|m| &m.deltas).any(|d| d.groups.iter().any(|kg| !base.contains_key(&kg)));
            if bare {
                floor_r = 0;
            }
            for meta in below_r().filter(|m| m.epoch > floor_r) {
                for delta in &meta.deltas {
                    if delta.groups.iter().any(|kg| base.get(&kg).is_none_or(|at| at.epoch < meta.epoch)) {
                        keep.insert(paths::delta(delta.generation, delta.epoch, delta.groups, delta.part));
                    }
                }
            }
            floor = floor.min(floor_r);
        }
        let floor = floor.max(old_floor);
        for meta in chain.metas.iter().filter(|m| m.epoch >= floor) {
            keep.insert(paths::meta(Committed { epoch: meta.epoch, generation: meta.generation }));
        }
        // Written before anything is deleted, so a restore that meets a
        // collected parent knows it is the end of the retained history.
        self.io.put_overwrite(paths::GC_FLOOR, format::encode(Kind::GcFloor, &GcFloor { floor })?)?;

        let mut deleted = 0u64;
        for name in self.io.list(paths::EPOCHS)? {
            let Some(epoch) = paths::epoch_of(&name) else { continue };
            // Results staged for an epoch below the floor were published
            // when it was committed, before any GC could see it.
            if name.ends_with(".out") && epoch < floor {
                self.io.delete(&name)?;
                deleted += 1;
                continue;
            }
            let ours = name.ends_with(".delta") || paths::parse_meta(&name).is_some();
            if epoch <= latest.epoch && ours && !keep.contains(&name) {
                self.io.delete(&name)?;
                deleted += 1;
            }
        }
        for name in self.io.list(paths::MATERIALISED)? {
            let Some((_, at)) = paths::parse_materialised(&name) else { continue };
            if at.epoch <= latest.epoch && !keep.contains(&name) {
                self.io.delete(&name)?;
                deleted += 1;
            }
        }
        tracing::info!(job = %self.job, latest = latest.epoch, floor, deleted, "checkpoint store collected");
        Ok(deleted)
    }
}
