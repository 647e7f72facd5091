//! Checkpoints: barrier epochs, alignment, and the coordinator that decides
//! when an epoch is complete.
//!
//! Two-phase: a task stages its epoch-`n` delta in the node's journal and
//! acks; only when every task has acked does the coordinator write the
//! complete marker (`SyncAll`, which makes the staged deltas durable with
//! it, see [`Checkpoint::commit`]), let sinks publish what they staged for
//! `n`, and apply the staged deltas to committed state.

pub(crate) mod align;
mod coordinator;
pub(crate) mod machine;
pub(crate) mod protocol;
pub mod store;

pub(crate) use align::Inputs;
pub(crate) use coordinator::{Committer, CoordHandle, Coordinator};
pub(crate) use protocol::{Staged, TaskId};

use crate::error::Result;
use crate::state::Store;
use std::sync::Arc;

/// The write batch a task fills at a barrier: every operator in the task
/// adds its delta, the task commits it to the journal and acks.
pub struct Checkpoint {
    pub(crate) epoch: u64,
    pub(crate) batch: Option<fjall::OwnedWriteBatch>,
    store: Option<Arc<Store>>,
}

impl Checkpoint {
    pub(crate) fn new(epoch: u64, store: Option<&Arc<Store>>) -> Self {
        Self { epoch, batch: store.map(|s| s.batch()), store: store.cloned() }
    }

    /// The epoch being checkpointed.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Writes the task's delta to the node's journal, without a sync of
    /// its own: every task of a node writes to the same fjall journal, an
    /// append-only log recovered as a prefix (checksummed batches, cut at
    /// the first damaged one), so the coordinator's `SyncAll` of the
    /// complete marker — written after every ack — makes all the deltas
    /// it covers durable with it. A crash before that sync loses at most
    /// an epoch that was not complete, which recovery drops anyway. (One
    /// sync per epoch instead of one per task, and no task waits for the
    /// disk at a barrier. A node acking to a remote coordinator must sync
    /// before its acks leave the node.)
    /// Returns what was staged, for the ack.
    pub(crate) fn commit(self) -> Result<Staged> {
        let (Some(s), Some(b)) = (self.store, self.batch) else { return Ok(Staged::default()) };
        let staged = Staged { entries: b.len() as u64 };
        s.commit(b)?;
        Ok(staged)
    }
}
