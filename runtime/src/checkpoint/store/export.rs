//! Savepoints: a full, self-contained copy of one checkpoint in another
//! store, which `open` there can restore from.

use super::error::{Error, Result};
use super::model::{key_group, Committed, KeyGroups};
use super::restore::MATERIALISE_BYTES;
use super::CheckpointStore;

impl CheckpointStore {
    /// Writes committed `epoch` to the store at `to_url` (same job name) as a
    /// savepoint: one materialisation per key group holding data, and the
    /// epoch's metadata (tasks' source positions and sink commit records,
    /// no deltas, no parent) made `latest` under a freshly claimed
    /// generation. At most [`MATERIALISE_BYTES`] of it is held in memory
    /// at once (more only for a single larger key group).
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
        // Claimed once the source's objects have all been read (the first
        // run comes after a pass over all of them): a damaged source leaves
        // the target as it was, so the export can be retried there.
        let mut claimed: Option<Committed> = None;
        let mut claim = || -> Result<Committed> {
            if let Some(at) = claimed {
                return Ok(at);
            }
            let at = Committed { epoch, generation: target.claim_generation()? };
            claimed = Some(at);
            Ok(at)
        };
        let (mut groups, mut entries) = (0u64, 0usize);
        let all = KeyGroups { first: 0, last: u16::MAX };
        self.state_in_runs(all, epoch, MATERIALISE_BYTES, |_, run| {
            let at = claim()?;
            entries += run.len();
            let mut rest = run.as_slice();
            while let Some((first, _)) = rest.first() {
                let kg = key_group(first).unwrap_or(0);
                let len = rest.iter().take_while(|(k, _)| key_group(k) == Some(kg)).count().max(1);
                let (group, tail) = rest.split_at(len);
                target.write_materialised(kg, at, group.to_vec())?;
                groups += 1;
                rest = tail;
            }
            Ok(())
        })?;
        let at = claim()?;
        target.commit_epoch(at.generation, epoch, Vec::new(), meta.tasks)?;
        tracing::info!(job = %self.job, epoch, to = to_url, key_groups = groups, entries, "savepoint exported");
        Ok(at)
    }
}
