//! The values the store records: entries, key-group ranges, delta
//! references, epoch metadata and the commit point.

use serde::{Deserialize, Serialize};

/// One state entry of a delta: the full state key (`key_group u16 BE |
/// operator | key | namespace`) and its new value, or `None` if the epoch
/// deleted it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The state key; its first two bytes are the key group, big-endian.
    pub key: Vec<u8>,
    /// The value set in this epoch, or `None` for a delete.
    pub value: Option<Vec<u8>>,
}

impl Entry {
    /// The key group a state key belongs to, if the key has one.
    pub fn key_group(&self) -> Option<u16> {
        key_group(&self.key)
    }
}

pub(crate) fn key_group(key: &[u8]) -> Option<u16> {
    match key {
        [a, b, ..] => Some(u16::from_be_bytes([*a, *b])),
        _ => None,
    }
}

/// An inclusive range of key groups, `first..=last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KeyGroups {
    /// The first key group of the range.
    pub first: u16,
    /// The last key group of the range (inclusive).
    pub last: u16,
}

impl KeyGroups {
    /// The range `first..=last`; `None` if `first > last`.
    pub fn new(first: u16, last: u16) -> Option<Self> {
        (first <= last).then_some(Self { first, last })
    }

    /// The range holding one key group.
    pub fn one(kg: u16) -> Self {
        Self { first: kg, last: kg }
    }

    /// Whether `kg` is in the range.
    pub fn contains(&self, kg: u16) -> bool {
        self.first <= kg && kg <= self.last
    }

    /// Whether the two ranges share a key group.
    pub fn overlaps(&self, other: &KeyGroups) -> bool {
        self.first <= other.last && other.first <= self.last
    }

    /// The key groups of the range.
    pub fn iter(&self) -> impl Iterator<Item = u16> {
        self.first..=self.last
    }
}

/// What [`super::CheckpointStore::put_delta`] wrote: enough to find and
/// verify the delta again. The coordinator collects these from the tasks'
/// acks and commits them in the epoch's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeltaRef {
    /// The generation that wrote it.
    pub generation: u64,
    /// The epoch it belongs to.
    pub epoch: u64,
    /// The key groups it covers.
    pub groups: KeyGroups,
    /// Which of several writers of the same key groups in one epoch wrote
    /// it (0 when there is one).
    pub part: u16,
    /// Its size in bytes, header included.
    pub bytes: u64,
    /// The CRC32 of its body (as in its header).
    pub crc: u32,
    /// How many entries it holds.
    pub entries: u64,
}

/// What one task recorded for an epoch, opaque to the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// The task's id.
    pub task: String,
    /// The task's source positions (e.g. offsets), as the source encodes them.
    pub source_positions: Vec<u8>,
    /// The task's sink commit records, as the sink encodes them.
    pub sink_commits: Vec<u8>,
}

/// A committed checkpoint: an epoch and the generation that committed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Committed {
    /// The epoch.
    pub epoch: u64,
    /// The generation that committed it.
    pub generation: u64,
}

/// The metadata of a committed epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochMeta {
    /// The epoch.
    pub epoch: u64,
    /// The generation that committed it.
    pub generation: u64,
    /// The checkpoint this epoch's deltas apply on top of (the latest one
    /// when it was committed); `None` for the first.
    pub parent: Option<Committed>,
    /// The epoch's deltas, one per task or key-group range.
    pub deltas: Vec<DeltaRef>,
    /// Per-task source positions and sink commit records.
    pub tasks: Vec<TaskRecord>,
}

/// Written by `gc` before it deletes anything: chain epochs at or below
/// `floor` may have lost their metadata and deltas, and no restore of a
/// retained epoch needs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct GcFloor {
    pub(crate) floor: u64,
}

/// A full copy of one key group as of a committed epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Materialised {
    pub(crate) key_group: u16,
    pub(crate) at: Committed,
    pub(crate) entries: Vec<(Vec<u8>, Vec<u8>)>,
}
