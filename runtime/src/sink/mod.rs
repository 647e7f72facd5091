//! Sinks: where results leave a job, exactly once.
//!
//! A sink task encodes records into bytes and stages them per epoch in the
//! store's outbox; when the epoch completes the coordinator publishes them
//! through the sink's [`Output`] and records how far it got, so a crash at
//! any moment neither loses nor repeats a committed row.
//!
//! With [`crate::OutputMode::Eager`] the sink task publishes at once and
//! checkpoints how far it got with its epoch; a crash repeats, identically
//! numbered, what was published after the last complete checkpoint.

mod file;
mod mqtt;
mod task;

pub use file::{FileOutput, StdoutOutput};
pub use mqtt::{MqttOutput, TeeOutput};
pub(crate) use task::{recover_eager, SinkCommitter, SinkConsumer};

use crate::error::Result;
use std::path::Path;

/// A destination for committed bytes.
pub trait Output: Send + 'static {
    /// Called once at start. `committed` is what `end_epoch` last returned
    /// (`None` on a fresh start): undo anything published beyond it.
    ///
    /// # Errors
    /// The destination cannot be opened or repaired.
    fn recover(&mut self, committed: Option<&[u8]>) -> Result<()>;
    /// Publishes bytes of an epoch being committed.
    ///
    /// # Errors
    /// Publishing failed.
    fn publish(&mut self, bytes: &[u8]) -> Result<()>;
    /// Makes an epoch's bytes durable and returns the record of it.
    ///
    /// # Errors
    /// Syncing failed.
    fn end_epoch(&mut self) -> Result<Vec<u8>>;
    /// Without checkpoints: write straight through.
    ///
    /// # Errors
    /// Writing failed.
    fn direct(&mut self, bytes: &[u8]) -> Result<()>;
    /// Flushes at the end of a job without checkpoints.
    ///
    /// # Errors
    /// Flushing failed.
    fn flush(&mut self) -> Result<()>;
    /// Eager output: publishes `bytes` (whole records) now, before their
    /// epoch completes. Records are numbered over the life of the job,
    /// continuing from the record `recover` was given; a replay after a
    /// crash publishes the same records in the same order, so it repeats
    /// the same numbers (an MQTT output puts them in its message ids).
    /// Default: [`Output::direct`].
    ///
    /// # Errors
    /// Publishing failed.
    fn publish_eager(&mut self, bytes: &[u8]) -> Result<()> {
        self.direct(bytes)
    }
    /// Eager output, at a checkpoint barrier: makes everything published
    /// so far durable (acknowledged) and returns the record `recover`
    /// restarts from. Default: [`Output::end_epoch`].
    ///
    /// # Errors
    /// Syncing failed.
    fn checkpoint_eager(&mut self) -> Result<Vec<u8>> {
        self.end_epoch()
    }
}

/// Turns one record into the bytes a sink writes.
pub(crate) type Encode<T> = Box<dyn FnMut(&T, &mut Vec<u8>) + Send>;

/// How to write records of `T` and where.
pub struct Sink<T> {
    pub(crate) encode: Encode<T>,
    pub(crate) output: Box<dyn Output>,
}

impl<T: 'static> Sink<T> {
    /// Any output with any encoding (one record appends its bytes).
    pub fn new(output: impl Output, encode: impl FnMut(&T, &mut Vec<u8>) + Send + 'static) -> Self {
        Self { encode: Box::new(encode), output: Box::new(output) }
    }

    /// A file written by `encode` (e.g. one CSV row per record).
    pub fn file(path: impl AsRef<Path>, encode: impl FnMut(&T, &mut Vec<u8>) + Send + 'static) -> Self {
        Self::new(FileOutput::new(path.as_ref()), encode)
    }

    /// Standard output.
    pub fn stdout(encode: impl FnMut(&T, &mut Vec<u8>) + Send + 'static) -> Self {
        Self::new(StdoutOutput, encode)
    }
}

impl<T: serde::Serialize + 'static> Sink<T> {
    /// A JSON-lines file: one JSON object per record.
    pub fn json_lines(path: impl AsRef<Path>) -> Self {
        Self::file(path, |v: &T, out: &mut Vec<u8>| {
            if serde_json::to_writer(&mut *out, v).is_ok() {
                out.push(b'\n');
            }
        })
    }
}
