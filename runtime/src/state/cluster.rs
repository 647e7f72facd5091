//! What a worker of a cluster needs from its node's store: the entries it
//! staged for an epoch (uploaded to the checkpoint store), the sink output
//! it staged, and loading a checkpoint restored from the checkpoint store.

use super::codec::{self, read_entry};
use super::store::{outbox_epoch, Store, WRITE_CHUNK};
use crate::error::Result;
use std::ops::Bound;

/// Meta key of the last epoch this node uploaded to the checkpoint store:
/// `(generation, epoch)`. Cleared by every recovery, which drops what was
/// staged beyond the last complete epoch.
pub(crate) const META_UPLOADED: &[u8] = b"uploaded";

/// A staged entry: a state key and its value, `None` for a deletion.
pub(crate) type StagedEntry = (Vec<u8>, Option<Vec<u8>>);

impl Store {
    /// The entries staged for `epoch`, in key order.
    pub(crate) fn staged_entries(&self, epoch: u64) -> Result<Vec<StagedEntry>> {
        let mut out = Vec::new();
        let lower = Bound::Included(epoch.to_be_bytes().to_vec());
        let upper = epoch.checked_add(1).map_or(Bound::Unbounded, |e| Bound::Excluded(e.to_be_bytes().to_vec()));
        for item in self.stage.range((lower, upper)) {
            let (k, v) = item.into_inner().map_err(|e| self.err(e))?;
            let key = k.get(8..).ok_or_else(|| codec::corrupt("stage key", "shorter than its epoch"))?;
            out.push((key.to_vec(), read_entry(&v)?.map(<[u8]>::to_vec)));
        }
        Ok(out)
    }

    /// The bytes each sink staged for `epoch`, chunks in order, by sink id.
    pub(crate) fn outbox_of(&self, epoch: u64) -> Result<Vec<(u16, Vec<u8>)>> {
        let mut out: Vec<(u16, Vec<u8>)> = Vec::new();
        for item in self.outbox.iter() {
            let (k, v) = item.into_inner().map_err(|e| self.err(e))?;
            if outbox_epoch(&k)? != epoch {
                continue;
            }
            let sink = u16::from_be_bytes([k[0], k[1]]);
            match out.last_mut() {
                Some((s, bytes)) if *s == sink => bytes.extend_from_slice(&v),
                _ => out.push((sink, v.to_vec())),
            }
        }
        Ok(out)
    }

    /// Removes what sinks staged for epochs up to `epoch` (published by the
    /// cluster's coordinator from the checkpoint store).
    pub(crate) fn drop_outbox_through(&self, epoch: u64) -> Result<()> {
        let mut batch = self.batch();
        for item in self.outbox.iter() {
            let k = item.key().map_err(|e| self.err(e))?;
            if outbox_epoch(&k)? <= epoch {
                batch.remove(&self.outbox, k.to_vec());
            }
        }
        self.commit(batch)
    }

    /// Records that every local task's delta of `epoch` (of `generation`)
    /// is in the checkpoint store. The stage was synced before the tasks
    /// acked, so a store that shows this marker after a crash holds the
    /// whole delta.
    pub(crate) fn mark_uploaded(&self, generation: u64, epoch: u64) -> Result<()> {
        let mut b = self.batch();
        Self::put_meta(&mut b, &self.meta, META_UPLOADED, &(generation, epoch))?;
        self.commit(b)
    }

    /// Completes locally checkpoint `epoch` of `generation`, which the
    /// checkpoint store committed, when this node uploaded its part of it
    /// (and so still has it staged) but stopped before it was told of the
    /// commit: what the notification would have done. Returns whether it
    /// did; the recovery that follows applies the staged epochs up to it.
    pub(crate) fn complete_uploaded(&self, generation: u64, epoch: u64) -> Result<bool> {
        let complete: Option<u64> = self.get_meta(super::store::META_COMPLETE)?;
        let uploaded: Option<(u64, u64)> = self.get_meta(META_UPLOADED)?;
        let behind = complete.is_none_or(|c| c < epoch);
        let staged = uploaded.is_some_and(|(g, e)| g == generation && e >= epoch);
        if behind && staged {
            self.mark_complete(epoch, false)?;
        }
        Ok(behind && staged)
    }

    /// Loads the state of a checkpoint restored from the checkpoint store
    /// into an empty store and marks `epoch` complete, so that opening the
    /// directory again resumes from it.
    pub(crate) fn load_checkpoint(&self, entries: Vec<(Vec<u8>, Vec<u8>)>, epoch: u64) -> Result<()> {
        for chunk in entries.chunks(WRITE_CHUNK) {
            let mut batch = self.batch();
            for (k, v) in chunk {
                batch.insert(&self.state, k.clone(), v.clone());
            }
            self.commit(batch)?;
        }
        self.mark_complete(epoch, false)
    }
}

#[cfg(test)]
mod tests {
    use super::super::codec;
    use super::super::store::{Store, StoreConfig};

    /// A store with epoch 1 complete and epochs 2 and 3 staged; epoch 2
    /// uploaded in generation 7 unless `uploaded` is None.
    fn staged(dir: &std::path::Path, uploaded: Option<(u64, u64)>) {
        let (s, _) = Store::open(dir, "j", &StoreConfig::default()).unwrap();
        let mut b = s.batch();
        b.insert(&s.stage, codec::stage_key(1, b"k"), codec::put_entry(b"v1"));
        s.commit_durable(b).unwrap();
        s.mark_complete(1, false).unwrap();
        s.apply_epoch(1).unwrap();
        let mut b = s.batch();
        b.insert(&s.stage, codec::stage_key(2, b"k"), codec::put_entry(b"v2"));
        b.insert(&s.stage, codec::stage_key(3, b"k"), codec::put_entry(b"v3"));
        s.commit_durable(b).unwrap();
        if let Some((g, e)) = uploaded {
            s.mark_uploaded(g, e).unwrap();
        }
    }

    fn reopen(dir: &std::path::Path, generation: u64, epoch: u64) -> (Option<u64>, Option<Vec<u8>>) {
        let (s, rec) = Store::open_job_then(dir, "j", &[], &StoreConfig::default(), |s| {
            s.complete_uploaded(generation, epoch).map(drop)
        })
        .unwrap();
        (rec.complete, s.state.get(b"k").unwrap().map(|v| v.to_vec()))
    }

    #[test]
    fn an_uploaded_epoch_committed_elsewhere_is_completed_locally() {
        let dir = tempfile::tempdir().unwrap();
        staged(dir.path(), Some((7, 2)));
        assert_eq!(reopen(dir.path(), 7, 2), (Some(2), Some(b"v2".to_vec())));
        // The marker went with the recovery: epoch 3 was never uploaded
        // and is gone.
        assert_eq!(reopen(dir.path(), 7, 3), (Some(2), Some(b"v2".to_vec())));
    }

    #[test]
    fn without_the_upload_of_that_generation_nothing_is_completed() {
        for (uploaded, generation) in [(None, 7), (Some((6, 2)), 7), (Some((7, 1)), 7)] {
            let dir = tempfile::tempdir().unwrap();
            staged(dir.path(), uploaded);
            assert_eq!(reopen(dir.path(), generation, 2), (Some(1), Some(b"v1".to_vec())), "{uploaded:?}");
        }
    }
}
