//! Savepoints: a full, self-contained copy of one checkpoint in another
//! store, which `open` there can restore from.

use super::error::{Error, Result};
use super::model::{key_group, Committed, KeyGroups};
use super::CheckpointStore;

impl CheckpointStore {
    /// Writes committed `epoch` to the store at `to_url` (same job name) as a
    /// savepoint: one materialisation per key group holding data, and the
    /// epoch's metadata (tasks' source positions and sink commit records,
    /// no deltas, no parent) made `latest` under a freshly claimed
    /// generation. The state is held in memory while it is copied.
    ///
    /// # Errors
    /// [`Error::Refused`] if the target already holds checkpoints of this
    /// job; anything [`CheckpointStore::open`] or [`Self::restore`] returns.
    pub fn export(&self, epoch: u64, to_url: &str) -> Result<Committed> {
        let meta = self.epoch_meta(epoch)?;
        let target = CheckpointStore::open(to_url, &self.job)?;
        if target.newest_generation()? != 0 || target.latest()?.is_some() {
            return Err(Error::Refused {
                url: to_url.to_owned(),
                reason: format!(
                    "already holds checkpoints of job {}; a savepoint is written only where there are none",
                    self.job
                ),
            });
        }
        let entries = self.restore(KeyGroups { first: 0, last: u16::MAX }, epoch)?;
        let generation = target.claim_generation()?;
        let at = Committed { epoch, generation };
        let mut groups = 0u64;
        let mut rest = entries.as_slice();
        while let Some((first, _)) = rest.first() {
            let kg = key_group(first).unwrap_or(0);
            let len = rest.iter().take_while(|(k, _)| key_group(k) == Some(kg)).count().max(1);
            let (group, tail) = rest.split_at(len);
            target.write_materialised(kg, at, group.to_vec())?;
            groups += 1;
            rest = tail;
        }
        target.commit_epoch(generation, epoch, Vec::new(), meta.tasks)?;
        tracing::info!(job = %self.job, epoch, to = to_url, key_groups = groups, entries = entries.len(), "savepoint exported");
        Ok(at)
    }
}
