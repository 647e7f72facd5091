//! What a cluster's sinks staged per epoch, and how far the coordinator
//! published it: sink output travels through the store so that losing the
//! worker that staged it, or the coordinator publishing it, loses nothing.

use super::error::{Error, Result};
use super::format::{self, Kind};
use super::model::Committed;
use super::{paths, CheckpointStore};
use serde::{Deserialize, Serialize};

/// What [`CheckpointStore::put_output`] wrote: enough to find and verify
/// the bytes again. Carried in the epoch's metadata (as a task record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputRef {
    /// The generation that wrote it.
    pub generation: u64,
    /// The epoch whose results it holds.
    pub epoch: u64,
    /// The sink's operator id.
    pub sink: u16,
    /// Which writer of the sink (its subtask).
    pub part: u16,
    /// Its size in bytes, header included.
    pub bytes: u64,
    /// The CRC32 of its body.
    pub crc: u32,
}

/// How far a sink's output was published: the record its output returned
/// for the last epoch it published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    /// The last epoch published.
    pub epoch: u64,
    /// The output's commit record after it (e.g. a file's length).
    pub record: Vec<u8>,
}

impl CheckpointStore {
    /// Uploads the encoded results sink `sink` (subtask `part`) staged in
    /// `epoch`.
    ///
    /// # Errors
    /// [`Error::Fenced`] if a newer generation was claimed; [`Error::Backend`].
    pub fn put_output(&self, generation: u64, epoch: u64, sink: u16, part: u16, bytes: &[u8]) -> Result<OutputRef> {
        self.check_fence(generation)?;
        let encoded = format::encode(Kind::Output, &bytes)?;
        let r = OutputRef { generation, epoch, sink, part, bytes: encoded.len() as u64, crc: format::crc_of(&encoded) };
        self.io.put_overwrite(&paths::output(generation, epoch, sink, part), encoded)?;
        Ok(r)
    }

    /// The bytes `r` names, checked against its size and CRC.
    ///
    /// # Errors
    /// [`Error::Damaged`] if missing or not what `r` says.
    pub fn read_output(&self, r: &OutputRef) -> Result<Vec<u8>> {
        let name = paths::output(r.generation, r.epoch, r.sink, r.part);
        let Some((bytes, _)) = self.io.get(&name)? else {
            return Err(self.missing(&name, "missing, but a committed epoch names it".into()));
        };
        if bytes.len() as u64 != r.bytes || format::crc_of(&bytes) != r.crc {
            return Err(Error::damaged(&name, "size or CRC differs from the committed epoch's record"));
        }
        format::decode(&name, Kind::Output, &bytes)
    }

    /// Records that sink `sink` published up to `p.epoch`.
    ///
    /// # Errors
    /// [`Error::Fenced`] if a newer generation was claimed; [`Error::Backend`].
    pub fn put_published(&self, generation: u64, sink: u16, p: &Published) -> Result<()> {
        self.check_fence(generation)?;
        self.io.put_overwrite(&paths::published(sink), format::encode(Kind::Published, p)?)
    }

    /// How far sink `sink` was published, if it ever was.
    ///
    /// # Errors
    /// [`Error::Damaged`] if the record cannot be decoded; [`Error::Backend`].
    pub fn published(&self, sink: u16) -> Result<Option<Published>> {
        self.read(&paths::published(sink), Kind::Published)
    }

    /// Marks the job finished at committed checkpoint `at` (its input
    /// ended and its last epoch committed).
    ///
    /// # Errors
    /// [`Error::Fenced`] if a newer generation was claimed; [`Error::Backend`].
    pub fn mark_finished(&self, at: Committed) -> Result<()> {
        self.check_fence(at.generation)?;
        self.io.put_overwrite(paths::FINISHED, format::encode(Kind::Finished, &at)?)
    }

    /// The checkpoint the job finished at, if it did.
    ///
    /// # Errors
    /// [`Error::Damaged`] if the marker cannot be decoded; [`Error::Backend`].
    pub fn finished(&self) -> Result<Option<Committed>> {
        self.read(paths::FINISHED, Kind::Finished)
    }
}
