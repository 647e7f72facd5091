//! Malformed input: counted, logged with rate limiting, optionally written
//! to a dead-letter file, never fatal.
//!
//! The dead-letter file is a [`FileOutput`] written eagerly: each entry is
//! appended as its line is read, the file's length is recorded with the
//! source's position at every checkpoint, and a resumed run cuts the file
//! back to that length before the replay writes the same entries again. So
//! after a crash and resume it holds each entry exactly once.

use crate::error::Result;
use crate::sink::{FileOutput, Output};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where a source reports records it could not parse.
pub struct BadInput {
    what: String,
    count: u64,
    dead_letter: Option<DeadLetter>,
    last_log: Option<Instant>,
    suppressed: u64,
    entry: Vec<u8>,
}

struct DeadLetter {
    path: PathBuf,
    out: FileOutput,
    /// Bytes written since the last flush.
    pending: bool,
}

impl BadInput {
    /// Reports for the input named `what`.
    pub fn new(what: impl Into<String>) -> Self {
        Self { what: what.into(), count: 0, dead_letter: None, last_log: None, suppressed: 0, entry: Vec::new() }
    }

    /// Also appends every bad record to `path`. Nothing is opened until
    /// [`BadInput::start`] (a fresh run empties the file, a resumed one
    /// cuts it back to its checkpointed length).
    ///
    /// # Errors
    /// None today; kept fallible for outputs that check at once.
    pub fn with_dead_letter(mut self, path: &Path) -> Result<Self> {
        self.dead_letter = Some(DeadLetter { path: path.to_path_buf(), out: FileOutput::new(path), pending: false });
        Ok(self)
    }

    /// The dead-letter file, if any.
    pub fn dead_letter_path(&self) -> Option<&Path> {
        self.dead_letter.as_ref().map(|d| d.path.as_path())
    }

    /// Opens the dead-letter file: `committed` is the record a checkpoint
    /// took with [`BadInput::checkpoint`] (the file is cut back to it), or
    /// `None` on a fresh run (the file is emptied).
    ///
    /// # Errors
    /// The file cannot be opened, or is shorter than the checkpoint says.
    pub fn start(&mut self, committed: Option<&[u8]>) -> Result<()> {
        let Some(d) = &mut self.dead_letter else { return Ok(()) };
        d.out.recover(committed)
    }

    /// Opens the dead-letter file as it is, appending after its content
    /// (a resumed run whose checkpoint recorded no dead-letter length).
    ///
    /// # Errors
    /// The file cannot be opened.
    pub fn start_appending(&mut self) -> Result<()> {
        let Some(d) = &mut self.dead_letter else { return Ok(()) };
        let len = match std::fs::metadata(&d.path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(crate::Error::io(&d.path, e)),
        };
        let record = postcard::to_allocvec(&len)
            .map_err(|e| crate::Error::Corrupt { what: "dead-letter length".into(), reason: e.to_string() })?;
        d.out.recover(Some(&record))
    }

    /// Makes every entry so far durable and returns the record a resumed
    /// run passes to [`BadInput::start`]; `None` without a dead-letter file.
    ///
    /// # Errors
    /// Syncing the file failed.
    pub fn checkpoint(&mut self) -> Result<Option<Vec<u8>>> {
        let Some(d) = &mut self.dead_letter else { return Ok(None) };
        d.pending = false;
        d.out.checkpoint_eager().map(Some)
    }

    /// Bad records seen so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Reports one bad record at `line` (1-based) with its raw text.
    ///
    /// # Errors
    /// Writing the dead-letter file failed.
    pub fn report(&mut self, line: u64, reason: &str, raw: &[u8]) -> Result<()> {
        self.count += 1;
        let now = Instant::now();
        if self.last_log.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1)) {
            tracing::warn!(
                input = %self.what,
                line,
                reason,
                suppressed = self.suppressed,
                "malformed record skipped"
            );
            self.last_log = Some(now);
            self.suppressed = 0;
        } else {
            self.suppressed += 1;
        }
        let Some(d) = &mut self.dead_letter else { return Ok(()) };
        self.entry.clear();
        let _ = write!(self.entry, "{}:{line}: {reason}: ", self.what);
        self.entry.extend_from_slice(raw);
        self.entry.push(b'\n');
        d.out.publish(&self.entry)?;
        d.pending = true;
        Ok(())
    }

    /// Flushes the dead-letter file (to the OS; durable at the next
    /// [`BadInput::checkpoint`]).
    ///
    /// # Errors
    /// The write failed.
    pub fn flush(&mut self) -> Result<()> {
        let Some(d) = &mut self.dead_letter else { return Ok(()) };
        if !d.pending {
            return Ok(());
        }
        d.pending = false;
        d.out.flush()
    }
}
