//! What a worker of a cluster needs from its node's store: the entries it
//! staged for an epoch (uploaded to the checkpoint store), the sink output
//! it staged, and loading a checkpoint restored from the checkpoint store.

use super::codec::{self, read_entry};
use super::store::{outbox_epoch, Store, WRITE_CHUNK};
use crate::error::Result;
use std::ops::Bound;

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
