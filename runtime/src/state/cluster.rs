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
    /// The entries staged for `epoch`, in key order, handed to `visit` in
    /// parts: a part ends at the first key-group boundary after it reaches
    /// `part_bytes` of keys and values, and the operator-level entries
    /// ([`codec::OPERATOR_GROUP`], the last group) are a part of their own.
    /// So parts cover disjoint ranges of key groups, and no more than a
    /// part (or one key group, if larger) is held at a time.
    pub(crate) fn staged_parts(
        &self,
        epoch: u64,
        part_bytes: usize,
        mut visit: impl FnMut(Vec<StagedEntry>) -> Result<()>,
    ) -> Result<()> {
        let mut part: Vec<StagedEntry> = Vec::new();
        let mut bytes = 0usize;
        let mut group = None;
        let lower = Bound::Included(epoch.to_be_bytes().to_vec());
        let upper = epoch.checked_add(1).map_or(Bound::Unbounded, |e| Bound::Excluded(e.to_be_bytes().to_vec()));
        for item in self.stage.range((lower, upper)) {
            let (k, v) = item.into_inner().map_err(|e| self.err(e))?;
            let key = k.get(8..).ok_or_else(|| codec::corrupt("stage key", "shorter than its epoch"))?;
            let g = key.get(..2).map(|g| u16::from_be_bytes([g[0], g[1]]));
            if group.is_some() && g != group && (bytes >= part_bytes || g == Some(codec::OPERATOR_GROUP)) {
                visit(std::mem::take(&mut part))?;
                bytes = 0;
            }
            group = g;
            let value = read_entry(&v)?.map(<[u8]>::to_vec);
            bytes += key.len() + value.as_ref().map_or(0, Vec::len);
            part.push((key.to_vec(), value));
        }
        if !part.is_empty() {
            visit(part)?;
        }
        Ok(())
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

    /// Writes part of a checkpoint restored from the checkpoint store into
    /// `state` (`None` deletes), in the order given, later writes winning.
    /// [`Store::mark_complete`] of the checkpoint's epoch once all of it is
    /// written makes opening the directory again resume from it.
    pub(crate) fn load_restored(&self, writes: Vec<StagedEntry>) -> Result<()> {
        let mut batch = self.batch();
        for (k, v) in writes {
            if batch.len() >= WRITE_CHUNK {
                self.commit(std::mem::replace(&mut batch, self.batch()))?;
            }
            match v {
                Some(v) => batch.insert(&self.state, k, v),
                None => batch.remove(&self.state, k),
            }
        }
        self.commit(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::super::codec;
    use super::super::store::WRITE_CHUNK;
    use super::super::store::{Store, StoreConfig};
    use super::StagedEntry;

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

    // Guards the bound on what a worker holds while uploading an epoch:
    // parts end at key-group boundaries (so their ranges are disjoint and
    // each names a distinct object), the operator-level entries are a part
    // of their own, and together the parts are the epoch's delta in order.
    #[test]
    fn an_epochs_delta_is_read_in_parts_of_whole_key_groups() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Store::open(dir.path(), "j", &StoreConfig::default()).unwrap();
        let key = |g: u16, i: u8| {
            let mut k = Vec::new();
            codec::key_prefix(g, 3, &mut k);
            k.push(i);
            k
        };
        let mut want = Vec::new();
        let mut b = s.batch();
        for (g, n) in [(0u16, 3u8), (1, 1), (2, 5), (7, 2), (codec::OPERATOR_GROUP, 2)] {
            for i in 0..n {
                let value = (i % 2 == 0).then(|| vec![i; 10]);
                let entry = value.as_ref().map_or(codec::TOMBSTONE.to_vec(), |v| codec::put_entry(v));
                b.insert(&s.stage, codec::stage_key(4, &key(g, i)), entry);
                want.push((key(g, i), value));
            }
        }
        // Another epoch's entries are not part of it.
        b.insert(&s.stage, codec::stage_key(5, &key(0, 9)), codec::put_entry(b"later"));
        s.commit_durable(b).unwrap();

        let groups = |part: &[StagedEntry]| -> Vec<u16> {
            let mut g: Vec<u16> = part.iter().map(|(k, _)| u16::from_be_bytes([k[0], k[1]])).collect();
            g.dedup();
            g
        };
        for (part_bytes, split) in [
            (usize::MAX, vec![vec![0, 1, 2, 7], vec![codec::OPERATOR_GROUP]]),
            // 3 entries of group 0 (two of 15 bytes, a deletion of 5) pass
            // 20 bytes: the part ends at group 1, not within group 0.
            (20, vec![vec![0], vec![1, 2], vec![7], vec![codec::OPERATOR_GROUP]]),
            (1, vec![vec![0], vec![1], vec![2], vec![7], vec![codec::OPERATOR_GROUP]]),
        ] {
            let mut parts = Vec::new();
            s.staged_parts(4, part_bytes, |p| {
                parts.push(p);
                Ok(())
            })
            .unwrap();
            assert_eq!(parts.iter().map(|p| groups(p)).collect::<Vec<_>>(), split, "{part_bytes}");
            assert_eq!(parts.concat(), want, "{part_bytes}");
        }
        let mut none = 0;
        s.staged_parts(6, 1, |_| {
            none += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(none, 0, "an epoch with nothing staged has no part");
    }

    // Guards a worker's restore from the checkpoint store, which writes
    // each object's entries as read: later writes win over earlier ones of
    // the same key (a delta over a materialised copy, a deletion over a
    // put), across write-batch boundaries.
    #[test]
    fn restored_writes_land_in_state_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Store::open(dir.path(), "j", &StoreConfig::default()).unwrap();
        let many: Vec<StagedEntry> = (0..2 * WRITE_CHUNK as u32 + 3)
            .map(|i| (format!("m{i:05}").into_bytes(), Some(i.to_be_bytes().to_vec())))
            .collect();
        s.load_restored(many).unwrap();
        s.load_restored(vec![(b"a".to_vec(), Some(b"1".to_vec())), (b"b".to_vec(), Some(b"2".to_vec()))]).unwrap();
        let mut later: Vec<StagedEntry> = vec![(b"m00000".to_vec(), None); WRITE_CHUNK];
        later.extend([(b"a".to_vec(), None), (b"b".to_vec(), Some(b"3".to_vec())), (b"m00001".to_vec(), None)]);
        s.load_restored(later).unwrap();
        s.mark_complete(9, false).unwrap();
        drop(s);

        let (s, rec) = Store::open(dir.path(), "j", &StoreConfig::default()).unwrap();
        assert_eq!(rec.complete, Some(9));
        let get = |k: &[u8]| s.state.get(k).unwrap().map(|v| v.to_vec());
        assert_eq!((get(b"a"), get(b"b")), (None, Some(b"3".to_vec())));
        assert_eq!((get(b"m00000"), get(b"m00001")), (None, None));
        assert_eq!(get(b"m00002"), Some(2u32.to_be_bytes().to_vec()));
        assert_eq!(s.state.iter().count(), 2 * WRITE_CHUNK + 3 - 2 + 1);
    }
}
