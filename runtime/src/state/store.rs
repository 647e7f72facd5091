//! The node's fjall database and the checkpoint layers inside it.
//!
//! Keyspaces:
//! - `state`: the committed state of the last complete epoch (plus epochs
//!   already applied); read at recovery.
//! - `stage`: deltas of epochs, keyed `epoch | key`: those not yet known
//!   complete, and complete ones a retained checkpoint may still be
//!   restored from (see [`super::retain`]). A complete delta is applied to
//!   `state` once it is no later than the oldest retained checkpoint; at
//!   recovery complete epochs are (re)applied and the rest dropped.
//! - `spill`: the working copy of state evicted from memory. Never durable
//!   in meaning: cleared at every start.
//! - `outbox`: sink rows staged per epoch, published when it completes.
//! - `meta`: the complete-epoch marker, sink commit records, the job's end.
//! - `timers`: timers operators moved out of memory (see
//!   [`super::timers`]); a working copy, cleared at every start.
//! - `ingest`: messages sources made durable before acking them upstream
//!   (see [`super::IngestLog`]); trimmed by the sources themselves.
//! - `undo`: per epoch applied at recovery, what its delta overwrote in
//!   `state`, keyed `epoch | key`: how older retained checkpoints are
//!   restored (see [`super::retain`]).

use super::codec::{self, read_entry};
use super::manifest::{self, refuse, Committed, CREATING, KEYSPACES};
use crate::error::{Error, Result};
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use serde::{de::DeserializeOwned, Serialize};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Bumped when the on-disk layout changes incompatibly.
pub const STATE_FORMAT: u32 = 2;
/// Entries per write batch wherever a large set is written or read in
/// chunks (deltas staged and applied, evictions, spilled timers): a bounded
/// batch is bounded memory.
pub(crate) const WRITE_CHUNK: usize = 4_096;
pub(super) const MARKER: &str = "RIVULET";
pub(super) const DB_DIR: &str = "db";
pub(super) const META_COMPLETE: &[u8] = b"complete";
pub(super) const META_FINISHED: &[u8] = b"finished";
/// The last epoch whose delta was applied to `state` as a sorted run (see
/// [`Store::apply_staged`]): what is left of it in `stage` is removed, never
/// applied again.
pub(super) const META_APPLIED: &[u8] = b"applied";
/// Entries from which a table's delta is written to `stage`, and an
/// epoch's delta applied to `state`, as a sorted run of tables (see
/// [`Store::ingest`]) instead of through write batches. A run costs a few
/// syncs and a level-0 run of its own, so small deltas (a job with few
/// keys, every second) stay in batches; a large one is written once,
/// sorted, where batches would write it to the journal, a memtable, a
/// flushed table and compactions.
pub(crate) const RUN_MIN: usize = WRITE_CHUNK;

/// Tuning of the store for small devices.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// fjall block cache in bytes.
    pub block_cache: u64,
    /// Memtable size per keyspace in bytes.
    pub memtable: u64,
    /// Size of the tables compactions write. A compaction holds the bloom
    /// filter of the table it writes in memory until the table is done
    /// (about 1.25 bytes per key), so this bounds that memory (fjall's
    /// default, 64 MiB, held 4 MiB at a time per compaction at a million
    /// keys). Fixed when a keyspace is created.
    pub table: u64,
    /// Journal size before memtables are flushed.
    pub max_journaling: u64,
    /// All memtables together, active and sealed, in fjall's count of
    /// bytes: a writer past it waits for flushes (see [`Store::throttle`]).
    pub write_buffer: u64,
    /// Complete checkpoints kept restorable (at least 1). With 1 only the
    /// last complete one is kept, at no cost; each further one keeps one
    /// more epoch's delta staged on disk.
    pub retain_checkpoints: usize,
}

/// The default [`StoreConfig::retain_checkpoints`].
pub const DEFAULT_RETAIN_CHECKPOINTS: usize = 3;

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            block_cache: 4 << 20,
            memtable: 1 << 20,
            table: 8 << 20,
            max_journaling: 64 << 20,
            write_buffer: 6 << 20,
            retain_checkpoints: DEFAULT_RETAIN_CHECKPOINTS,
        }
    }
}

/// What was found when the store was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovered {
    /// The last complete epoch, if any checkpoint completed.
    pub complete: Option<u64>,
    /// The job ran to the end of its input and committed everything.
    pub finished: bool,
}

/// One node's state database.
pub struct Store {
    path: PathBuf,
    db: Database,
    pub(crate) state: Keyspace,
    pub(crate) stage: Keyspace,
    pub(crate) spill: Keyspace,
    pub(crate) outbox: Keyspace,
    pub(crate) meta: Keyspace,
    pub(crate) ingest: Keyspace,
    pub(crate) timers: Keyspace,
    memtable: u64,
    write_buffer: u64,
    /// fjall's journal count when [`Store::throttle`] last looked.
    journals: std::sync::atomic::AtomicUsize,
    pub(crate) undo: Keyspace,
    /// [`StoreConfig::retain_checkpoints`].
    pub(crate) retain: usize,
    /// Every `stage` epoch below it is applied or dropped: where
    /// [`Store::apply_epoch`] starts.
    unapplied: AtomicU64,
    /// Holds the directory's lock while the store is open.
    _lock: std::fs::File,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// [`Store::open_job`] for a job that declares no identity beyond its
    /// name.
    ///
    /// # Errors
    /// See [`Store::open_job`].
    pub fn open(path: &Path, job: &str, cfg: &StoreConfig) -> Result<(Store, Recovered)> {
        Self::open_job(path, job, &[], cfg)
    }

    /// Opens (or creates) the state directory of job `job` with `identity`
    /// (the `(name, value)` pairs that define its state, recorded at
    /// creation), proves its committed data intact, then restores it to its
    /// last complete epoch.
    ///
    /// # Errors
    /// [`Error::StateRefused`] when the directory is a file, not Rivulet
    /// state, written by another job, identity or format, used by another
    /// process, not writable, or damaged (a keyspace missing, fjall's last
    /// complete epoch below the one recorded in `RIVULET.epoch`). Nothing
    /// in it is changed in that case.
    pub fn open_job(
        path: &Path,
        job: &str,
        identity: &[(String, String)],
        cfg: &StoreConfig,
    ) -> Result<(Store, Recovered)> {
        Self::open_job_then(path, job, identity, cfg, |_| Ok(()))
    }

    /// [`Store::open_job`], running `before_recovery` on the store once its
    /// committed data is proven intact and before it is restored to its
    /// last complete epoch (a cluster worker completes there an epoch the
    /// checkpoint store committed; see `state/cluster.rs`).
    pub(crate) fn open_job_then(
        path: &Path,
        job: &str,
        identity: &[(String, String)],
        cfg: &StoreConfig,
        before_recovery: impl FnOnce(&Store) -> Result<()>,
    ) -> Result<(Store, Recovered)> {
        let lock = manifest::lock(path)?;
        check_marker(path, job, identity, cfg)?;
        let committed = manifest::read_committed(path)?;
        let refuse = |reason: String| refuse(path, reason);
        let db = Database::builder(path.join(DB_DIR))
            .cache_size(cfg.block_cache)
            .max_journaling_size(cfg.max_journaling)
            // One. With two, fjall's worker 0 hands every compaction request
            // back to the queue for worker 1 and takes it again at once: it
            // spins on a core for as long as worker 1 compacts. One worker
            // flushes and compacts in turn, and the writer's throttle
            // already waits for flushes, so the second worker bought no
            // wall time and cost a core.
            .worker_threads(1)
            .open()
            .map_err(|e| refuse(format!("the state database cannot be opened: {e}")))?;
        manifest::verify_keyspaces(path, &db)?;
        let (memtable, table) = (cfg.memtable, cfg.table);
        let open = |name: &str| {
            db.keyspace(name, || keyspace_options(name, table))
                .map_err(|e| refuse(format!("keyspace `{name}` cannot be opened: {e}")))
        };
        let store = Store {
            state: open("state")?,
            stage: open("stage")?,
            spill: open("spill")?,
            outbox: open("outbox")?,
            meta: open("meta")?,
            ingest: open("ingest")?,
            timers: open("timers")?,
            memtable,
            write_buffer: cfg.write_buffer.max(memtable),
            journals: std::sync::atomic::AtomicUsize::new(1),
            undo: open("undo")?,
            retain: cfg.retain_checkpoints.max(1),
            unapplied: AtomicU64::new(0),
            path: path.to_path_buf(),
            db,
            _lock: lock,
        };
        let found: Option<u64> = store.get_meta(META_COMPLETE)?;
        manifest::verify_committed(path, committed, found)?;
        before_recovery(&store)?;
        let rec = store.recover()?;
        Ok((store, rec))
    }

    /// The state directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Complete checkpoints kept restorable.
    pub fn retain_checkpoints(&self) -> usize {
        self.retain
    }

    pub(crate) fn err(&self, e: fjall::Error) -> Error {
        Error::Store { path: self.path.clone(), source: e }
    }

    /// A new atomic write batch.
    pub(crate) fn batch(&self) -> fjall::OwnedWriteBatch {
        self.db.batch()
    }

    /// Commits `batch` and syncs it to disk.
    pub(crate) fn commit_durable(&self, batch: fjall::OwnedWriteBatch) -> Result<()> {
        batch.durability(Some(PersistMode::SyncAll)).commit().map_err(|e| self.err(e))?;
        self.throttle();
        Ok(())
    }

    /// Commits `batch` without waiting for the disk.
    pub(crate) fn commit(&self, batch: fjall::OwnedWriteBatch) -> Result<()> {
        batch.commit().map_err(|e| self.err(e))?;
        self.throttle();
        Ok(())
    }

    fn keyspaces(&self) -> [&Keyspace; 8] {
        [&self.state, &self.stage, &self.spill, &self.outbox, &self.meta, &self.ingest, &self.timers, &self.undo]
    }

    /// Seals memtables and keeps them within [`StoreConfig::write_buffer`].
    ///
    /// Memtables are sealed here, by the writer, never by fjall's workers on
    /// request. fjall 3.1 requests a rotation with a non-blocking send to
    /// its workers' bounded queue (1,000 messages) at every write to a full
    /// memtable, and a worker carrying it out sends the resulting flush with
    /// a blocking one; the queue also fills with compaction requests when
    /// flushes outpace compactions, and then every worker blocks forever on
    /// its own queue (fjall-rs/fjall PR #323, not released; seen here as
    /// hangs of 3 M-key runs, with one worker and with two). So keyspaces
    /// are created with no memtable limit of fjall's, and after each write
    /// the writer seals (a writer blocked on a full queue goes on as soon as
    /// a worker takes the next message):
    /// - a memtable past [`StoreConfig::memtable`];
    /// - every non-empty memtable, once each time fjall starts a new
    ///   journal, so none keeps an old journal alive until fjall itself asks
    ///   for its rotation to reclaim journal space;
    /// - when all memtables together are over the write buffer, those at
    ///   least half full; it then waits until flushes bring them back under
    ///   it (fjall halts writers only at four sealed memtables per keyspace,
    ///   and flushes can queue behind long compactions).
    fn throttle(&self) {
        use fjall::AbstractTree;
        use std::sync::atomic::Ordering;
        let journals = self.db.journal_count();
        let new_journal = journals > self.journals.swap(journals, Ordering::Relaxed);
        let over_budget = self.db.write_buffer_size() > self.write_buffer;
        for ks in self.keyspaces() {
            let size = ks.tree.active_memtable().size();
            if size > self.memtable || (new_journal && size > 0) || (over_budget && size >= self.memtable / 2) {
                // An error here is fjall's journal failing, which the next
                // write reports.
                let _ = ks.rotate_memtable();
            }
        }
        if !over_budget {
            return;
        }
        let start = std::time::Instant::now();
        while self.db.write_buffer_size() > self.write_buffer {
            // fjall's count can stay high with nothing left to flush (a
            // cleared keyspace does not give its memtable back): only a
            // pending flush is worth waiting for.
            if self.keyspaces().iter().all(|ks| ks.sealed_memtable_count() == 0) {
                return;
            }
            if start.elapsed() > std::time::Duration::from_secs(30) {
                tracing::warn!(
                    bytes = self.db.write_buffer_size(),
                    "memtables are still over budget after 30 s of waiting for flushes; going on"
                );
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    pub(crate) fn get_meta<V: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<V>> {
        let Some(v) = self.meta.get(key).map_err(|e| self.err(e))? else {
            return Ok(None);
        };
        codec::decode_value(&v, &String::from_utf8_lossy(key)).map(Some)
    }

    pub(crate) fn put_meta<V: Serialize>(
        batch: &mut fjall::OwnedWriteBatch,
        ks: &Keyspace,
        key: &[u8],
        v: &V,
    ) -> Result<()> {
        let mut buf = Vec::new();
        codec::encode_value(v, &mut buf)?;
        batch.insert(ks, key.to_vec(), buf);
        Ok(())
    }

    /// Durably records that `epoch` is complete (and, if `finished`, that
    /// the job is done). This is the commit point of the epoch.
    pub(crate) fn mark_complete(&self, epoch: u64, finished: bool) -> Result<()> {
        let mut b = self.batch();
        Self::put_meta(&mut b, &self.meta, META_COMPLETE, &epoch)?;
        if finished {
            Self::put_meta(&mut b, &self.meta, META_FINISHED, &true)?;
        }
        self.list_checkpoint(&mut b, epoch)?;
        self.commit_durable(b)?;
        // After fjall's sync: the file never claims more than fjall holds.
        // The rename is not synced: lost, it leaves a lower epoch, which
        // the check at open accepts.
        manifest::write_committed(&self.path, Committed { complete: Some(epoch), restoring: None }, false)
    }

    /// Called once `epoch` is complete (and listed by
    /// [`Store::mark_complete`]). A complete epoch's delta stays in `stage`
    /// while a retained checkpoint older than it can be restored, so a
    /// restore drops later deltas instead of undoing them; here the deltas
    /// of the oldest retained epoch and older are applied to `state`,
    /// without undo records (with one checkpoint retained, `epoch`'s own).
    /// A running job never reads what it changed since it started from
    /// `state` (its cache and `spill` hold it), and recovery applies every
    /// complete delta, so nothing reads a deferred one from there.
    /// Idempotent: a crash half-way is finished by the next recovery.
    /// Returns each epoch applied with the bytes of its delta (keys and
    /// entries).
    pub(crate) fn apply_epoch(&self, epoch: u64) -> Result<Vec<(u64, u64)>> {
        let oldest = self.trim_retained()?.map_or(epoch, |o| o.min(epoch));
        let from = self.unapplied.load(Ordering::Relaxed);
        if oldest < from {
            return Ok(Vec::new());
        }
        let mut applied = Vec::new();
        for e in from..=oldest {
            applied.extend(self.apply_staged(e)?);
        }
        self.unapplied.store(oldest.saturating_add(1), Ordering::Relaxed);
        Ok(applied)
    }

    /// Applies the complete delta of `epoch` to `state` and removes it from
    /// `stage`; returns its bytes (keys and entries) if it had any. A delta
    /// of [`RUN_MIN`] entries or more goes to `state` as one sorted run;
    /// then [`META_APPLIED`] durably records it applied before its staged
    /// copy is removed (whole tables first, then any key left), so that a
    /// crash in the removal never applies what is left over a later epoch.
    fn apply_staged(&self, epoch: u64) -> Result<Option<(u64, u64)>> {
        let prefix = epoch.to_be_bytes();
        if self.stage.prefix(prefix).nth(RUN_MIN - 1).is_none() {
            return Ok(self.drain_stage(epoch, epoch, true, false)?.pop());
        }
        let mut bytes = 0u64;
        let entries = self.stage.prefix(prefix).map(|item| {
            let (k, v) = item.into_inner().map_err(|e| self.err(e))?;
            bytes += (k.len() + v.len()) as u64;
            let key = epoch_key_tail(&k, "stage key")?.to_vec();
            Ok((key, read_entry(&v)?.map(<[u8]>::to_vec)))
        });
        self.ingest(&self.state, entries)?;
        let mut b = self.batch();
        Self::put_meta(&mut b, &self.meta, META_APPLIED, &epoch)?;
        self.commit_durable(b)?;
        self.drop_stage_tables(epoch)?;
        self.drop_stage(epoch)?;
        Ok(Some((epoch, bytes)))
    }

    /// Drops the `stage` tables that hold nothing but `epoch`'s delta, as
    /// a sorted run of it does (fjall skips a table a compaction is merging
    /// meanwhile: [`Store::drop_stage`] removes what is left).
    fn drop_stage_tables(&self, epoch: u64) -> Result<()> {
        use fjall::AbstractTree;
        let lower = epoch.to_be_bytes();
        let upper = match epoch.checked_add(1) {
            Some(next) => Bound::Excluded(next.to_be_bytes()),
            None => Bound::Unbounded,
        };
        self.stage.tree.drop_range::<[u8; 8], _>((Bound::Included(lower), upper)).map_err(|e| self.err(e.into()))
    }

    /// Writes `entries` to `ks` as one sorted run of tables, past the
    /// journal and the memtables: a `None` value is a deletion. Durable when
    /// this returns (fjall syncs the tables and the version naming them),
    /// and newer than anything written to `ks` before. Keys must be
    /// strictly ascending.
    pub(super) fn ingest<K: Into<fjall::UserKey>, V: Into<fjall::UserValue>>(
        &self,
        ks: &Keyspace,
        entries: impl Iterator<Item = Result<(K, Option<V>)>>,
    ) -> Result<()> {
        let mut run = ks.start_ingestion().map_err(|e| self.err(e))?;
        for item in entries {
            match item? {
                (k, Some(v)) => run.write(k, v),
                (k, None) => run.write_tombstone(k),
            }
            .map_err(|e| self.err(e))?;
        }
        run.finish().map_err(|e| self.err(e))
    }

    /// Removes the deltas of epochs `from..=through` from `stage`, applying
    /// them to `state` first when `apply`, in chunks (see
    /// [`Store::chunks`]). With `undo`, each key's previous `state` entry
    /// becomes an undo record in the batch that overwrites it, so a crash
    /// never records a key twice (the second time, after its new value).
    /// Returns each epoch drained with the bytes of its delta (keys and
    /// entries).
    pub(super) fn drain_stage(&self, from: u64, through: u64, apply: bool, undo: bool) -> Result<Vec<(u64, u64)>> {
        let mut sizes: Vec<(u64, u64)> = Vec::new();
        self.chunks(&self.stage, from, through.checked_add(1), |chunk| {
            let mut batch = self.batch();
            for (k, v) in chunk {
                let (epoch, bytes) = (key_epoch(&k, "stage key")?, (k.len() + v.len()) as u64);
                match sizes.last_mut() {
                    Some((e, b)) if *e == epoch => *b += bytes,
                    _ => sizes.push((epoch, bytes)),
                }
                if apply {
                    let state_key = epoch_key_tail(&k, "stage key")?.to_vec();
                    if undo {
                        // A key no checkpoint held has nothing to read.
                        let prev = match codec::is_new(&v) {
                            true => None,
                            false => self.state.get(&state_key).map_err(|e| self.err(e))?,
                        };
                        let prev = prev.map_or_else(|| codec::TOMBSTONE.to_vec(), |p| codec::put_entry(&p));
                        batch.insert(&self.undo, k.to_vec(), prev);
                    }
                    self.put_state(&mut batch, state_key, &v)?;
                }
                batch.remove(&self.stage, k);
            }
            self.commit(batch)
        })?;
        Ok(sizes)
    }

    /// Writes a stored entry (a value or a tombstone) to `state` in `batch`.
    pub(super) fn put_state(&self, batch: &mut fjall::OwnedWriteBatch, key: Vec<u8>, entry: &[u8]) -> Result<()> {
        match read_entry(entry)? {
            Some(value) => batch.insert(&self.state, key, value.to_vec()),
            None => batch.remove(&self.state, key),
        }
        Ok(())
    }

    /// Hands `f` the entries of `ks` keyed `epoch u64 BE | ...` with epochs
    /// in `[from, to)` (`to = None`: unbounded), in chunks; `f` is expected
    /// to remove what it is given. Each chunk is read by an iterator that
    /// is dropped before `f` runs: an iterator pins the memtables of its
    /// snapshot, so one held across a large delta would keep every memtable
    /// written meanwhile in memory.
    pub(super) fn chunks(
        &self,
        ks: &Keyspace,
        from: u64,
        to: Option<u64>,
        mut f: impl FnMut(Vec<(fjall::Slice, fjall::Slice)>) -> Result<()>,
    ) -> Result<()> {
        let mut lower = Bound::Included(from.to_be_bytes().to_vec());
        let upper = to.map_or(Bound::Unbounded, |e| Bound::Excluded(e.to_be_bytes().to_vec()));
        loop {
            let mut chunk = Vec::with_capacity(1024);
            for item in ks.range((lower.clone(), upper.clone())).take(WRITE_CHUNK) {
                chunk.push(item.into_inner().map_err(|e| self.err(e))?);
            }
            let Some((last, _)) = chunk.last() else { return Ok(()) };
            lower = Bound::Excluded(last.to_vec());
            let full = chunk.len() == WRITE_CHUNK;
            f(chunk)?;
            if !full {
                return Ok(());
            }
        }
    }

    fn recover(&self) -> Result<Recovered> {
        let rollback = self.rollback_intent()?;
        self.settle_stage(rollback.is_some())?;
        if let Some(t) = rollback {
            tracing::info!(epoch = t, "finishing an interrupted rollback");
            self.finish_rollback(t)?;
        }
        let complete: Option<u64> = self.get_meta(META_COMPLETE)?;
        let finished = self.get_meta(META_FINISHED)?.unwrap_or(false);
        self.spill.clear().map_err(|e| self.err(e))?;
        self.timers.clear().map_err(|e| self.err(e))?;
        // Outbox entries of epochs that never completed are discarded.
        let mut batch = self.batch();
        for item in self.outbox.iter() {
            let k = item.key().map_err(|e| self.err(e))?;
            let e = outbox_epoch(&k)?;
            if complete.is_none_or(|c| e > c) {
                batch.remove(&self.outbox, k);
            }
        }
        // What a cluster worker uploaded beyond `complete` was just dropped.
        batch.remove(&self.meta, super::cluster::META_UPLOADED.to_vec());
        self.commit_durable(batch)?;
        Ok(Recovered { complete, finished })
    }

    /// Applies every complete delta still staged to `state`, oldest first,
    /// and drops the others (of epochs that never completed), so `state`
    /// holds the last complete epoch: what a job starting reads. Deltas a
    /// listed checkpoint may be restored from (later than the oldest
    /// listed one) are applied with undo records, and all of them while a
    /// `rollback` is unfinished: it needs every undo record it had, and one
    /// of every key it is yet to overwrite. The list is not trimmed here: a
    /// start with fewer checkpoints retained can still restore any listed
    /// one; the first epoch it completes trims it.
    pub(super) fn settle_stage(&self, rollback: bool) -> Result<()> {
        let complete: Option<u64> = self.get_meta(META_COMPLETE)?;
        let applied: Option<u64> = self.get_meta(META_APPLIED)?;
        let mut epochs = Vec::new();
        let mut next = 0u64;
        while let Some(item) = self.stage.range(next.to_be_bytes()..).next() {
            let k = item.key().map_err(|e| self.err(e))?;
            let e = key_epoch(&k, "stage key")?;
            epochs.push(e);
            let Some(n) = e.checked_add(1) else { break };
            next = n;
        }
        for e in epochs {
            if applied.is_some_and(|a| e <= a) {
                // In `state` already: a crash cut its removal short.
                self.drop_stage(e)?;
            } else if complete.is_some_and(|c| e <= c) {
                let undo = rollback || self.oldest_listed()?.is_some_and(|oldest| e > oldest);
                self.drain_stage(e, e, true, undo)?;
            } else {
                self.drop_stage(e)?;
            }
        }
        self.unapplied.store(complete.map_or(0, |c| c.saturating_add(1)), Ordering::Relaxed);
        Ok(())
    }

    fn drop_stage(&self, epoch: u64) -> Result<()> {
        self.drain_stage(epoch, epoch, false, false).map(drop)
    }
}

/// Tables level 0 collects before they are merged into level 1 (fjall's
/// default is 4). State spilled by a key explosion is written in random key
/// order, so every level-0 table overlaps all of level 1 and each merge
/// rewrites it: 16 makes those merges a quarter as frequent, for up to 16
/// bloom-filter probes per point read of a missing key.
///
/// It must stay below fjall's own limits on level-0 runs: writers are
/// slowed from 20 runs on and halted from 30 until a compaction brings the
/// count down. A threshold at or past 30 is never reached, so no compaction
/// starts and every writer waits forever.
const L0_TABLES: u8 = 16;
const _: () = assert!(L0_TABLES < FJALL_L0_STALL, "level 0 must be merged before fjall stalls writers");
/// The level-0 run count at which fjall 3.1 starts slowing writers.
const FJALL_L0_STALL: u8 = 20;

/// Keyspaces the engine reads by key; the others (`stage`, `outbox`,
/// `undo`, `ingest`, `timers`) are only ever scanned, in order, so the
/// bloom filters fjall builds for point reads would only cost the time to
/// build them on every write of a table and the space to keep them.
const READ_BY_KEY: [&str; 3] = ["state", "spill", "meta"];

/// The options keyspace `name` is created with (fjall keeps them with the
/// keyspace, so they hold for the life of a state directory). fjall by
/// default partitions filter and index blocks only from level 3 down, and
/// pins only L0 filters: a point read in an L1/L2 table then loads that
/// table's whole filter block (hundreds of KiB at a million keys) through
/// a block cache far smaller, and checksums it, for every key. Partitioned,
/// a read touches a 4 KiB filter partition and index partition, so the
/// block cache works and memory stays bounded.
fn keyspace_options(name: &str, table: u64) -> KeyspaceCreateOptions {
    use fjall::compaction::Leveled;
    use fjall::config::{FilterPolicy, PartitioningPolicy};
    let options = if READ_BY_KEY.contains(&name) {
        KeyspaceCreateOptions::default()
    } else {
        KeyspaceCreateOptions::default().filter_policy(FilterPolicy::disabled())
    };
    options
        // fjall never asks its workers to rotate a memtable: `Store::throttle`
        // does, from the writer (see there why).
        .max_memtable_size(u64::MAX)
        .compaction_strategy(std::sync::Arc::new(
            Leveled::default().with_table_target_size(table).with_l0_threshold(L0_TABLES),
        ))
        .filter_block_partitioning_policy(PartitioningPolicy::all(true))
        .index_block_partitioning_policy(PartitioningPolicy::all(true))
}

/// The `epoch u64 BE` head of a stage or undo key.
pub(super) fn key_epoch(k: &[u8], what: &str) -> Result<u64> {
    let head: [u8; 8] =
        k.get(..8).and_then(|h| h.try_into().ok()).ok_or_else(|| codec::corrupt(what, "shorter than an epoch"))?;
    Ok(u64::from_be_bytes(head))
}

/// The key after the `epoch u64 BE` head of a stage or undo key.
pub(super) fn epoch_key_tail<'a>(k: &'a [u8], what: &str) -> Result<&'a [u8]> {
    k.get(8..).ok_or_else(|| codec::corrupt(what, "shorter than an epoch"))
}

/// Outbox keys: `sink u16 BE | epoch u64 BE | chunk u32 BE`.
pub(crate) fn outbox_key(sink: u16, epoch: u64, chunk: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(14);
    k.extend_from_slice(&sink.to_be_bytes());
    k.extend_from_slice(&epoch.to_be_bytes());
    k.extend_from_slice(&chunk.to_be_bytes());
    k
}

pub(crate) fn outbox_epoch(k: &[u8]) -> Result<u64> {
    let head = k.get(2..10).ok_or_else(|| codec::corrupt("outbox key", "too short"))?;
    Ok(u64::from_be_bytes(head.try_into().unwrap_or_default()))
}

/// Checks the marker against `job` and `identity`, or creates the
/// directory's contents when it is empty (or its creation was interrupted).
fn check_marker(path: &Path, job: &str, identity: &[(String, String)], cfg: &StoreConfig) -> Result<()> {
    let refuse = |reason: String| refuse(path, reason);
    let marker = path.join(MARKER);
    let head = format!("rivulet-state format={STATE_FORMAT} job={job}");
    let names = manifest::entries(path)?;
    let empty = names.iter().all(|n| n == manifest::LOCK_FILE);
    if empty || (!marker.exists() && path.join(CREATING).exists()) {
        return create(path, &manifest::marker_text(&head, identity), cfg);
    }
    let found = match std::fs::read_to_string(&marker) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(refuse(format!(
                "the directory is not empty and has no {MARKER} marker, so it is not a Rivulet state directory"
            )))
        }
        Err(e) => return Err(refuse(format!("{MARKER} marker unreadable: {e}"))),
    };
    let found_head = found.lines().next().unwrap_or("").trim();
    if found_head == format!("rivulet-state format=1 job={job}") {
        // Format 1 recorded neither the job's identity nor its committed
        // epoch: nothing proves the directory holds this job's state or
        // that it is intact, so it is not adopted.
        return Err(refuse(
            "it was written by an earlier Rivulet (state format 1) that recorded neither the job's inputs and \
             settings nor its committed epoch, so resuming it cannot be proven safe; finish it with that version \
             or start this job in a new state directory"
                .into(),
        ));
    }
    if found_head != head {
        return Err(refuse(format!("it was written as `{found_head}`, but this run is `{head}`")));
    }
    let diff = manifest::identity_diff(&found, identity);
    if !diff.is_empty() {
        return Err(refuse(format!(
            "it holds the state of a job with other inputs or settings: {}; give this job a state directory of \
             its own",
            diff.join("; ")
        )));
    }
    if !path.join(DB_DIR).is_dir() {
        return Err(refuse(format!("the {DB_DIR}/ database folder is missing")));
    }
    Ok(())
}

/// Creates a state directory so that a crash at any point leaves either
/// nothing, a directory marked as still being created, or a complete one:
/// every keyspace exists and `RIVULET.epoch` says nothing is committed.
fn create(path: &Path, marker_text: &str, cfg: &StoreConfig) -> Result<()> {
    let io = |p: &Path, e| Error::io(p, e);
    let creating = path.join(CREATING);
    std::fs::write(&creating, marker_text).map_err(|e| refuse(path, format!("it cannot be written: {e}")))?;
    let db_path = path.join(DB_DIR);
    if db_path.exists() {
        // Left by an interrupted creation: it never held committed state.
        std::fs::remove_dir_all(&db_path).map_err(|e| io(&db_path, e))?;
    }
    {
        let store_err = |e| Error::Store { path: db_path.clone(), source: e };
        let db = Database::builder(&db_path).cache_size(cfg.block_cache).open().map_err(store_err)?;
        for name in KEYSPACES {
            db.keyspace(name, || keyspace_options(name, cfg.table)).map_err(store_err)?;
        }
        db.persist(PersistMode::SyncAll).map_err(store_err)?;
    }
    manifest::write_committed(path, Committed::default(), false)?;
    let marker = path.join(MARKER);
    let tmp = path.join(format!("{MARKER}.tmp"));
    std::fs::write(&tmp, marker_text).map_err(|e| io(&tmp, e))?;
    std::fs::File::open(&tmp).and_then(|f| f.sync_all()).map_err(|e| io(&tmp, e))?;
    std::fs::rename(&tmp, &marker).map_err(|e| io(&marker, e))?;
    std::fs::remove_file(&creating).map_err(|e| io(&creating, e))?;
    std::fs::File::open(path).and_then(|d| d.sync_all()).map_err(|e| io(path, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stages `n` puts of `value` for `epoch` (keys `k{i:06}`) and the
    /// deletion of `gone`, and completes the epoch.
    fn stage_epoch(s: &Store, epoch: u64, n: usize, value: &[u8], gone: &[u8]) {
        let mut b = s.batch();
        for i in 0..n {
            b.insert(&s.stage, codec::stage_key(epoch, format!("k{i:06}").as_bytes()), codec::put_entry(value));
        }
        b.insert(&s.stage, codec::stage_key(epoch, gone), codec::TOMBSTONE.to_vec());
        s.commit_durable(b).unwrap();
        s.mark_complete(epoch, false).unwrap();
    }

    // Guards the sorted-run application of a large delta: puts and a
    // deletion land in `state`, the staged copy goes, and a copy a crash
    // left behind after the run was recorded applied is dropped at the next
    // open, never applied over a later epoch.
    #[test]
    fn a_large_delta_is_applied_as_a_run_and_never_twice() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = StoreConfig { retain_checkpoints: 1, ..StoreConfig::default() };
        let n = RUN_MIN + 10;
        {
            let (s, _) = Store::open(dir.path(), "j", &cfg).unwrap();
            let mut b = s.batch();
            b.insert(&s.state, b"gone".to_vec(), b"old".to_vec());
            s.commit_durable(b).unwrap();
            stage_epoch(&s, 1, n, b"v1", b"gone");
            let applied = s.apply_epoch(1).unwrap();
            assert_eq!(applied.len(), 1);
            assert_eq!(s.get_meta::<u64>(META_APPLIED).unwrap(), Some(1), "applied as a run");
            assert!(s.stage.is_empty().unwrap());
            assert_eq!(s.state.get(b"gone").unwrap(), None);
            stage_epoch(&s, 2, n, b"v2", b"k000003");
            s.apply_epoch(2).unwrap();
            // What a crash in epoch 2's removal would leave, and an epoch-1
            // entry a compaction kept from being dropped with its table.
            let mut b = s.batch();
            b.insert(&s.stage, codec::stage_key(2, b"k000001"), codec::put_entry(b"v2"));
            b.insert(&s.stage, codec::stage_key(1, b"k000002"), codec::put_entry(b"v1"));
            s.commit_durable(b).unwrap();
        }
        let (s, rec) = Store::open(dir.path(), "j", &cfg).unwrap();
        assert_eq!(rec.complete, Some(2));
        assert!(s.stage.is_empty().unwrap());
        assert_eq!(s.state.get(b"k000002").unwrap().as_deref(), Some(&b"v2"[..]));
        assert_eq!(s.state.get(b"k000003").unwrap(), None);
        assert_eq!(s.state.get(format!("k{:06}", n - 1)).unwrap().as_deref(), Some(&b"v2"[..]));
        assert_eq!(s.state.len().unwrap(), n - 1);
    }

    #[test]
    fn refuses_foreign_and_mismatched_dirs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
        let e = Store::open(dir.path(), "job-a", &StoreConfig::default()).unwrap_err();
        assert!(e.to_string().contains("not a Rivulet state directory"), "{e}");
        assert!(dir.path().join("notes.txt").exists());

        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        drop(Store::open(&p, "job-a", &StoreConfig::default()).unwrap());
        let e = Store::open(&p, "job-b", &StoreConfig::default()).unwrap_err();
        assert!(e.to_string().contains("job=job-a"), "{e}");

        // Regression: a crash while the directory was being created must
        // not make it unusable.
        let p = dir.path().join("half");
        std::fs::create_dir_all(p.join(DB_DIR)).unwrap();
        std::fs::write(p.join(DB_DIR).join("junk"), b"x").unwrap();
        std::fs::write(p.join(CREATING), b"").unwrap();
        let (_s, rec) = Store::open(&p, "job-a", &StoreConfig::default()).unwrap();
        assert_eq!(rec.complete, None);
    }

    #[test]
    fn complete_epochs_apply_and_incomplete_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (s, rec) = Store::open(dir.path(), "j", &StoreConfig::default()).unwrap();
            assert_eq!(rec, Recovered::default());
            let mut b = s.batch();
            b.insert(&s.stage, codec::stage_key(1, b"k1"), codec::put_entry(b"v1"));
            b.insert(&s.stage, codec::stage_key(2, b"k1"), codec::put_entry(b"v2"));
            b.insert(&s.stage, codec::stage_key(2, b"k2"), codec::put_entry(b"x"));
            b.insert(&s.stage, codec::stage_key(3, b"k1"), codec::TOMBSTONE.to_vec());
            s.commit_durable(b).unwrap();
            s.mark_complete(2, false).unwrap();
        }
        let (s, rec) = Store::open(dir.path(), "j", &StoreConfig::default()).unwrap();
        assert_eq!(rec.complete, Some(2));
        assert_eq!(s.state.get(b"k1").unwrap().as_deref(), Some(&b"v2"[..]));
        assert_eq!(s.state.get(b"k2").unwrap().as_deref(), Some(&b"x"[..]));
        assert!(s.stage.is_empty().unwrap());
    }

    /// Regression: fjall's workers deadlock on their own queue when they are
    /// asked to rotate full memtables (see `Store::throttle`). The writer
    /// seals them instead: no memtable stays past its size once a commit
    /// returns.
    #[test]
    fn no_memtable_stays_past_its_size_after_a_commit() {
        use fjall::AbstractTree;
        let dir = tempfile::tempdir().unwrap();
        let cfg = StoreConfig { memtable: 64 << 10, ..StoreConfig::default() };
        let (s, _) = Store::open(dir.path(), "j", &cfg).unwrap();
        let mut rotations = 0;
        let mut last = s.spill.tree.active_memtable().id();
        for i in 0u32..4_000 {
            let mut b = s.batch();
            b.insert(&s.spill, i.to_be_bytes(), vec![7u8; 100]);
            b.insert(&s.timers, i.to_be_bytes(), vec![1u8; 10]);
            s.commit(b).unwrap();
            for ks in s.keyspaces() {
                assert!(ks.tree.active_memtable().size() <= cfg.memtable, "commit {i}");
            }
            let id = s.spill.tree.active_memtable().id();
            rotations += usize::from(id != last);
            last = id;
        }
        assert!(rotations >= 4, "the test must fill memtables: {rotations} rotations");
    }
}
