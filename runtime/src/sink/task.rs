//! The sink's two halves: staging in the sink task, publishing in the
//! coordinator once an epoch is complete.

use super::Output;
use crate::checkpoint::{Checkpoint, Committer, CoordHandle};
use crate::error::Result;
use crate::metrics::{Metrics, TaskMetrics};
use crate::record::Record;
use crate::state::{codec, outbox_key, Store};
use crate::task::Consumer;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Bytes staged per outbox entry before it is written out early.
const CHUNK: usize = 1 << 20;
/// Bytes buffered before a direct (non-checkpointed) write.
const DIRECT_CHUNK: usize = 1 << 16;

pub(crate) struct SinkConsumer<T> {
    pub(crate) id: u16,
    pub(crate) encode: super::Encode<T>,
    pub(crate) buf: Vec<u8>,
    pub(crate) store: Option<Arc<Store>>,
    /// Set when the job runs without checkpoints, or with eager output.
    pub(crate) direct: Option<Box<dyn Output>>,
    /// Eager output: publish at once, checkpoint the output's record.
    pub(crate) eager: bool,
    pub(crate) epoch: u64,
    pub(crate) chunk: u32,
    pub(crate) metrics: Arc<Metrics>,
    /// The sink task's own counters.
    pub(crate) task: Arc<TaskMetrics>,
    /// With commit on output: where to ask for the epoch holding results.
    pub(crate) request: Option<CoordHandle>,
    /// The last epoch asked for.
    pub(crate) requested: u64,
}

impl<T> SinkConsumer<T> {
    fn stage_chunk(&mut self, batch: Option<&mut fjall::OwnedWriteBatch>) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let Some(store) = &self.store else { return Ok(()) };
        let key = outbox_key(self.id, self.epoch, self.chunk);
        self.chunk += 1;
        let bytes = std::mem::take(&mut self.buf);
        match batch {
            Some(b) => b.insert(&store.outbox, key, bytes),
            None => {
                let mut b = store.batch();
                b.insert(&store.outbox, key, bytes);
                store.commit(b)?;
            }
        }
        Ok(())
    }
}

impl<T: Send> Consumer<T> for SinkConsumer<T> {
    fn batch(&mut self, recs: Vec<Record<T>>) -> Result<()> {
        self.metrics.records_out.fetch_add(recs.len() as u64, Ordering::Relaxed);
        self.task.records_out.fetch_add(recs.len() as u64, Ordering::Relaxed);
        if let Some(c) = &self.request {
            if !recs.is_empty() && self.requested < self.epoch {
                // Results of `epoch` leave when it completes: ask for it now.
                c.want(self.epoch);
                self.requested = self.epoch;
            }
        }
        let start = self.buf.len();
        for r in &recs {
            (self.encode)(&r.value, &mut self.buf);
        }
        if self.metrics.results.is_enabled() {
            self.metrics.results.push(&self.buf[start..]);
        }
        if let (true, Some(out)) = (self.eager, &mut self.direct) {
            out.publish_eager(&self.buf)?;
            self.buf.clear();
        } else if let Some(out) = &mut self.direct {
            if self.buf.len() >= DIRECT_CHUNK {
                out.direct(&self.buf)?;
                self.buf.clear();
            }
        } else if self.buf.len() >= CHUNK {
            self.stage_chunk(None)?;
        }
        Ok(())
    }

    fn watermark(&mut self, wm: i64) -> Result<()> {
        self.metrics.watermark.store(wm as u64, Ordering::Relaxed);
        Ok(())
    }

    fn barrier(&mut self, cp: &mut Checkpoint, _last: bool) -> Result<()> {
        if let (true, Some(out), Some(store), Some(batch)) = (self.eager, &mut self.direct, &self.store, &mut cp.batch)
        {
            let record = out.checkpoint_eager()?;
            batch.insert(&store.stage, codec::stage_key(cp.epoch, &eager_key(self.id)), codec::put_entry(&record));
        }
        self.stage_chunk(cp.batch.as_mut())?;
        self.epoch = cp.epoch + 1;
        self.chunk = 0;
        Ok(())
    }

    fn end(&mut self) -> Result<()> {
        if let Some(out) = &mut self.direct {
            out.direct(&self.buf)?;
            self.buf.clear();
            out.flush()?;
        } else if !self.buf.is_empty() {
            tracing::warn!(bytes = self.buf.len(), "sink output after the last checkpoint was not committed");
        }
        Ok(())
    }
}

/// Where an eager sink's output record lives in committed state.
pub(crate) fn eager_key(id: u16) -> Vec<u8> {
    let mut k = Vec::new();
    codec::key_prefix(codec::OPERATOR_GROUP, id, &mut k);
    k.extend_from_slice(b"eager-output");
    k
}

/// Brings an eager sink's output back to its last complete checkpoint.
pub(crate) fn recover_eager(store: &Store, id: u16, restored: bool, output: &mut dyn Output) -> Result<()> {
    let record = if restored { store.state.get(eager_key(id)).map_err(|e| store.err(e))? } else { None };
    output.recover(record.as_deref())
}

pub(crate) struct SinkCommitter {
    pub(crate) id: u16,
    pub(crate) output: Box<dyn Output>,
}

impl SinkCommitter {
    fn meta_key(&self) -> Vec<u8> {
        format!("sink/{}", self.id).into_bytes()
    }
}

impl Committer for SinkCommitter {
    fn recover(&mut self, store: &Store, complete: Option<u64>) -> Result<()> {
        let meta: Option<Vec<u8>> = store.get_meta(&self.meta_key())?;
        self.output.recover(meta.as_deref())?;
        let mut epochs = Vec::new();
        for item in store.outbox.prefix(self.id.to_be_bytes()) {
            let k = item.key().map_err(|e| store.err(e))?;
            let e = crate::state::outbox_epoch(&k)?;
            if epochs.last() != Some(&e) && complete.is_some_and(|c| e <= c) {
                epochs.push(e);
            }
        }
        for e in epochs {
            self.commit(store, e)?;
        }
        Ok(())
    }

    fn commit(&mut self, store: &Store, epoch: u64) -> Result<()> {
        let mut prefix = self.id.to_be_bytes().to_vec();
        prefix.extend_from_slice(&epoch.to_be_bytes());
        let mut batch = store.batch();
        for item in store.outbox.prefix(&prefix) {
            let (k, v) = item.into_inner().map_err(|e| store.err(e))?;
            self.output.publish(&v)?;
            batch.remove(&store.outbox, k);
        }
        let record = self.output.end_epoch()?;
        Store::put_meta(&mut batch, &store.meta, &self.meta_key(), &record)?;
        store.commit_durable(batch)
    }
}
