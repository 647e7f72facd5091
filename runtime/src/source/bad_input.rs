//! Malformed input: counted, logged with rate limiting, optionally written
//! to a dead-letter file, never fatal.

use crate::error::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where a source reports records it could not parse.
pub struct BadInput {
    what: String,
    count: u64,
    dead_letter: Option<(PathBuf, std::io::BufWriter<std::fs::File>)>,
    last_log: Option<Instant>,
    suppressed: u64,
}

impl BadInput {
    /// Reports for the input named `what`.
    pub fn new(what: impl Into<String>) -> Self {
        Self { what: what.into(), count: 0, dead_letter: None, last_log: None, suppressed: 0 }
    }

    /// Also appends every bad record to `path`.
    ///
    /// # Errors
    /// The file cannot be opened for appending.
    pub fn with_dead_letter(mut self, path: &Path) -> Result<Self> {
        let f = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(|e| Error::io(path, e))?;
        self.dead_letter = Some((path.to_path_buf(), std::io::BufWriter::new(f)));
        Ok(self)
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
        if let Some((path, w)) = &mut self.dead_letter {
            let r = (|| {
                write!(w, "{}:{line}: {reason}: ", self.what)?;
                w.write_all(raw)?;
                w.write_all(b"\n")
            })();
            r.map_err(|e| Error::io(path.clone(), e))?;
        }
        Ok(())
    }

    /// Flushes the dead-letter file.
    ///
    /// # Errors
    /// The write failed.
    pub fn flush(&mut self) -> Result<()> {
        if let Some((path, w)) = &mut self.dead_letter {
            w.flush().map_err(|e| Error::io(path.clone(), e))?;
        }
        Ok(())
    }
}
