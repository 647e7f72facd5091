//! Sources: where records enter a job.

mod bad_input;
mod file;
mod generator;

pub use bad_input::BadInput;
pub use file::FileSource;
pub use generator::Generator;

use crate::error::Result;

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

    /// Appends up to `max` records to `out`.
    ///
    /// # Errors
    /// I/O failures of the input (not malformed records: those are counted).
    fn poll_batch(&mut self, out: &mut Vec<Self::Item>, max: usize) -> Result<Poll>;

    /// The position after the last record handed out.
    fn position(&self) -> Vec<u8>;

    /// Malformed records skipped so far (for metrics).
    fn bad_records(&self) -> u64 {
        0
    }

    /// Continues from a position previously returned by `position`.
    ///
    /// # Errors
    /// The position cannot be decoded or reached.
    fn restore(&mut self, position: &[u8]) -> Result<()>;
}
