//! Going back to a savepoint: its state committed as the job's next epoch,
//! in the job's own store, so the job's history, its sinks' publish records
//! and its sources' mirrored ingest logs stay; and pins, which keep the
//! ingest logs of sources from a savepoint's checkpoint on so a rollback to
//! it replays every message received since.
//!
//! A rollback epoch is an ordinary checkpoint: its delta turns the state
//! of the latest checkpoint into the savepoint's (a delete for each key the
//! savepoint lacks, a set for each key it holds with another value), and
//! its task records are the savepoint's source positions. Restores, the
//! maintenance and the publishing of results need nothing new. Results of
//! windows the job fires again after the rollback are published again, as
//! new epochs (new message ids).

use super::error::{Error, Result};
use super::format::{self, Kind};
use super::model::{Committed, Entry, KeyGroups};
use super::restore::MATERIALISE_BYTES;
use super::{paths, CheckpointStore};
use std::collections::BTreeMap;

/// Entries per delta object of a rollback epoch.
const CHUNK: usize = 4096;

/// What [`CheckpointStore::rollback_to`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RolledBack {
    /// The savepoint's checkpoint (its epoch is the job's epoch it copies).
    pub savepoint: Committed,
    /// The job's latest checkpoint before the rollback.
    pub from: Committed,
    /// The epoch committed with the savepoint's state.
    pub at: Committed,
    /// Keys set to the savepoint's values.
    pub set: u64,
    /// Keys deleted.
    pub deleted: u64,
    /// The rollback had been done before (the store records it): nothing
    /// was changed.
    pub already: bool,
}

impl CheckpointStore {
    /// Keeps the mirrored ingest logs from checkpoint `epoch` on: its
    /// sources do not trim below their positions in it while it is pinned.
    /// The pin records `at` (Unix seconds), for [`Self::pinned_at`].
    ///
    /// # Errors
    /// [`Error::Backend`].
    pub fn pin(&self, epoch: u64, at: u64) -> Result<()> {
        self.io.put_overwrite(&paths::pin(epoch), format::encode(Kind::Pin, &at)?)
    }

    /// When checkpoint `epoch` was pinned (Unix seconds), if it is.
    ///
    /// # Errors
    /// [`Error::Damaged`] for an undecodable pin; [`Error::Backend`].
    pub fn pinned_at(&self, epoch: u64) -> Result<Option<u64>> {
        self.read(&paths::pin(epoch), Kind::Pin)
    }

    /// Releases the pin of checkpoint `epoch`.
    ///
    /// # Errors
    /// [`Error::Backend`].
    pub fn unpin(&self, epoch: u64) -> Result<()> {
        self.io.delete(&paths::pin(epoch))
    }

    /// The pinned checkpoints, oldest first.
    ///
    /// # Errors
    /// [`Error::Backend`].
    pub fn pins(&self) -> Result<Vec<u64>> {
        let mut pins: Vec<u64> = self.io.list(paths::PINS)?.iter().filter_map(|n| paths::parse_pin(n)).collect();
        pins.sort_unstable();
        Ok(pins)
    }

    /// Commits the state and source positions of the savepoint at
    /// `savepoint_url` (written by `savepoint --to`) as this job's next
    /// epoch, under a newly claimed generation (which fences the running
    /// coordinator, if any: it starts again from the new epoch). Done once
    /// per savepoint checkpoint: asked again, it changes nothing.
    ///
    /// # Errors
    /// [`Error::Refused`] if the savepoint holds no checkpoint of the job,
    /// if this store holds none to roll back (start the job with
    /// `--from-savepoint` instead), or if the job mirrors ingest logs and
    /// the savepoint's checkpoint is not pinned (its sources may have
    /// released messages it replays); [`Error::Damaged`] for damaged
    /// objects of either store; [`Error::Fenced`] if another generation
    /// was claimed meanwhile; [`Error::Backend`].
    pub fn rollback_to(&self, savepoint_url: &str) -> Result<RolledBack> {
        self.rollback(savepoint_url, MATERIALISE_BYTES)
    }

    /// [`Self::rollback_to`], reading the latest state in runs of about
    /// `budget` bytes.
    pub(crate) fn rollback(&self, savepoint_url: &str, budget: usize) -> Result<RolledBack> {
        let refused = |reason: String| Error::Refused { url: savepoint_url.to_owned(), reason };
        let sp = CheckpointStore::open(savepoint_url, &self.job)?;
        let savepoint = sp.latest()?.ok_or_else(|| refused(format!("holds no checkpoint of job {}", self.job)))?;
        let marker = paths::rolled_back(savepoint);
        if let Some(at) = self.read::<Committed>(&marker, Kind::RolledBack)? {
            let from = self.latest()?.unwrap_or(at);
            return Ok(RolledBack { savepoint, from, at, set: 0, deleted: 0, already: true });
        }
        let Some(current) = self.latest()? else {
            return Err(Error::Refused {
                url: self.io.url.clone(),
                reason: format!(
                    "holds no checkpoint of job {} to roll back; start the job with --from-savepoint {savepoint_url}",
                    self.job
                ),
            });
        };
        if !self.io.list(super::ingest::INGEST)?.is_empty() && !self.pins()?.contains(&savepoint.epoch) {
            return Err(refused(format!(
                "its checkpoint (epoch {}) is not pinned in {}: the job's MQTT sources may have released \
                 messages received since then, which a rollback would have to replay",
                savepoint.epoch, self.io.url
            )));
        }
        let meta = sp.epoch_meta(savepoint.epoch)?;
        let generation = self.claim_generation()?;
        // Read again under the new generation: nothing older commits now.
        let from = self.latest()?.unwrap_or(current);
        let epoch = from.epoch + 1;
        let all = KeyGroups { first: 0, last: u16::MAX };
        let mut target: BTreeMap<Vec<u8>, Vec<u8>> = sp.restore(all, savepoint.epoch)?.into_iter().collect();
        let mut writer = DeltaWriter { store: self, generation, epoch, buf: Vec::new(), refs: Vec::new() };
        let (mut set, mut deleted) = (0u64, 0u64);
        self.state_in_runs(all, from.epoch, budget, |_, run| {
            for (k, v) in run {
                let value = match target.remove(&k) {
                    Some(want) if want == v => continue,
                    Some(want) => {
                        set += 1;
                        Some(want)
                    }
                    None => {
                        deleted += 1;
                        None
                    }
                };
                // Keys only the savepoint holds, below this one (in this
                // run's key groups or earlier ones), come first.
                let before: Vec<Vec<u8>> = target.keys().take_while(|t| **t < k).cloned().collect();
                for b in before {
                    let v = target.remove(&b);
                    set += 1;
                    writer.push(Entry { key: b, value: v })?;
                }
                writer.push(Entry { key: k, value })?;
            }
            Ok(())
        })?;
        for (k, v) in std::mem::take(&mut target) {
            set += 1;
            writer.push(Entry { key: k, value: Some(v) })?;
        }
        writer.flush()?;
        let refs = writer.refs;
        // The savepoint's positions; its results were published long ago.
        let tasks = meta
            .tasks
            .into_iter()
            .map(|mut t| {
                t.sink_commits.clear();
                t
            })
            .collect();
        let at = self.commit_epoch(generation, epoch, refs, tasks)?;
        self.io.put_overwrite(&marker, format::encode(Kind::RolledBack, &at)?)?;
        if self.finished()?.is_some() {
            self.io.delete(paths::FINISHED)?;
        }
        tracing::info!(job = %self.job, savepoint = savepoint.epoch, from = from.epoch, epoch, set, deleted, "rolled back to a savepoint");
        Ok(RolledBack { savepoint, from, at, set, deleted, already: false })
    }
}

/// Writes a rollback epoch's entries (in key order) as delta objects of
/// [`CHUNK`] entries each.
struct DeltaWriter<'a> {
    store: &'a CheckpointStore,
    generation: u64,
    epoch: u64,
    buf: Vec<Entry>,
    refs: Vec<super::DeltaRef>,
}

impl DeltaWriter<'_> {
    fn push(&mut self, e: Entry) -> Result<()> {
        self.buf.push(e);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        let (Some(first), Some(last)) = (self.buf.first(), self.buf.last()) else { return Ok(()) };
        let (Some(a), Some(b)) = (first.key_group(), last.key_group()) else {
            return Err(Error::invalid("a state key without a key group"));
        };
        let part = u16::try_from(self.refs.len()).map_err(|_| Error::invalid("a rollback of over 65,536 parts"))?;
        let r =
            self.store.put_delta_part(self.generation, self.epoch, KeyGroups { first: a, last: b }, part, &self.buf)?;
        self.refs.push(r);
        self.buf.clear();
        Ok(())
    }
}
