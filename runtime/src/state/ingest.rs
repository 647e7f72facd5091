//! The ingest log: messages a source received, made durable before they are
//! acknowledged upstream (MQTT), in arrival order. A sequence number is the
//! source's checkpointed position: recovery replays from it, and a completed
//! checkpoint lets the log drop what lies below it.
//!
//! Keys in the `ingest` keyspace: `source u16 BE | seq u64 BE`.

use super::Store;
use crate::error::Result;
use std::sync::Arc;

/// One source's slice of the node's ingest log.
#[derive(Clone)]
pub struct IngestLog {
    store: Arc<Store>,
    source: u16,
}

impl std::fmt::Debug for IngestLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestLog").field("source", &self.source).finish()
    }
}

fn key(source: u16, seq: u64) -> [u8; 10] {
    let mut k = [0u8; 10];
    k[..2].copy_from_slice(&source.to_be_bytes());
    k[2..].copy_from_slice(&seq.to_be_bytes());
    k
}

fn seq_of(k: &[u8]) -> Result<u64> {
    let tail: [u8; 8] = k
        .get(2..10)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| super::codec::corrupt("ingest key", "not 10 bytes"))?;
    Ok(u64::from_be_bytes(tail))
}

impl IngestLog {
    pub(crate) fn new(store: Arc<Store>, source: u16) -> Self {
        Self { store, source }
    }

    /// The state directory holding the log.
    pub fn path(&self) -> &std::path::Path {
        self.store.path()
    }

    /// Appends `entries` with sequence numbers `first, first + 1, ...` and
    /// syncs them to disk before returning (one sync for the whole batch).
    ///
    /// # Errors
    /// The store failed; nothing of the batch may be assumed durable.
    pub fn append<'a>(&self, first: u64, entries: impl IntoIterator<Item = &'a [u8]>) -> Result<()> {
        let mut batch = self.store.batch();
        let mut seq = first;
        for e in entries {
            batch.insert(&self.store.ingest, key(self.source, seq), e.to_vec());
            seq += 1;
        }
        if seq == first {
            return Ok(());
        }
        self.store.commit_durable(batch)
    }

    /// Reads up to `max` entries with sequence numbers `>= from`, in order.
    ///
    /// # Errors
    /// The store failed or a key is damaged.
    pub fn read(&self, from: u64, max: usize, out: &mut Vec<(u64, Vec<u8>)>) -> Result<()> {
        let range = key(self.source, from)..=key(self.source, u64::MAX);
        for item in self.store.ingest.range(range).take(max) {
            let (k, v) = item.into_inner().map_err(|e| self.store.err(e))?;
            out.push((seq_of(&k)?, v.to_vec()));
        }
        Ok(())
    }

    /// The lowest and highest sequence numbers held, if any.
    ///
    /// # Errors
    /// The store failed or a key is damaged.
    pub fn bounds(&self) -> Result<Option<(u64, u64)>> {
        let prefix = self.source.to_be_bytes();
        let mut it = self.store.ingest.prefix(prefix);
        let Some(first) = it.next() else { return Ok(None) };
        let first = seq_of(&first.key().map_err(|e| self.store.err(e))?)?;
        let last = match self.store.ingest.prefix(prefix).next_back() {
            Some(l) => seq_of(&l.key().map_err(|e| self.store.err(e))?)?,
            None => first,
        };
        Ok(Some((first, last)))
    }

    /// Drops every entry with a sequence number below `below`.
    ///
    /// # Errors
    /// The store failed.
    pub fn truncate_below(&self, below: u64) -> Result<()> {
        let range = key(self.source, 0)..key(self.source, below);
        let mut batch = self.store.batch();
        for item in self.store.ingest.range(range) {
            batch.remove(&self.store.ingest, item.key().map_err(|e| self.store.err(e))?);
            if batch.len() >= 20_000 {
                self.store.commit(std::mem::replace(&mut batch, self.store.batch()))?;
            }
        }
        self.store.commit(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::StoreConfig;

    #[test]
    fn append_read_truncate_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (s, _) = Store::open(dir.path(), "j", &StoreConfig::default()).unwrap();
            let log = IngestLog::new(Arc::new(s), 3);
            let other = IngestLog::new(log.store.clone(), 4);
            assert_eq!(log.bounds().unwrap(), None);
            log.append(0, [&b"a"[..], b"b", b"c"]).unwrap();
            other.append(0, [&b"x"[..]]).unwrap();
            log.append(3, [&b"d"[..]]).unwrap();
            let mut out = Vec::new();
            log.read(1, 2, &mut out).unwrap();
            assert_eq!(out, vec![(1, b"b".to_vec()), (2, b"c".to_vec())]);
            log.truncate_below(2).unwrap();
            assert_eq!(log.bounds().unwrap(), Some((2, 3)));
        }
        let (s, _) = Store::open(dir.path(), "j", &StoreConfig::default()).unwrap();
        let log = IngestLog::new(Arc::new(s), 3);
        assert_eq!(log.bounds().unwrap(), Some((2, 3)));
        let mut out = Vec::new();
        log.read(0, 10, &mut out).unwrap();
        assert_eq!(out.len(), 2);
    }
}
