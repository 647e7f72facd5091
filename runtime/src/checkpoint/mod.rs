//! Checkpoints: barrier epochs, alignment, and the coordinator that decides
//! when an epoch is complete.
//!
//! Two-phase: a task stages its epoch-`n` delta durably and acks; only when
//! every task has acked does the coordinator write the complete marker
//! (`SyncAll`), apply the staged deltas to committed state and let sinks
//! publish what they staged for `n`.

pub(crate) mod align;
mod coordinator;

pub(crate) use align::Inputs;
pub(crate) use coordinator::{Ack, Committer, CoordHandle, Coordinator};

use crate::error::Result;
use crate::state::Store;
use std::sync::Arc;

/// The write batch a task fills at a barrier: every operator in the task
/// adds its delta, the task commits it durably and acks.
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

    pub(crate) fn commit(self) -> Result<()> {
        match (self.store, self.batch) {
            (Some(s), Some(b)) => s.commit_durable(b),
            _ => Ok(()),
        }
    }
}
