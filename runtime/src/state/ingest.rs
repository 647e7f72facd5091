//! The ingest log: messages a source received, made durable before they are
//! acknowledged upstream (MQTT), in arrival order. A sequence number is the
//! source's checkpointed position: recovery replays from it, and a completed
//! checkpoint lets the log drop what lies below it.
//!
//! Keys in the `ingest` keyspace: `source u16 BE | seq u64 BE`.

use super::Store;
use crate::checkpoint::store::CheckpointStore;
use crate::error::Result;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// One source's slice of the node's ingest log.
#[derive(Clone)]
pub struct IngestLog {
    store: Arc<Store>,
    source: u16,
    /// In a cluster: the copy in the checkpoint store, written before an
    /// append returns (so before anything is acknowledged upstream).
    mirror: Option<Arc<Mirror>>,
    /// No entry below this sequence number is held ([`UNKNOWN`] until the
    /// first truncation looks it up): a truncation deletes the keys from
    /// here up without reading them.
    low: Arc<AtomicU64>,
}

const UNKNOWN: u64 = u64::MAX;

/// Where a worker of a cluster mirrors its sources' ingest logs.
#[derive(Debug, Clone)]
pub(crate) struct MirrorSpec {
    pub(crate) url: String,
    pub(crate) job: String,
    pub(crate) generation: u64,
}

struct Mirror {
    store: Mutex<CheckpointStore>,
    generation: u64,
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
        Self { store, source, mirror: None, low: Arc::new(AtomicU64::new(UNKNOWN)) }
    }

    /// The log of `source` mirrored in the checkpoint store of `spec`:
    /// first brings the node's copy up to the mirror (a worker that lost
    /// its disk, or took the source over from another, gets every entry
    /// some earlier generation acknowledged upstream).
    pub(crate) fn mirrored(store: Arc<Store>, source: u16, spec: &MirrorSpec) -> Result<Self> {
        let remote = CheckpointStore::open(&spec.url, &spec.job)?;
        let log = Self::new(store, source);
        let from = match log.bounds()? {
            Some((_, last)) => last + 1,
            None => 0,
        };
        let entries = remote.read_ingest(source, from)?;
        let mut run: Vec<&[u8]> = Vec::new();
        let mut run_first = 0;
        for (i, (seq, e)) in entries.iter().enumerate() {
            if run.is_empty() || run_first + run.len() as u64 != *seq {
                if !run.is_empty() {
                    log.append(run_first, run.drain(..))?;
                }
                run_first = *seq;
            }
            run.push(e);
            if i + 1 == entries.len() {
                log.append(run_first, run.drain(..))?;
            }
        }
        if !entries.is_empty() {
            tracing::info!(source, entries = entries.len(), from, "ingest log brought up to its mirror");
        }
        let mirror = Mirror { store: Mutex::new(remote), generation: spec.generation };
        Ok(Self { mirror: Some(Arc::new(mirror)), ..log })
    }

    /// The state directory holding the log.
    pub fn path(&self) -> &std::path::Path {
        self.store.path()
    }

    /// Appends `entries` with sequence numbers `first, first + 1, ...` and
    /// syncs them to disk before returning (one sync for the whole batch).
    ///
    /// A mirrored log writes the mirror first, so the node's copy never
    /// holds an entry the mirror lacks: a batch the mirror refuses (a
    /// fenced generation's) is kept nowhere and not acknowledged, and the
    /// broker redelivers it. An entry only the mirror holds (the node died
    /// between the two writes) is brought to the node by
    /// [`Self::mirrored`].
    ///
    /// # Errors
    /// The mirror refused the batch (a newer generation fenced this one:
    /// nothing was written on the node), or a store failed; nothing of the
    /// batch may be assumed durable.
    pub fn append<'a>(&self, first: u64, entries: impl IntoIterator<Item = &'a [u8]>) -> Result<()> {
        let entries: Vec<&[u8]> = entries.into_iter().collect();
        if entries.is_empty() {
            return Ok(());
        }
        if let Some(m) = &self.mirror {
            let store = m.store.lock().unwrap_or_else(PoisonError::into_inner);
            store.put_ingest(m.generation, self.source, first, &entries)?;
        }
        let mut batch = self.store.batch();
        for (i, e) in entries.iter().enumerate() {
            batch.insert(&self.store.ingest, key(self.source, first + i as u64), e.to_vec());
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
    /// Sequence numbers are dense, so after the first call (which looks up
    /// the lowest one held) this deletes keys from the previous bound up
    /// without reading the log: a scan would walk every deleted entry not
    /// yet compacted away and fill the block cache with the log's blocks.
    /// A gap (a mirrored log may have some) costs one tombstone per number.
    ///
    /// # Errors
    /// The store failed.
    pub fn truncate_below(&self, below: u64) -> Result<()> {
        let mut low = self.low.load(Ordering::Relaxed);
        if low == UNKNOWN {
            low = self.bounds()?.map_or(below, |(first, _)| first);
        }
        let mut batch = self.store.batch();
        for seq in low..below {
            batch.remove(&self.store.ingest, key(self.source, seq));
            if batch.len() >= 20_000 {
                self.store.commit(std::mem::replace(&mut batch, self.store.batch()))?;
            }
        }
        self.store.commit(batch)?;
        self.low.store(low.max(below), Ordering::Relaxed);
        if let Some(m) = &self.mirror {
            m.store.lock().unwrap_or_else(PoisonError::into_inner).truncate_ingest(self.source, below)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::StoreConfig;

    // Truncation deletes by sequence number from the last bound without
    // reading: later truncations, one below the bound, gaps, and the first
    // one after a reopen (which looks the bound up) all leave exactly the
    // entries at or above `below`, and never another source's.
    #[test]
    fn truncations_after_the_first_drop_exactly_what_lies_below() {
        let dir = tempfile::tempdir().unwrap();
        let held = |log: &IngestLog| {
            let mut out = Vec::new();
            log.read(0, 100, &mut out).unwrap();
            out.into_iter().map(|(s, _)| s).collect::<Vec<_>>()
        };
        {
            let (s, _) = Store::open(dir.path(), "j", &StoreConfig::default()).unwrap();
            let log = IngestLog::new(Arc::new(s), 1);
            let other = IngestLog::new(log.store.clone(), 2);
            other.append(0, [&b"x"[..], b"y"]).unwrap();
            log.append(5, [&b"a"[..], b"b", b"c", b"d"]).unwrap();
            log.append(12, [&b"e"[..]]).unwrap();
            log.truncate_below(6).unwrap();
            assert_eq!(held(&log), [6, 7, 8, 12]);
            log.truncate_below(3).unwrap();
            assert_eq!(held(&log), [6, 7, 8, 12]);
            log.truncate_below(12).unwrap();
            assert_eq!(held(&log), [12]);
            log.append(13, [&b"f"[..], b"g"]).unwrap();
            assert_eq!(held(&other), [0, 1]);
        }
        let (s, _) = Store::open(dir.path(), "j", &StoreConfig::default()).unwrap();
        let log = IngestLog::new(Arc::new(s), 1);
        assert_eq!(held(&log), [12, 13, 14]);
        log.truncate_below(14).unwrap();
        assert_eq!(held(&log), [14]);
        assert_eq!(log.bounds().unwrap(), Some((14, 14)));
        assert_eq!(held(&IngestLog::new(log.store.clone(), 2)), [0, 1]);
    }

    // Regression: a batch the mirror refuses (a fenced generation's) is
    // not kept on the node either, nor acknowledged — the broker
    // redelivers it, and the mirror a later node takes the source over
    // from has no hole (the refused batch is in it, under the older
    // generation, until the newer one writes those sequence numbers); a
    // batch only the mirror got (the node died between the two writes)
    // is brought to the node when it opens the log again.
    #[test]
    fn the_node_never_holds_an_entry_the_mirror_lacks() {
        let (dir, store_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let url = format!("file://{}", store_dir.path().display());
        let remote = CheckpointStore::open(&url, "j").unwrap();
        let spec = |generation| MirrorSpec { url: url.clone(), job: "j".into(), generation };
        let held = |log: &IngestLog| {
            let mut out = Vec::new();
            log.read(0, 100, &mut out).unwrap();
            out.into_iter().map(|(s, _)| s).collect::<Vec<_>>()
        };
        let (a, _) = Store::open(&dir.path().join("a"), "j", &StoreConfig::default()).unwrap();
        let a = Arc::new(a);
        let g1 = remote.claim_generation().unwrap();
        let log = IngestLog::mirrored(a.clone(), 0, &spec(g1)).unwrap();
        log.append(0, [&b"m0"[..], b"m1", b"m2"]).unwrap();
        let g2 = remote.claim_generation().unwrap();
        assert!(log.append(3, [&b"x3"[..], b"x4"]).is_err(), "generation {g1} is fenced");
        assert_eq!(held(&log), [0, 1, 2], "the refused batch is not on the node");
        // Another node takes the source over and goes on from the mirror:
        // its own entries replace the fenced batch's.
        let (b, _) = Store::open(&dir.path().join("b"), "j", &StoreConfig::default()).unwrap();
        let other = IngestLog::mirrored(Arc::new(b), 0, &spec(g2)).unwrap();
        assert_eq!(held(&other), [0, 1, 2, 3, 4]);
        other.append(3, [&b"m3"[..], b"m4", b"m5"]).unwrap();
        // The mirror got 6.. but node b died before its own write.
        remote.put_ingest(g2, 0, 6, &[b"m6"]).unwrap();
        let g3 = remote.claim_generation().unwrap();
        let back = IngestLog::mirrored(a, 0, &spec(g3)).unwrap();
        assert_eq!(held(&back), [0, 1, 2, 3, 4, 5, 6]);
        let mut out = Vec::new();
        back.read(3, 10, &mut out).unwrap();
        let got: Vec<&[u8]> = out.iter().map(|(_, e)| e.as_slice()).collect();
        assert_eq!(got, [&b"m3"[..], b"m4", b"m5", b"m6"]);
    }

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
