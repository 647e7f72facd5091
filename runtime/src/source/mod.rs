//! Sources: where records enter a job.

mod bad_input;
mod file;
mod generator;
pub mod mqtt;
mod paced;

pub use bad_input::BadInput;
pub use file::{FileSource, LONG_LINE_PREFIX, MAX_CSV_FIELDS};
pub use generator::Generator;
pub use paced::Paced;

use crate::error::Result;
use crate::record::Record;
use crate::state::IngestLog;

/// Longest record a source accepts, in bytes: 64 KiB. A longer line of a
/// file is counted as malformed, dead-lettered truncated to its first
/// [`LONG_LINE_PREFIX`] bytes with its real length, and skipped
/// without being held in memory whole. Message payloads may share it.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Where a source puts the records it reads: a vector of values
/// ([`Source::poll_batch`]) or of records whose times the source task
/// stamps afterwards ([`Source::poll_records`]), so a record is written
/// once, where the task reads it.
pub trait Out<T> {
    /// Appends `value`.
    fn put(&mut self, value: T);
    /// Appends the value `init` makes, made where it lies, and has `fill`
    /// finish it there (a large value is then never moved); takes it out
    /// again when `fill` fails.
    ///
    /// # Errors
    /// What `fill` returned.
    fn put_filled<E>(&mut self, init: impl FnOnce() -> T, fill: impl FnOnce(&mut T) -> Result<(), E>) -> Result<(), E>;
    /// How many are held.
    fn count(&self) -> usize;
}

impl<T> Out<T> for Vec<T> {
    #[inline]
    fn put(&mut self, value: T) {
        self.push(value);
    }
    #[inline]
    fn put_filled<E>(&mut self, init: impl FnOnce() -> T, fill: impl FnOnce(&mut T) -> Result<(), E>) -> Result<(), E> {
        fill_last(self, init, fill, |v| v)
    }
    #[inline]
    fn count(&self) -> usize {
        self.len()
    }
}

/// Records with their times still to be stamped: `ts` and `wm` are 0.
impl<T> Out<T> for Vec<Record<T>> {
    #[inline]
    fn put(&mut self, value: T) {
        self.push(Record { ts: 0, wm: 0, value });
    }
    #[inline]
    fn put_filled<E>(&mut self, init: impl FnOnce() -> T, fill: impl FnOnce(&mut T) -> Result<(), E>) -> Result<(), E> {
        fill_last(self, || Record { ts: 0, wm: 0, value: init() }, fill, |r| &mut r.value)
    }
    #[inline]
    fn count(&self) -> usize {
        self.len()
    }
}

/// Appends what `init` makes (room first, then the value made in it),
/// fills the value `of` it in place, pops it on failure.
#[inline]
fn fill_last<S, T, E>(
    v: &mut Vec<S>,
    init: impl FnOnce() -> S,
    fill: impl FnOnce(&mut T) -> Result<(), E>,
    of: impl FnOnce(&mut S) -> &mut T,
) -> Result<(), E> {
    let at = v.len();
    v.extend(std::iter::once_with(init));
    let filled = fill(of(&mut v[at]));
    if filled.is_err() {
        v.pop();
    }
    filled
}

/// What a source is handed before it starts reading.
#[derive(Debug)]
#[non_exhaustive]
pub struct SourceContext {
    /// The task's name, for logs.
    pub name: String,
    /// This source's part of the node's durable ingest log; `None` when the
    /// job runs without a state directory.
    pub ingest: Option<IngestLog>,
    /// The job resumes from a checkpoint (`restore` follows).
    pub restored: bool,
    /// Complete checkpoints the store keeps restorable: input a source
    /// releases must not be needed by any of them (an ingest log is kept
    /// from the position of the oldest).
    pub retain_checkpoints: usize,
}

/// What a poll produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Poll {
    /// More may be read at once.
    Ready,
    /// Nothing available right now (an unbounded source waiting).
    Pending,
    /// The input is exhausted: end of stream.
    End,
}

/// A replayable source of records.
///
/// `position` must capture everything needed to continue after the records
/// handed out so far; `restore` moves a fresh source there.
pub trait Source: Send + 'static {
    /// The records it produces.
    type Item: Send + 'static;

    /// Appends up to `max` records to `out`. A source whose unit of input
    /// carries several records (an MQTT message with a batch of readings)
    /// hands out whole units, up to `max` of them, so its positions stay
    /// unit boundaries.
    ///
    /// # Errors
    /// I/O failures of the input (not malformed records: those are counted).
    fn poll_batch(&mut self, out: &mut Vec<Self::Item>, max: usize) -> Result<Poll>;

    /// What [`Source::poll_batch`] does, into records whose `ts` and `wm`
    /// (0 here) the source task stamps. A source that writes them directly
    /// (through [`Out`]) saves a copy of each record; by default the values
    /// are polled into a vector and moved over.
    ///
    /// # Errors
    /// As [`Source::poll_batch`].
    fn poll_records(&mut self, out: &mut Vec<Record<Self::Item>>, max: usize) -> Result<Poll> {
        let mut values = Vec::new();
        let poll = self.poll_batch(&mut values, max)?;
        out.extend(values.into_iter().map(|value| Record { ts: 0, wm: 0, value }));
        Ok(poll)
    }

    /// The position after the last record handed out.
    fn position(&self) -> Vec<u8>;

    /// Called at a checkpoint barrier just before [`Source::position`]:
    /// makes durable whatever the position records (e.g. the length of a
    /// dead-letter file).
    ///
    /// # Errors
    /// Syncing failed (the job stops).
    fn prepare_checkpoint(&mut self) -> Result<()> {
        Ok(())
    }

    /// Malformed records skipped so far (for metrics).
    fn bad_records(&self) -> u64 {
        0
    }

    /// The state of its connection, for a source reading from a broker
    /// (for metrics; asked once per batch).
    fn health(&self) -> Option<crate::metrics::SourceHealth> {
        None
    }

    /// Continues from a position previously returned by `position`.
    ///
    /// # Errors
    /// The position cannot be decoded or reached.
    fn restore(&mut self, position: &[u8]) -> Result<()>;

    /// Called once before the first `restore` or `poll_batch`.
    ///
    /// # Errors
    /// The source cannot start (e.g. its ingest log is unreadable).
    fn open(&mut self, _ctx: &SourceContext) -> Result<()> {
        Ok(())
    }

    /// Epoch `epoch`, whose barrier followed `position`, is complete: input
    /// before `position` will never be replayed again and may be released,
    /// except from the position of checkpoint `pinned` on, if any (a
    /// savepoint the job may be rolled back to copies it).
    ///
    /// # Errors
    /// Releasing failed (the job stops).
    fn on_epoch_complete(&mut self, _epoch: u64, _position: &[u8], _pinned: Option<u64>) -> Result<()> {
        Ok(())
    }
}
