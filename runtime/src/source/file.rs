//! Line-oriented file source: CSV or JSON lines. Its checkpointed position
//! is the byte offset of the next unread line (and, with a dead-letter
//! file, that file's length).
//!
//! Every line is either parsed or counted as malformed (and dead-lettered):
//! empty lines, lines that do not parse, and lines longer than
//! [`MAX_LINE_BYTES`] are counted. A final line without a newline is a
//! line; a trailing newline at the end of the file is not an empty line.
//! CRLF line ends are read like LF, and a UTF-8 byte-order mark at the
//! start of the file is skipped.

use super::{BadInput, Poll, Source, SourceContext, MAX_LINE_BYTES};
use crate::error::{Error, Result};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Most fields a CSV line may have.
pub(super) const MAX_CSV_FIELDS: usize = 32;
const READ_CHUNK: usize = 1 << 20;
/// Bytes of an over-long line kept in its dead-letter entry.
pub const LONG_LINE_PREFIX: usize = 1024;
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

// A line up to the limit always fits the read buffer, so it never grows.
const _: () = assert!(MAX_LINE_BYTES < READ_CHUNK && LONG_LINE_PREFIX <= MAX_LINE_BYTES);

type Parse<T> = Box<dyn FnMut(&[u8]) -> std::result::Result<T, String> + Send>;

/// Reads a file line by line, parsing each line into a record.
pub struct FileSource<T> {
    path: PathBuf,
    file: File,
    parse: Parse<T>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// File offset of `buf[start]`.
    offset: u64,
    line: u64,
    eof: bool,
    bad: BadInput,
    /// An over-long line being skipped.
    long: Option<LongLine>,
    /// The dead-letter record taken at the last checkpoint.
    dead_letter_record: Option<Vec<u8>>,
}

/// An over-long line being streamed through without buffering it whole.
struct LongLine {
    /// Its bytes seen so far.
    len: u64,
    /// Its first bytes, for the dead letter.
    prefix: Vec<u8>,
}

/// Encoded first; a dead-letter record (postcard bytes of the file's
/// length) follows when the source has a dead-letter file.
#[derive(Serialize, Deserialize)]
struct Position {
    offset: u64,
    line: u64,
}

impl<T: Send + 'static> FileSource<T> {
    /// Headerless CSV without quoting: `parse` receives a line's fields.
    ///
    /// # Errors
    /// The file cannot be opened.
    pub fn csv(
        path: impl AsRef<Path>,
        mut parse: impl FnMut(&[&str]) -> std::result::Result<T, String> + Send + 'static,
    ) -> Result<Self> {
        Self::lines(path, move |line: &[u8]| {
            let text = std::str::from_utf8(line).map_err(|_| "not UTF-8".to_string())?;
            let mut fields: heapless::Vec<&str, MAX_CSV_FIELDS> = heapless::Vec::new();
            // A byte loop beats memchr on fields this short.
            let mut start = 0;
            for (i, &b) in text.as_bytes().iter().enumerate() {
                if b == b',' {
                    fields.push(&text[start..i]).map_err(|_| format!("more than {MAX_CSV_FIELDS} fields"))?;
                    start = i + 1;
                }
            }
            fields.push(&text[start..]).map_err(|_| format!("more than {MAX_CSV_FIELDS} fields"))?;
            parse(&fields)
        })
    }

    /// Lines parsed by `parse` (raw bytes without the line end, `\n` or
    /// `\r\n`).
    ///
    /// # Errors
    /// The file cannot be opened.
    pub fn lines(
        path: impl AsRef<Path>,
        parse: impl FnMut(&[u8]) -> std::result::Result<T, String> + Send + 'static,
    ) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
        let bad = BadInput::new(path.display().to_string());
        Ok(Self {
            path,
            file,
            parse: Box::new(parse),
            buf: vec![0; READ_CHUNK],
            start: 0,
            end: 0,
            offset: 0,
            line: 0,
            eof: false,
            bad,
            long: None,
            dead_letter_record: None,
        })
    }

    /// Sends malformed lines to `path` as well as counting them. The file
    /// is opened when the job starts: emptied on a fresh run, cut back to
    /// its checkpointed length on a resumed one (so each entry is in it
    /// exactly once).
    ///
    /// # Errors
    /// None today (the file is opened when the job starts).
    pub fn dead_letter(mut self, path: &Path) -> Result<Self> {
        self.bad = self.bad.with_dead_letter(path)?;
        Ok(self)
    }

    /// Malformed lines seen so far.
    pub fn bad_lines(&self) -> u64 {
        self.bad.count()
    }

    fn fill(&mut self) -> Result<()> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let n = self.file.read(&mut self.buf[self.end..]).map_err(|e| Error::io(&self.path, e))?;
        if n == 0 {
            self.eof = true;
        }
        self.end += n;
        Ok(())
    }
}

impl<T: DeserializeOwned + Send + 'static> FileSource<T> {
    /// One JSON object per line, deserialized into `T`.
    ///
    /// # Errors
    /// The file cannot be opened.
    pub fn json_lines(path: impl AsRef<Path>) -> Result<Self> {
        Self::lines(path, |line: &[u8]| serde_json::from_slice(line).map_err(|e| e.to_string()))
    }
}

impl<T: Send + 'static> Source for FileSource<T> {
    type Item = T;

    fn poll_batch(&mut self, out: &mut Vec<T>, max: usize) -> Result<Poll> {
        let target = out.len().saturating_add(max);
        while out.len() < target {
            if self.long.is_some() {
                if !self.skip_long_line()? {
                    self.fill()?;
                }
                continue;
            }
            let nl = memchr::memchr(b'\n', &self.buf[self.start..self.end]);
            let (line_end, next) = match nl {
                Some(i) => (self.start + i, self.start + i + 1),
                None if self.end - self.start > MAX_LINE_BYTES => {
                    // Over the limit and no end in sight: stream through it.
                    let prefix = self.buf[self.start..self.start + LONG_LINE_PREFIX].to_vec();
                    self.long = Some(LongLine { len: (self.end - self.start) as u64, prefix });
                    self.start = self.end;
                    continue;
                }
                None if !self.eof => {
                    self.fill()?;
                    continue;
                }
                None if self.start < self.end => (self.end, self.end), // last line without newline
                None => break,
            };
            self.line += 1;
            let mut line = &self.buf[self.start..line_end];
            if self.offset == 0 {
                line = line.strip_prefix(UTF8_BOM).unwrap_or(line);
            }
            line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.len() > MAX_LINE_BYTES {
                let (len, prefix) = (line.len() as u64, line[..LONG_LINE_PREFIX].to_vec());
                self.bad.report(self.line, &long_line_reason(len), &prefix)?;
            } else if line.is_empty() {
                self.bad.report(self.line, "empty line", b"")?;
            } else {
                match (self.parse)(line) {
                    Ok(v) => out.push(v),
                    Err(reason) => {
                        let raw = line.to_vec();
                        self.bad.report(self.line, &reason, &raw)?;
                    }
                }
            }
            self.offset += (next - self.start) as u64;
            self.start = next;
        }
        self.bad.flush()?;
        if self.eof && self.start >= self.end && self.long.is_none() {
            return Ok(Poll::End);
        }
        Ok(Poll::Ready)
    }

    fn prepare_checkpoint(&mut self) -> Result<()> {
        self.dead_letter_record = self.bad.checkpoint()?;
        Ok(())
    }

    fn open(&mut self, ctx: &SourceContext) -> Result<()> {
        if ctx.restored {
            // `restore` cuts the file back to its checkpointed length; if
            // the checkpoint has none, new entries follow what is there.
            self.bad.start_appending()
        } else {
            self.bad.start(None)
        }
    }

    fn bad_records(&self) -> u64 {
        self.bad.count()
    }

    fn position(&self) -> Vec<u8> {
        let mut v = postcard::to_allocvec(&Position { offset: self.offset, line: self.line }).unwrap_or_default();
        if let Some(r) = &self.dead_letter_record {
            v.extend_from_slice(r);
        }
        v
    }

    fn restore(&mut self, position: &[u8]) -> Result<()> {
        let corrupt = |e: postcard::Error| Error::Corrupt {
            what: format!("position of {}", self.path.display()),
            reason: e.to_string(),
        };
        let (p, dead_letter): (Position, &[u8]) = postcard::take_from_bytes(position).map_err(corrupt)?;
        if !dead_letter.is_empty() {
            self.bad.start(Some(dead_letter))?;
        }
        self.file.seek(SeekFrom::Start(p.offset)).map_err(|e| Error::io(&self.path, e))?;
        self.offset = p.offset;
        self.line = p.line;
        self.start = 0;
        self.end = 0;
        self.eof = false;
        self.long = None;
        Ok(())
    }
}

impl<T> FileSource<T> {
    /// Streams on through an over-long line; at its end (newline or end of
    /// file) reports it, truncated, and moves past it. Returns false when
    /// the buffer ran out first (the caller reads more).
    fn skip_long_line(&mut self) -> Result<bool> {
        let Some(long) = &mut self.long else { return Ok(true) };
        let nl = memchr::memchr(b'\n', &self.buf[self.start..self.end]);
        let (len, next) = match nl {
            Some(i) => (i, self.start + i + 1),
            None if self.eof => (self.end - self.start, self.end),
            None => {
                long.len += (self.end - self.start) as u64;
                self.start = self.end;
                return Ok(false);
            }
        };
        long.len += len as u64;
        let newline = u64::from(nl.is_some());
        let (total, prefix) = (long.len, std::mem::take(&mut long.prefix));
        self.long = None;
        self.line += 1;
        self.bad.report(self.line, &long_line_reason(total), &prefix)?;
        self.offset += total + newline;
        self.start = next;
        Ok(true)
    }
}

fn long_line_reason(len: u64) -> String {
    format!(
        "line of {len} bytes is longer than the limit of {MAX_LINE_BYTES}; its first {LONG_LINE_PREFIX} bytes follow"
    )
}

#[cfg(test)]
#[path = "file_tests.rs"]
mod tests;
