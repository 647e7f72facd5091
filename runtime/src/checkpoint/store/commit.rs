//! Writing an epoch: deltas first (per task or key-group range), then the
//! epoch's metadata, then `latest`, the commit point.

use super::backend::Put;
use super::error::{Error, Result};
use super::format::{self, Kind};
use super::model::{key_group, Committed, DeltaRef, Entry, EpochMeta, KeyGroups, TaskRecord};
use super::{paths, CheckpointStore};
use object_store::{PutMode, UpdateVersion};

impl CheckpointStore {
    /// Uploads the entries that `generation` set or deleted in `epoch` for
    /// the key groups `groups`. Entries must be in strictly ascending key
    /// order and every key must belong to `groups`.
    ///
    /// # Errors
    /// [`Error::Fenced`] if a newer generation was claimed; [`Error::Invalid`]
    /// for unsorted or out-of-range keys; [`Error::Backend`] on I/O.
    pub fn put_delta(&self, generation: u64, epoch: u64, groups: KeyGroups, entries: &[Entry]) -> Result<DeltaRef> {
        self.put_delta_part(generation, epoch, groups, 0, entries)
    }

    /// [`CheckpointStore::put_delta`] for one of several writers of the
    /// same key groups in one epoch (e.g. the operator-level entries of
    /// sources on different workers): `part` tells their objects apart.
    ///
    /// # Errors
    /// As [`CheckpointStore::put_delta`].
    pub fn put_delta_part(
        &self,
        generation: u64,
        epoch: u64,
        groups: KeyGroups,
        part: u16,
        entries: &[Entry],
    ) -> Result<DeltaRef> {
        for pair in entries.windows(2) {
            if pair[0].key >= pair[1].key {
                return Err(Error::invalid("delta entries must be in strictly ascending key order"));
            }
        }
        if let Some(bad) = entries.iter().find(|e| !key_group(&e.key).is_some_and(|kg| groups.contains(kg))) {
            return Err(Error::invalid(format!(
                "delta key {:02x?} is not in key groups {}..={}",
                bad.key, groups.first, groups.last
            )));
        }
        self.check_fence(generation)?;
        let name = paths::delta(generation, epoch, groups, part);
        let bytes = format::encode(Kind::Delta, &entries)?;
        let delta = DeltaRef {
            generation,
            epoch,
            groups,
            part,
            bytes: bytes.len() as u64,
            crc: format::crc_of(&bytes),
            entries: entries.len() as u64,
        };
        self.io.put_overwrite(&name, bytes)?;
        tracing::debug!(job = %self.job, generation, epoch, first = groups.first, last = groups.last, bytes = delta.bytes, "delta uploaded");
        Ok(delta)
    }

    /// Commits `epoch` for `generation`: writes its metadata (parented on the
    /// current latest checkpoint), then moves `latest` to it. Returns the
    /// committed checkpoint.
    ///
    /// # Errors
    /// [`Error::Fenced`] if a newer generation was claimed before `latest`
    /// moved (nothing is committed then); [`Error::Invalid`] if `epoch` is
    /// not after the latest or a delta belongs to another epoch or
    /// generation; [`Error::Backend`] on I/O.
    pub fn commit_epoch(
        &self,
        generation: u64,
        epoch: u64,
        deltas: Vec<DeltaRef>,
        tasks: Vec<TaskRecord>,
    ) -> Result<Committed> {
        if let Some(d) = deltas.iter().find(|d| d.epoch != epoch || d.generation != generation) {
            return Err(Error::invalid(format!(
                "delta of epoch {} generation {} committed as epoch {epoch} generation {generation}",
                d.epoch, d.generation
            )));
        }
        self.check_fence(generation)?;
        let current = self.latest_versioned()?;
        let parent = current.as_ref().map(|(c, _)| *c);
        if let Some(p) = parent.filter(|p| p.epoch >= epoch) {
            return Err(Error::invalid(format!("epoch {epoch} is not after the latest checkpoint, epoch {}", p.epoch)));
        }
        let at = Committed { epoch, generation };
        let meta = EpochMeta { epoch, generation, parent, deltas, tasks };
        self.io.put_overwrite(&paths::meta(at), format::encode(Kind::Meta, &meta)?)?;
        self.check_fence(generation)?;
        let body = format::encode(Kind::Latest, &at)?;
        let outcome = match current {
            None => self.io.put(paths::LATEST, body, PutMode::Create)?,
            Some((_, version)) => match self.io.put(paths::LATEST, body.clone(), PutMode::Update(version))? {
                // LocalFileSystem: see "Fencing, and the race that remains"
                // in the module docs.
                Put::Unsupported => {
                    self.io.put_overwrite(paths::LATEST, body)?;
                    Put::Done
                }
                other => other,
            },
        };
        if let Put::Lost | Put::Unsupported = outcome {
            self.check_fence(generation)?;
            return Err(Error::invalid(format!(
                "epoch {epoch}: `latest` was moved by another writer of generation {generation}"
            )));
        }
        tracing::info!(job = %self.job, generation, epoch, "checkpoint committed");
        Ok(at)
    }

    /// The latest committed checkpoint, if any.
    ///
    /// # Errors
    /// [`Error::Damaged`] if `latest` cannot be decoded; [`Error::Backend`].
    pub fn latest(&self) -> Result<Option<Committed>> {
        Ok(self.latest_versioned()?.map(|(c, _)| c))
    }

    fn latest_versioned(&self) -> Result<Option<(Committed, UpdateVersion)>> {
        let Some((bytes, version)) = self.io.get(paths::LATEST)? else {
            return Ok(None);
        };
        Ok(Some((format::decode(paths::LATEST, Kind::Latest, &bytes)?, version)))
    }

    /// The metadata of committed epoch `epoch`: the one on the chain of
    /// parents from `latest`.
    ///
    /// # Errors
    /// [`Error::Invalid`] if `epoch` is not a committed checkpoint reachable
    /// from `latest`; [`Error::Damaged`] if metadata on the way is missing
    /// or damaged.
    pub fn epoch_meta(&self, epoch: u64) -> Result<EpochMeta> {
        let Some(mut at) = self.latest()? else {
            return Err(Error::invalid(format!("epoch {epoch}: the store has no committed checkpoint")));
        };
        let mut named_by = paths::LATEST.to_owned();
        loop {
            let meta = self.meta_of(at, &named_by)?;
            if meta.epoch == epoch {
                return Ok(meta);
            }
            match meta.parent {
                Some(p) if p.epoch >= epoch && p.epoch < meta.epoch => {
                    named_by = paths::meta(at);
                    at = p;
                }
                _ => return Err(Error::invalid(format!("epoch {epoch} is not a committed checkpoint"))),
            }
        }
    }

    /// Reads the metadata of `at`, which `named_by` says must exist, and
    /// checks it describes `at`.
    pub(crate) fn meta_of(&self, at: Committed, named_by: &str) -> Result<EpochMeta> {
        let name = paths::meta(at);
        let meta: EpochMeta = self.read_required(&name, Kind::Meta, named_by)?;
        if meta.epoch != at.epoch || meta.generation != at.generation {
            return Err(Error::damaged(
                &name,
                format!("describes epoch {} generation {}", meta.epoch, meta.generation),
            ));
        }
        Ok(meta)
    }

    /// Reads a committed delta and checks it against its reference.
    pub(crate) fn read_delta(&self, delta: &DeltaRef) -> Result<Vec<Entry>> {
        let name = paths::delta(delta.generation, delta.epoch, delta.groups, delta.part);
        let meta_name = paths::meta(Committed { epoch: delta.epoch, generation: delta.generation });
        let Some((bytes, _)) = self.io.get(&name)? else {
            return Err(self.missing(&name, format!("missing, but {meta_name} names it")));
        };
        if bytes.len() as u64 != delta.bytes || format::crc_of(&bytes) != delta.crc {
            return Err(Error::damaged(
                &name,
                format!(
                    "{} bytes, CRC {:08x}; {meta_name} records {} bytes, CRC {:08x}",
                    bytes.len(),
                    format::crc_of(&bytes),
                    delta.bytes,
                    delta.crc
                ),
            ));
        }
        format::decode(&name, Kind::Delta, &bytes)
    }
}
