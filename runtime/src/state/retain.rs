//! Retained checkpoints: the last few complete epochs stay restorable.
//!
//! While the job runs, a complete epoch's delta stays in `stage` until it
//! is no later than the oldest retained checkpoint, and is then applied to
//! `state` (see [`Store::apply_epoch`]): state changed since the start
//! lives in memory and `spill`, so nothing reads the deferred deltas, and
//! keeping them costs no write. Recovery applies every complete delta, so
//! a job starts from its latest state; there, applying a delta later than
//! the oldest retained epoch records, per key, what it overwrote: the
//! `undo` keyspace maps `epoch | key` to the previous entry (a value or a
//! tombstone). A list in `meta` (`ckpt/<epoch>`) holds each retained
//! epoch's completion time and, once its sinks committed, their commit
//! records. Restoring epoch `t` (run on a store just opened) drops deltas
//! staged after `t`, applies the undo records of every later epoch, newest
//! first, then puts back the commit records of `t`, so the next start
//! replays sources from their positions at `t` and cuts outputs back to
//! their length at `t`.
//!
//! The undo records of the oldest retained epoch (and older) restore
//! nothing retained, so `retain = n` keeps those of `n - 1` epochs; with
//! `retain = 1` none are written and nothing is read for them.

use super::codec;
use super::manifest::{self, refuse, Committed};
use super::store::{
    epoch_key_tail, key_epoch, outbox_epoch, Recovered, Store, DB_DIR, MARKER, META_COMPLETE, META_FINISHED,
};
use crate::error::{Error, Result};
use fjall::{Database, Keyspace};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::Path;

const CKPT_PREFIX: &[u8] = b"ckpt/";
/// Every undo record of an epoch below it has been dropped.
const META_UNDO_FLOOR: &[u8] = b"undo-floor";
/// A rollback was started to this epoch and has not finished.
const META_ROLLBACK: &[u8] = b"rollback";
/// Sink commit records (see `sink::SinkCommitter`).
const SINK_PREFIX: &[u8] = b"sink/";

/// A list entry in `meta`.
#[derive(Serialize, Deserialize)]
struct Entry {
    completed_unix_ms: u64,
    /// Every sink's commit record (`meta` key, raw value) once the sinks
    /// committed the epoch; `None` until then.
    sinks: Option<Vec<(Vec<u8>, Vec<u8>)>>,
}

/// A complete checkpoint that can still be restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetainedCheckpoint {
    /// Its epoch.
    pub epoch: u64,
    /// When it completed, in ms since the Unix epoch (wall clock).
    pub completed_unix_ms: u64,
}

/// What a state directory holds, as read by [`Store::list_checkpoints`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckpointList {
    /// The last complete epoch.
    pub complete: Option<u64>,
    /// The job ran to its end.
    pub finished: bool,
    /// Restorable checkpoints, oldest first.
    pub retained: Vec<RetainedCheckpoint>,
    /// A rollback to this epoch was interrupted; the next start finishes it.
    pub rollback: Option<u64>,
}

impl std::fmt::Display for CheckpointList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.retained.is_empty() {
            writeln!(f, "no retained checkpoints")?;
        }
        for c in &self.retained {
            let mut notes = Vec::new();
            if Some(c.epoch) == self.complete {
                notes.push("last complete");
                if self.finished {
                    notes.push("job finished");
                }
            }
            let notes = if notes.is_empty() { String::new() } else { format!("  ({})", notes.join(", ")) };
            writeln!(f, "epoch {:>6}  completed {}{notes}", c.epoch, crate::time::format_utc_ms(c.completed_unix_ms))?;
        }
        if let Some(t) = self.rollback {
            writeln!(f, "an interrupted restore of epoch {t} is finished at the next start")?;
        }
        Ok(())
    }
}

fn ckpt_key(epoch: u64) -> Vec<u8> {
    let mut k = CKPT_PREFIX.to_vec();
    k.extend_from_slice(&epoch.to_be_bytes());
    k
}

fn now_unix_ms() -> u64 {
    u64::try_from(crate::time::now_ms()).unwrap_or(0)
}

/// The list entries from epoch `from` on, oldest first.
fn entries(meta: &Keyspace, from: u64, err: &dyn Fn(fjall::Error) -> Error) -> Result<Vec<(u64, Entry)>> {
    let mut out = Vec::new();
    for item in meta.range(ckpt_key(from)..) {
        let (k, v) = item.into_inner().map_err(err)?;
        let Some(tail) = k.strip_prefix(CKPT_PREFIX) else { break };
        let head: [u8; 8] = tail.try_into().map_err(|_| codec::corrupt("checkpoint list key", "not 8 bytes"))?;
        out.push((u64::from_be_bytes(head), codec::decode_value(&v, "checkpoint list entry")?));
    }
    Ok(out)
}

fn meta_u64(meta: &Keyspace, key: &[u8], err: &dyn Fn(fjall::Error) -> Error) -> Result<Option<u64>> {
    let Some(v) = meta.get(key).map_err(err)? else { return Ok(None) };
    codec::decode_value(&v, &String::from_utf8_lossy(key)).map(Some)
}

/// The restorable ones among `entries`: the last complete epoch, and
/// earlier ones whose sinks' records were taken.
fn restorable(entries: &[(u64, Entry)], complete: Option<u64>) -> Vec<RetainedCheckpoint> {
    entries
        .iter()
        .filter(|(e, en)| complete.is_some_and(|c| *e == c || (*e < c && en.sinks.is_some())))
        .map(|(e, en)| RetainedCheckpoint { epoch: *e, completed_unix_ms: en.completed_unix_ms })
        .collect()
}

impl Store {
    /// Adds `epoch` to the list, in the batch that marks it complete.
    pub(crate) fn list_checkpoint(&self, batch: &mut fjall::OwnedWriteBatch, epoch: u64) -> Result<()> {
        let entry = Entry { completed_unix_ms: now_unix_ms(), sinks: None };
        Self::put_meta(batch, &self.meta, &ckpt_key(epoch), &entry)
    }

    /// Records the sinks' commit records as those of `epoch`: called once
    /// every sink committed it (after a crash, once they recovered).
    ///
    /// # Errors
    /// The store failed.
    pub(crate) fn seal_checkpoint(&self, epoch: u64) -> Result<()> {
        let key = ckpt_key(epoch);
        let Some(mut entry) = self.get_meta::<Entry>(&key)? else { return Ok(()) };
        if entry.sinks.is_some() {
            return Ok(());
        }
        let mut sinks = Vec::new();
        for item in self.meta.prefix(SINK_PREFIX) {
            let (k, v) = item.into_inner().map_err(|e| self.err(e))?;
            sinks.push((k.to_vec(), v.to_vec()));
        }
        entry.sinks = Some(sinks);
        let mut b = self.batch();
        Self::put_meta(&mut b, &self.meta, &key, &entry)?;
        self.commit(b)
    }

    fn undo_floor(&self) -> Result<u64> {
        Ok(meta_u64(&self.meta, META_UNDO_FLOOR, &|e| self.err(e))?.unwrap_or(0))
    }

    /// List entries below the floor's epoch are gone, so reading from there
    /// skips the deletion markers of the ones already dropped.
    fn entries(&self) -> Result<Vec<(u64, Entry)>> {
        entries(&self.meta, self.undo_floor()?.saturating_sub(1), &|e| self.err(e))
    }

    /// The checkpoints that [`Store::rollback_to`] accepts, oldest first.
    ///
    /// # Errors
    /// The store failed or the list is damaged.
    pub fn checkpoints(&self) -> Result<Vec<RetainedCheckpoint>> {
        let complete = self.get_meta(META_COMPLETE)?;
        Ok(restorable(&self.entries()?, complete))
    }

    /// Keeps the newest `retain` list entries: drops older ones, then the
    /// undo records no retained checkpoint needs (those of the oldest kept
    /// epoch and below), in chunks. A crash in between leaves undo records
    /// below the floor, dropped by the next trim. Returns the oldest epoch
    /// kept (`None`: the list is empty).
    pub(crate) fn trim_retained(&self) -> Result<Option<u64>> {
        let entries = self.entries()?;
        let oldest_kept = entries.get(entries.len().saturating_sub(self.retain)).map(|(e, _)| *e);
        let Some(keep_from) = entries.len().checked_sub(self.retain) else { return Ok(oldest_kept) };
        let Some(&(oldest, _)) = entries.get(keep_from) else { return Ok(oldest_kept) };
        if keep_from > 0 {
            let mut b = self.batch();
            for (e, _) in &entries[..keep_from] {
                b.remove(&self.meta, ckpt_key(*e));
            }
            self.commit(b)?;
        }
        let floor = self.undo_floor()?;
        let Some(new_floor) = oldest.checked_add(1) else { return Ok(oldest_kept) };
        if floor >= new_floor {
            return Ok(oldest_kept);
        }
        self.chunks(&self.undo, floor, Some(new_floor), |chunk| {
            let mut b = self.batch();
            for (k, _) in chunk {
                b.remove(&self.undo, k);
            }
            self.commit(b)
        })?;
        let mut b = self.batch();
        Self::put_meta(&mut b, &self.meta, META_UNDO_FLOOR, &new_floor)?;
        self.commit(b)?;
        Ok(oldest_kept)
    }

    /// The oldest listed epoch (the list may hold more than `retain` until
    /// the next [`Store::trim_retained`]).
    pub(crate) fn oldest_listed(&self) -> Result<Option<u64>> {
        Ok(self.entries()?.first().map(|(e, _)| *e))
    }

    /// Restores the retained checkpoint of epoch `epoch`: the state, the
    /// source positions in it and the sinks' commit records go back to
    /// what they were when it completed; later checkpoints are dropped.
    /// Sinks cut their outputs back when the job starts. Crash-safe: an
    /// interrupted rollback is finished by the next [`Store::open`].
    ///
    /// # Errors
    /// [`Error::StateRefused`] listing the retained epochs when `epoch` is
    /// not one of them (nothing is changed); store failures.
    pub fn rollback_to(&self, epoch: u64) -> Result<Recovered> {
        if self.begin_rollback(epoch)? {
            self.finish_rollback(epoch)?;
        }
        Ok(Recovered { complete: Some(epoch), finished: false })
    }

    /// Checks `epoch` and durably records the intent to roll back to it.
    /// Returns false when there is nothing to undo (`epoch` is the last
    /// complete one; only the finished mark is cleared).
    pub(crate) fn begin_rollback(&self, epoch: u64) -> Result<bool> {
        let complete: Option<u64> = self.get_meta(META_COMPLETE)?;
        let retained = restorable(&self.entries()?, complete);
        if !retained.iter().any(|c| c.epoch == epoch) {
            let list: Vec<String> = retained.iter().map(|c| c.epoch.to_string()).collect();
            let list = if list.is_empty() { "none".to_string() } else { list.join(", ") };
            return Err(Error::StateRefused {
                path: self.path().to_path_buf(),
                reason: format!("checkpoint {epoch} is not retained (retained checkpoints: {list})"),
            });
        }
        let mut b = self.batch();
        b.remove(&self.meta, META_FINISHED);
        let undo = complete != Some(epoch);
        if undo {
            // Before fjall's record can go back to `epoch`: the check at
            // open must accept it from then on.
            manifest::write_committed(self.path(), Committed { complete, restoring: Some(epoch) }, true)?;
            Self::put_meta(&mut b, &self.meta, META_ROLLBACK, &epoch)?;
        }
        self.commit_durable(b)?;
        Ok(undo)
    }

    pub(crate) fn rollback_intent(&self) -> Result<Option<u64>> {
        meta_u64(&self.meta, META_ROLLBACK, &|e| self.err(e))
    }

    /// Drops the deltas staged after `epoch`, undoes every epoch after it
    /// already applied, newest first, makes `epoch` the last complete one
    /// and clears the intent, then applies what is still staged (see
    /// [`Store::settle_stage`]). Idempotent.
    pub(crate) fn finish_rollback(&self, epoch: u64) -> Result<()> {
        let Some(after) = epoch.checked_add(1) else { return Ok(()) };
        self.drain_stage(after, u64::MAX, false, false)?;
        while let Some(item) = self.undo.range(after.to_be_bytes()..).next_back() {
            let k = item.key().map_err(|e| self.err(e))?;
            self.undo_epoch(key_epoch(&k, "undo key")?)?;
        }
        // Results of later epochs not published yet are dropped with them.
        let mut b = self.batch();
        for item in self.outbox.iter() {
            let k = item.key().map_err(|e| self.err(e))?;
            if outbox_epoch(&k)? > epoch {
                b.remove(&self.outbox, k);
            }
        }
        self.commit(b)?;
        let entries = self.entries()?;
        let Some(sinks) = entries.iter().find(|(e, _)| *e == epoch).and_then(|(_, en)| en.sinks.as_ref()) else {
            return Err(codec::corrupt("checkpoint list", &format!("epoch {epoch} has no sink commit records")));
        };
        let mut b = self.batch();
        Self::put_meta(&mut b, &self.meta, META_COMPLETE, &epoch)?;
        b.remove(&self.meta, META_FINISHED);
        let keep: HashSet<&[u8]> = sinks.iter().map(|(k, _)| k.as_slice()).collect();
        for item in self.meta.prefix(SINK_PREFIX) {
            let k = item.key().map_err(|e| self.err(e))?;
            if !keep.contains(&*k) {
                b.remove(&self.meta, k);
            }
        }
        for (k, v) in sinks {
            b.insert(&self.meta, k.clone(), v.clone());
        }
        for (e, _) in entries.iter().filter(|(e, _)| *e > epoch) {
            b.remove(&self.meta, ckpt_key(*e));
        }
        b.remove(&self.meta, META_ROLLBACK);
        self.commit_durable(b)?;
        manifest::write_committed(self.path(), Committed { complete: Some(epoch), restoring: None }, true)?;
        // Deltas of `epoch` and earlier still staged (a store that ran since
        // it was opened defers them): the job goes on from `state`.
        self.settle_stage(false)
    }

    /// Puts back what epoch `epoch` overwrote, each chunk in one batch with
    /// the removal of its undo records.
    pub(crate) fn undo_epoch(&self, epoch: u64) -> Result<()> {
        self.chunks(&self.undo, epoch, epoch.checked_add(1), |chunk| {
            let mut b = self.batch();
            for (k, v) in chunk {
                self.put_state(&mut b, epoch_key_tail(&k, "undo key")?.to_vec(), &v)?;
                b.remove(&self.undo, k);
            }
            self.commit(b)
        })
    }

    /// Reads what the state directory `path` holds without changing it,
    /// not even its metadata: fjall writes when it opens a database
    /// (journal recovery), so it opens a copy of `db/` made in the system's
    /// temporary directory (`TMPDIR`), removed afterwards. The copy is
    /// checked like a start checks the directory itself: a damaged one is
    /// refused, never listed as empty.
    ///
    /// # Errors
    /// [`Error::StateRefused`] when `path` is not a Rivulet state directory,
    /// a running job holds it, or it is damaged; store failures.
    pub fn list_checkpoints(path: &Path) -> Result<CheckpointList> {
        let refuse = |reason: String| refuse(path, reason);
        if !path.is_dir() {
            return Err(refuse("it is not a directory".into()));
        }
        let marker = std::fs::read_to_string(path.join(MARKER)).map_err(|e| {
            refuse(format!("its {MARKER} marker cannot be read ({e}), so it is not a Rivulet state directory"))
        })?;
        let db_path = path.join(DB_DIR);
        if !db_path.is_dir() {
            return Err(refuse(format!("the {DB_DIR}/ database folder is missing")));
        }
        manifest::check_unlocked(path)?;
        // Format 1 recorded no committed epoch: nothing to check against.
        let format1 = marker.starts_with("rivulet-state format=1 ");
        let committed = if format1 { Committed::default() } else { manifest::read_committed(path)? };
        let copy = TempCopy::of(&db_path).map_err(|e| {
            refuse(format!("its database could not be copied to {} to be read: {e}", std::env::temp_dir().display()))
        })?;
        let db = Database::builder(&copy.0).worker_threads(1).open().map_err(|e| match e {
            fjall::Error::Locked => refuse("a running job holds it; list its checkpoints once it stopped".into()),
            e => refuse(format!("the state database cannot be opened: {e}")),
        })?;
        if format1 && !db.keyspace_exists("meta") {
            return Ok(CheckpointList::default());
        }
        if !format1 {
            manifest::verify_keyspaces(path, &db)?;
        }
        let meta = db
            .keyspace("meta", fjall::KeyspaceCreateOptions::default)
            .map_err(|e| refuse(format!("keyspace `meta` cannot be opened: {e}")))?;
        let err = |e| Error::Store { path: path.to_path_buf(), source: e };
        let complete = meta_u64(&meta, META_COMPLETE, &err)?;
        manifest::verify_committed(path, committed, complete)?;
        let finished = match meta.get(META_FINISHED).map_err(err)? {
            Some(v) => codec::decode_value(&v, "finished")?,
            None => false,
        };
        let floor = meta_u64(&meta, META_UNDO_FLOOR, &err)?.unwrap_or(0);
        let retained = restorable(&entries(&meta, floor.saturating_sub(1), &err)?, complete);
        Ok(CheckpointList { complete, finished, retained, rollback: meta_u64(&meta, META_ROLLBACK, &err)? })
    }
}

/// A copy of a database directory in the temporary directory, removed when
/// dropped.
struct TempCopy(std::path::PathBuf);

impl TempCopy {
    fn of(db: &Path) -> std::io::Result<TempCopy> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!("rivulet-list-{}-{nanos}", std::process::id()));
        let copy = TempCopy(dir);
        manifest::copy_dir(db, &copy.0)?;
        Ok(copy)
    }
}

impl Drop for TempCopy {
    fn drop(&mut self) {
        // The database was dropped before this (declared later): nothing
        // holds the copy any more.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::StoreConfig;

    type Dump = Vec<(Vec<u8>, Vec<u8>)>;

    fn open(dir: &Path, retain: usize) -> (Store, Recovered) {
        let cfg = StoreConfig { retain_checkpoints: retain, ..StoreConfig::default() };
        Store::open(dir, "j", &cfg).unwrap()
    }

    fn dump(ks: &Keyspace) -> Dump {
        ks.iter().map(|i| i.into_inner().map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap()).collect()
    }

    /// The state of the last complete epoch: `state` with the complete
    /// deltas still staged applied over it, oldest first.
    fn view(s: &Store) -> Dump {
        let complete: Option<u64> = s.get_meta(META_COMPLETE).unwrap();
        let mut state: std::collections::BTreeMap<Vec<u8>, Vec<u8>> = dump(&s.state).into_iter().collect();
        for (k, v) in dump(&s.stage) {
            if complete.is_some_and(|c| key_epoch(&k, "stage key").unwrap() <= c) {
                let key = epoch_key_tail(&k, "stage key").unwrap().to_vec();
                match codec::read_entry(&v).unwrap() {
                    Some(v) => state.insert(key, v.to_vec()),
                    None => state.remove(&key),
                };
            }
        }
        state.into_iter().collect()
    }

    /// The epochs `ks` (stage or undo) holds entries of.
    fn epochs_in(ks: &Keyspace) -> Vec<u64> {
        let mut e: Vec<u64> = dump(ks).iter().map(|(k, _)| key_epoch(k, "key").unwrap()).collect();
        e.dedup();
        e
    }

    /// Runs epoch `e` as the coordinator does: stage, complete, sinks
    /// commit (a fake sink record `10 * e`), seal, apply. A value written
    /// `+v` is staged as the put of a new key (`codec::put_new_entry`).
    fn epoch(s: &Store, e: u64, delta: &[(&str, Option<&str>)]) {
        let mut b = s.batch();
        for (k, v) in delta {
            let entry = match v {
                None => codec::TOMBSTONE.to_vec(),
                Some(v) => match v.strip_prefix('+') {
                    Some(new) => codec::put_new_entry(new.as_bytes()),
                    None => codec::put_entry(v.as_bytes()),
                },
            };
            b.insert(&s.stage, codec::stage_key(e, k.as_bytes()), entry);
        }
        s.commit(b).unwrap();
        s.mark_complete(e, false).unwrap();
        let mut b = s.batch();
        Store::put_meta(&mut b, &s.meta, b"sink/1", &(10 * e)).unwrap();
        s.commit_durable(b).unwrap();
        s.seal_checkpoint(e).unwrap();
        s.apply_epoch(e).unwrap();
    }

    fn epochs(s: &Store) -> Vec<u64> {
        s.checkpoints().unwrap().iter().map(|c| c.epoch).collect()
    }

    fn sink_record(s: &Store) -> Option<u64> {
        s.get_meta(b"sink/1").unwrap()
    }

    /// Epochs 1-3 over keys that are inserted, overwritten, deleted and
    /// re-inserted; returns the state after each.
    fn three_epochs(s: &Store) -> Vec<Dump> {
        let mut snaps = vec![view(s)];
        epoch(s, 1, &[("k1", Some("a")), ("k2", Some("b"))]);
        snaps.push(view(s));
        epoch(s, 2, &[("k1", Some("c")), ("k2", None), ("k3", Some("d"))]);
        snaps.push(view(s));
        epoch(s, 3, &[("k1", Some("f")), ("k2", Some("e")), ("k3", None), ("k4", None)]);
        snaps.push(view(s));
        snaps
    }

    // Guards the deferred deltas: while the job runs, the deltas of
    // retained epochs after the oldest stay staged (no undo record, no
    // read), and a restore drops them; reopened, the store applies them
    // with undo records and a restore undoes them.
    #[test]
    fn rollback_undoes_inserts_overwrites_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = open(dir.path(), 3);
        let snaps = three_epochs(&s);
        assert_eq!(epochs(&s), [1, 2, 3]);
        assert_eq!(dump(&s.state), snaps[1], "the oldest retained epoch is applied");
        assert_eq!(epochs_in(&s.stage), [2, 3], "later ones stay staged");
        assert!(dump(&s.undo).is_empty());

        assert_eq!(s.rollback_to(2).unwrap(), Recovered { complete: Some(2), finished: false });
        assert_eq!(dump(&s.state), snaps[2], "a restore leaves `state` at its epoch");
        assert!(s.stage.is_empty().unwrap());
        assert_eq!(sink_record(&s), Some(20));
        assert_eq!(epochs(&s), [1, 2]);
        s.rollback_to(1).unwrap();
        assert_eq!(dump(&s.state), snaps[1]);
        assert_eq!(sink_record(&s), Some(10));
        assert!(dump(&s.undo).is_empty());
        drop(s);

        let (s, rec) = open(dir.path(), 3);
        assert_eq!(rec.complete, Some(1));
        assert_eq!(dump(&s.state), snaps[1]);
        // Epochs after a rollback reuse the numbers and are retained again.
        epoch(&s, 2, &[("k9", Some("z"))]);
        assert_eq!(epochs(&s), [1, 2]);
        s.rollback_to(1).unwrap();
        assert_eq!(dump(&s.state), snaps[1]);
        drop(s);

        // Reopened after three epochs: every delta applied, the later two
        // with undo records, which restores undo.
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = open(dir.path(), 3);
        let snaps = three_epochs(&s);
        drop(s);
        let (s, rec) = open(dir.path(), 3);
        assert_eq!(rec.complete, Some(3));
        assert_eq!(dump(&s.state), snaps[3]);
        assert!(s.stage.is_empty().unwrap());
        assert_eq!(epochs_in(&s.undo), [2, 3], "the oldest retained epoch's undo restores nothing retained");
        s.rollback_to(2).unwrap();
        assert_eq!((dump(&s.state), sink_record(&s)), (snaps[2].clone(), Some(20)));
        // The store ran on: epoch 3 again, deferred, over an undone one.
        epoch(&s, 3, &[("k5", Some("g"))]);
        assert_eq!(epochs_in(&s.stage), [3]);
        s.rollback_to(1).unwrap();
        assert_eq!((dump(&s.state), sink_record(&s)), (snaps[1].clone(), Some(10)));
        assert!(s.stage.is_empty().unwrap());
    }

    // Guards the put of a new key: applied like any put, its undo record
    // is a deletion made without reading the key's state (the table stages
    // a put as new only when no checkpoint holds the key), and a rollback
    // over it removes the key.
    #[test]
    fn a_new_key_is_undone_by_a_deletion_made_without_a_read() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = open(dir.path(), 3);
        epoch(&s, 1, &[("k1", Some("+a"))]);
        let one = view(&s);
        assert_eq!(one, vec![(b"k1".to_vec(), b"a".to_vec())]);
        epoch(&s, 2, &[("k1", Some("b")), ("k2", Some("+c"))]);
        drop(s);
        // Undo records are written where deltas are applied with them: at
        // recovery.
        let (s, _) = open(dir.path(), 3);
        let undo: Dump = dump(&s.undo).into_iter().filter(|(k, _)| k[..8] == 2u64.to_be_bytes()).collect();
        assert_eq!(
            undo,
            vec![
                (codec::stage_key(2, b"k1"), codec::put_entry(b"a")),
                (codec::stage_key(2, b"k2"), codec::TOMBSTONE.to_vec())
            ]
        );
        // Trusted, not read: a new put over a key state holds is undone by
        // a deletion all the same.
        epoch(&s, 3, &[("k1", Some("+d"))]);
        drop(s);
        let (s, _) = open(dir.path(), 3);
        let undo3: Dump = dump(&s.undo).into_iter().filter(|(k, _)| k[..8] == 3u64.to_be_bytes()).collect();
        assert_eq!(undo3, vec![(codec::stage_key(3, b"k1"), codec::TOMBSTONE.to_vec())]);
        s.rollback_to(1).unwrap();
        assert_eq!(dump(&s.state), one);
    }

    #[test]
    fn the_window_keeps_the_newest_and_drops_older_undo_records() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = open(dir.path(), 2);
        for e in 1..=5 {
            epoch(&s, e, &[("k", Some(&format!("v{e}"))), (&format!("only{e}"), Some("x"))]);
        }
        assert_eq!(epochs(&s), [4, 5]);
        assert_eq!(epochs_in(&s.stage), [5]);
        let running = view(&s);
        drop(s);
        let (s, _) = open(dir.path(), 2);
        assert_eq!(dump(&s.state), running);
        assert_eq!(epochs_in(&s.undo), [5]);
        // The next epoch applies nothing (4 is still the oldest retained)
        // and the one after drops epoch 5's undo records with epoch 4.
        epoch(&s, 6, &[("k", Some("v6"))]);
        assert_eq!((epochs_in(&s.stage), epochs_in(&s.undo)), (vec![6], vec![]));
        drop(s);

        // Retain 1: no undo records at all, and the list shrinks with the
        // first epoch completed.
        let (s, _) = open(dir.path(), 1);
        assert_eq!(epochs(&s), [5, 6]);
        epoch(&s, 7, &[("k", Some("v7"))]);
        assert_eq!(epochs(&s), [7]);
        assert!(dump(&s.undo).is_empty());
        assert!(s.stage.is_empty().unwrap());
        // A running job's store is locked: the listing waits for it to end.
        let e = Store::list_checkpoints(dir.path()).unwrap_err();
        assert!(e.to_string().contains("a running job holds it"), "{e}");
        drop(s);
        let list = Store::list_checkpoints(dir.path()).unwrap();
        assert_eq!(list.retained.iter().map(|c| c.epoch).collect::<Vec<_>>(), [7]);
    }

    #[test]
    fn an_unknown_epoch_is_refused_and_nothing_changes() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = open(dir.path(), 2);
        for e in 1..=4 {
            epoch(&s, e, &[("k", Some(&format!("v{e}")))]);
        }
        s.mark_complete(4, true).unwrap();
        let before = (dump(&s.state), dump(&s.meta), dump(&s.undo));
        for bad in [0, 2, 5, 99] {
            let e = s.rollback_to(bad).unwrap_err();
            assert!(matches!(e, Error::StateRefused { .. }), "{e}");
            assert!(
                e.to_string().contains(&format!("checkpoint {bad} is not retained (retained checkpoints: 3, 4)")),
                "{e}"
            );
        }
        assert_eq!((dump(&s.state), dump(&s.meta), dump(&s.undo)), before);
        drop(s);
        let list = Store::list_checkpoints(dir.path()).unwrap();
        assert_eq!(list.retained.iter().map(|c| c.epoch).collect::<Vec<_>>(), [3, 4]);
        assert_eq!((list.complete, list.finished, list.rollback), (Some(4), true, None));
        assert!(list.to_string().contains("(last complete, job finished)"), "{list}");
    }

    #[test]
    fn an_interrupted_rollback_is_finished_by_recovery() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = open(dir.path(), 3);
        let snaps = three_epochs(&s);
        assert!(s.begin_rollback(1).unwrap());
        // Killed after undoing epoch 3 only.
        s.undo_epoch(3).unwrap();
        drop(s);
        assert_eq!(Store::list_checkpoints(dir.path()).unwrap().rollback, Some(1));

        // Even with a smaller window, recovery first finishes the rollback.
        let (s, rec) = open(dir.path(), 1);
        assert_eq!(rec, Recovered { complete: Some(1), finished: false });
        assert_eq!(dump(&s.state), snaps[1]);
        assert_eq!(sink_record(&s), Some(10));
        assert_eq!(s.rollback_intent().unwrap(), None);
        assert_eq!(epochs(&s), [1]);
    }
}
