//! A source's ingest log mirrored in the store: in a cluster, messages a
//! source received are written here before they are acknowledged to the
//! broker, so a worker whose disk is lost loses none of them. Objects are
//! `ingest/<source>/<first>-n<count>-g<generation>`: entries `first ..
//! first + count`; where generations overlap (a fenced writer's late
//! batch), the newest generation's entry of a sequence number wins.

use super::error::{Error, Result};
use super::format::{self, Kind};
use super::CheckpointStore;
use std::collections::BTreeMap;

pub(crate) const INGEST: &str = "ingest/";

fn dir(source: u16) -> String {
    format!("{INGEST}{source:05}/")
}

/// `(first, count, generation)` of an ingest object's name.
fn parse(name: &str) -> Option<(u64, u64, u64)> {
    let base = name.rsplit('/').next()?;
    let mut parts = base.split('-');
    let first = parts.next()?.parse().ok()?;
    let count = parts.next()?.strip_prefix('n')?.parse().ok()?;
    let generation = parts.next()?.strip_prefix('g')?.parse().ok()?;
    parts.next().is_none().then_some((first, count, generation))
}

impl CheckpointStore {
    /// Writes entries `first, first + 1, ...` of source `source`'s ingest
    /// log for `generation`, then checks that no newer generation was
    /// claimed: an `Ok` means the entries were in the store before any
    /// newer generation's source read it, so a source may acknowledge
    /// them. A fenced batch stays in the store under its older generation,
    /// which loses to a newer one's entry of the same sequence number.
    ///
    /// # Errors
    /// [`Error::Fenced`] if a newer generation was claimed: the entries
    /// must not be acknowledged; [`Error::Backend`].
    pub fn put_ingest(&self, generation: u64, source: u16, first: u64, entries: &[&[u8]]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let name = format!("{}{first:020}-n{:010}-g{generation:020}", dir(source), entries.len());
        self.io.put_overwrite(&name, format::encode(Kind::Ingest, &entries)?)?;
        self.check_fence(generation)
    }

    /// Source `source`'s mirrored ingest log from sequence number `from`:
    /// `(seq, entry)` in order, the newest generation's entry where
    /// writers overlapped.
    ///
    /// # Errors
    /// [`Error::Damaged`] for an object that cannot be decoded; [`Error::Backend`].
    pub fn read_ingest(&self, source: u16, from: u64) -> Result<Vec<(u64, Vec<u8>)>> {
        let mut best: BTreeMap<u64, (u64, Vec<u8>)> = BTreeMap::new();
        for name in self.io.list(&dir(source))? {
            let Some((first, count, generation)) = parse(&name) else { continue };
            if first.saturating_add(count) <= from {
                continue;
            }
            let entries: Vec<Vec<u8>> = self.read_required(&name, Kind::Ingest, "the store's listing")?;
            if entries.len() as u64 != count {
                return Err(Error::damaged(&name, format!("{} entries, its name says {count}", entries.len())));
            }
            for (i, e) in entries.into_iter().enumerate() {
                let seq = first + i as u64;
                if seq >= from && best.get(&seq).is_none_or(|(g, _)| *g < generation) {
                    best.insert(seq, (generation, e));
                }
            }
        }
        Ok(best.into_iter().map(|(seq, (_, e))| (seq, e)).collect())
    }

    /// Deletes the objects of source `source`'s mirrored log that hold
    /// nothing at or above `below`.
    ///
    /// # Errors
    /// [`Error::Backend`].
    pub fn truncate_ingest(&self, source: u16, below: u64) -> Result<()> {
        for name in self.io.list(&dir(source))? {
            if parse(&name).is_some_and(|(first, count, _)| first.saturating_add(count) <= below) {
                self.io.delete(&name)?;
            }
        }
        Ok(())
    }
}
