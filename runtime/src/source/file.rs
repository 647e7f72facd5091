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

use super::{BadInput, Out, Poll, Source, SourceContext, MAX_LINE_BYTES};
use crate::error::{Error, Result};
use crate::record::Record;
use crate::text::LineScan;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Most fields a CSV line may have.
pub const MAX_CSV_FIELDS: usize = 32;
const READ_CHUNK: usize = 1 << 20;
/// Bytes of an over-long line kept in its dead-letter entry.
pub const LONG_LINE_PREFIX: usize = 1024;
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";
/// The longest line, with its `\n`, a plain reader may take.
const PLAIN_LINE_MAX: usize = MAX_LINE_BYTES + 1;

// A line up to the limit always fits the read buffer, so it never grows.
const _: () = assert!(MAX_LINE_BYTES < READ_CHUNK && LONG_LINE_PREFIX <= MAX_LINE_BYTES);

type ParseResult<T> = std::result::Result<T, String>;
type ParseBytes<T> = Box<dyn FnMut(&[u8]) -> ParseResult<T> + Send>;
type ParseText<T> = Box<dyn FnMut(&str) -> ParseResult<T> + Send>;
type ParseTextInto<T> = Box<dyn FnMut(&str, &mut T) -> ParseResult<()> + Send>;
type ParseCsvInto<T> = Box<dyn FnMut(&str, Option<&[&str]>, &mut T) -> ParseResult<()> + Send>;
type ReadPlain<T> = Box<dyn FnMut(&[u8], &mut T) -> Option<usize> + Send>;
type ReadPlainText<T> = Box<dyn FnMut(&str, &mut T) -> Option<usize> + Send>;

/// A fast reader for the lines of the expected shape.
enum Plain<T> {
    /// Given the bytes from a line's start on.
    Bytes(ReadPlain<T>),
    /// Given the text from a line's start on, when its region of lines is
    /// UTF-8 (checked once for the region).
    Text(ReadPlainText<T>),
}

/// How a line becomes a record.
enum Parse<T> {
    /// From its raw bytes.
    Bytes(ParseBytes<T>),
    /// From its text: the buffer is checked for UTF-8 a region of lines at
    /// a time, not line by line, and a line that is not UTF-8 is malformed.
    Text(ParseText<T>),
    /// From its text, into a value made by the function beside it and
    /// already in place among the source's output.
    TextInto(ParseTextInto<T>, fn() -> T),
    /// From its text and, unless it holds a `"` or more than
    /// [`MAX_CSV_FIELDS`] fields, its fields between commas; into a value
    /// made by the function beside it, as `TextInto`.
    CsvInto(ParseCsvInto<T>, fn() -> T),
    /// By the first function (from the line's bytes, or its region's text)
    /// when it takes the line, else as `CsvInto` by the second (see
    /// [`FileSource::csv_plain`] and [`FileSource::csv_plain_text`]).
    Plain(Plain<T>, ParseCsvInto<T>, fn() -> T),
}

impl<T> Plain<T> {
    /// Reads the line at `pos` of `region` (`text` when it is UTF-8).
    #[inline(always)]
    fn line(&mut self, region: &[u8], text: Option<&str>, pos: usize, v: &mut T) -> Option<usize> {
        match self {
            Plain::Bytes(read) => read(region.get(pos..)?, v),
            Plain::Text(read) => read(text?.get(pos..)?, v),
        }
    }
}

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
        mut parse: impl FnMut(&[&str]) -> ParseResult<T> + Send + 'static,
    ) -> Result<Self> {
        Self::text_lines(path, move |text: &str| {
            let mut fields: heapless::Vec<&str, MAX_CSV_FIELDS> = heapless::Vec::new();
            crate::text::split_commas(text, |f| fields.push(f).is_ok())
                .then_some(())
                .ok_or_else(|| format!("more than {MAX_CSV_FIELDS} fields"))?;
            parse(&fields)
        })
    }

    /// CSV lines parsed by `parse` into a default value where the source
    /// task reads it (see [`FileSource::text_lines_into`]). `parse` gets a
    /// line's text and, when it holds no `"` and at most
    /// [`MAX_CSV_FIELDS`] fields, the fields between its commas (found in
    /// the pass that finds the line's end); otherwise `None`, and the text
    /// is for `parse` to read.
    ///
    /// # Errors
    /// The file cannot be opened.
    pub fn csv_into(
        path: impl AsRef<Path>,
        parse: impl FnMut(&str, Option<&[&str]>, &mut T) -> ParseResult<()> + Send + 'static,
    ) -> Result<Self>
    where
        T: Default,
    {
        Self::open_with(path.as_ref(), Parse::CsvInto(Box::new(parse), T::default))
    }

    /// [`FileSource::csv_into`] with a fast reader for the lines of the
    /// expected shape: `read` gets the bytes from a line's start on (that
    /// line and the ones after it), fills a default value and returns the
    /// line's length with its `\n`, e.g. with [`crate::text::PlainFields`];
    /// or returns `None`, and `parse` reads the line as `csv_into` would.
    /// `read` must give the value `parse` would, for every line it takes.
    /// The file's first line (it may start with a byte-order mark) and
    /// lines longer than [`MAX_LINE_BYTES`] always go to `parse`.
    ///
    /// # Errors
    /// The file cannot be opened.
    pub fn csv_plain(
        path: impl AsRef<Path>,
        read: impl FnMut(&[u8], &mut T) -> Option<usize> + Send + 'static,
        parse: impl FnMut(&str, Option<&[&str]>, &mut T) -> ParseResult<()> + Send + 'static,
    ) -> Result<Self>
    where
        T: Default,
    {
        Self::open_with(path.as_ref(), Parse::Plain(Plain::Bytes(Box::new(read)), Box::new(parse), T::default))
    }

    /// [`FileSource::csv_plain`] with `read` given text: the lines are
    /// checked for UTF-8 a region at a time (as `csv_into` checks them),
    /// and the lines of a region that is not UTF-8 all go to `parse`.
    ///
    /// # Errors
    /// The file cannot be opened.
    pub fn csv_plain_text(
        path: impl AsRef<Path>,
        read: impl FnMut(&str, &mut T) -> Option<usize> + Send + 'static,
        parse: impl FnMut(&str, Option<&[&str]>, &mut T) -> ParseResult<()> + Send + 'static,
    ) -> Result<Self>
    where
        T: Default,
    {
        Self::open_with(path.as_ref(), Parse::Plain(Plain::Text(Box::new(read)), Box::new(parse), T::default))
    }

    /// Lines parsed by `parse` as text (without the line end, `\n` or
    /// `\r\n`); a line that is not UTF-8 is malformed (`not UTF-8`).
    ///
    /// # Errors
    /// The file cannot be opened.
    pub fn text_lines(
        path: impl AsRef<Path>,
        parse: impl FnMut(&str) -> ParseResult<T> + Send + 'static,
    ) -> Result<Self> {
        Self::open_with(path.as_ref(), Parse::Text(Box::new(parse)))
    }

    /// [`FileSource::text_lines`] for large records: `parse` fills a
    /// default value where the source task reads it, so the record is
    /// never moved (a failed line's value is dropped).
    ///
    /// # Errors
    /// The file cannot be opened.
    pub fn text_lines_into(
        path: impl AsRef<Path>,
        parse: impl FnMut(&str, &mut T) -> ParseResult<()> + Send + 'static,
    ) -> Result<Self>
    where
        T: Default,
    {
        Self::open_with(path.as_ref(), Parse::TextInto(Box::new(parse), T::default))
    }

    /// Lines parsed by `parse` (raw bytes without the line end, `\n` or
    /// `\r\n`).
    ///
    /// # Errors
    /// The file cannot be opened.
    pub fn lines(path: impl AsRef<Path>, parse: impl FnMut(&[u8]) -> ParseResult<T> + Send + 'static) -> Result<Self> {
        Self::open_with(path.as_ref(), Parse::Bytes(Box::new(parse)))
    }

    fn open_with(path: &Path, parse: Parse<T>) -> Result<Self> {
        let path = path.to_path_buf();
        let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
        let bad = BadInput::new(path.display().to_string());
        Ok(Self {
            path,
            file,
            parse,
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
        self.poll_into(out, max)
    }

    fn poll_records(&mut self, out: &mut Vec<Record<T>>, max: usize) -> Result<Poll> {
        self.poll_into(out, max)
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

impl<T: Send + 'static> FileSource<T> {
    /// Reads up to `max` more records into `out` (see [`Source::poll_batch`]).
    fn poll_into(&mut self, out: &mut impl Out<T>, max: usize) -> Result<Poll> {
        let target = out.count().saturating_add(max);
        while out.count() < target {
            if self.long.is_some() {
                if !self.skip_long_line()? {
                    self.fill()?;
                }
                continue;
            }
            let lines_end = match memchr::memrchr(b'\n', &self.buf[self.start..self.end]) {
                Some(i) => self.start + i + 1,
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
                None if self.start < self.end => self.end, // last line without newline
                None => break,
            };
            let end = self.region_for(lines_end, target - out.count());
            self.parse_region(end, out, target)?;
        }
        self.bad.flush()?;
        if self.eof && self.start >= self.end && self.long.is_none() {
            return Ok(Poll::End);
        }
        Ok(Poll::Ready)
    }
}

impl<T> FileSource<T> {
    /// Where the lines to parse next end: whole lines from `start`, about
    /// as many as `lines` at the mean line length so far (a text parser
    /// checks them for UTF-8 at once), at most up to `lines_end`.
    fn region_for(&self, lines_end: usize, lines: usize) -> usize {
        let mean = self.offset.checked_div(self.line).map_or(128, |m| m.clamp(8, 4096) as usize);
        let want = self.start.saturating_add(lines.saturating_mul(mean + mean / 4));
        if want >= lines_end {
            return lines_end;
        }
        match memchr::memrchr(b'\n', &self.buf[self.start..want]) {
            Some(i) => self.start + i + 1,
            None => memchr::memchr(b'\n', &self.buf[want..lines_end]).map_or(lines_end, |i| want + i + 1),
        }
    }

    /// Parses the lines of `buf[start..end]` (whole lines) until `out`
    /// holds `target` records, and moves past the lines it read.
    fn parse_region(&mut self, end: usize, out: &mut impl Out<T>, target: usize) -> Result<()> {
        let Self { buf, parse, bad, start, offset, line, .. } = self;
        let region = &buf[*start..end];
        // One UTF-8 check for the region; when it fails, each line is
        // checked on its own (as are the lines a plain reader of bytes
        // leaves; the ones it takes are not text to it).
        let text = match parse {
            Parse::Bytes(_) | Parse::Plain(Plain::Bytes(_), ..) => None,
            _ => std::str::from_utf8(region).ok(),
        };
        // CSV lines' commas and quotes are found in the pass that finds
        // their ends.
        let csv = matches!(parse, Parse::CsvInto(..) | Parse::Plain(..));
        let mut commas = [0usize; MAX_CSV_FIELDS];
        let mut pos = 0;
        while pos < region.len() && out.count() < target {
            let rest = &region[pos..];
            if let (Parse::Plain(read, _, make), 1..) = (&mut *parse, *offset) {
                let mut len = 0;
                let taken = out.put_filled(*make, |v| match read.line(region, text, pos, v) {
                    // A whole line, with its end, and not over the limit.
                    Some(n) if n <= PLAIN_LINE_MAX && rest.get(n.wrapping_sub(1)) == Some(&b'\n') => {
                        len = n;
                        Ok(())
                    }
                    _ => Err(()),
                });
                if taken.is_ok() {
                    *line += 1;
                    *offset += len as u64;
                    pos += len;
                    continue;
                }
            }
            let scan = match csv {
                false => LineScan { newline: crate::text::find_byte(rest, b'\n'), ..LineScan::default() },
                true => crate::text::scan_line::<true>(rest, &mut commas),
            };
            let (line_end, next) = match scan.newline {
                Some(i) => (pos + i, pos + i + 1),
                None => (region.len(), region.len()),
            };
            *line += 1;
            let (mut a, mut b) = (pos, line_end);
            if *offset == 0 && region[a..b].starts_with(UTF8_BOM) {
                a += UTF8_BOM.len();
            }
            if b > a && region[b - 1] == b'\r' {
                b -= 1;
            }
            let raw = &region[a..b];
            // Both ends are line ends or follow a whole character.
            let line_text = || match text {
                Some(t) => Ok(&t[a..b]),
                None => std::str::from_utf8(raw).map_err(|_| "not UTF-8".to_string()),
            };
            // The comma positions are the line's, from before a BOM.
            let fields = |t, into: &mut _| csv_fields(t, a - pos, &commas, scan.commas, into);
            if raw.len() > MAX_LINE_BYTES {
                bad.report(*line, &long_line_reason(raw.len() as u64), &raw[..LONG_LINE_PREFIX])?;
            } else if raw.is_empty() {
                bad.report(*line, "empty line", b"")?;
            } else {
                'line: {
                    let parsed = match (&mut *parse, text) {
                        (Parse::Bytes(f), _) => f(raw),
                        (Parse::Text(f), Some(t)) => f(&t[a..b]),
                        (Parse::Text(f), None) => match std::str::from_utf8(raw) {
                            Ok(t) => f(t),
                            Err(_) => Err("not UTF-8".to_string()),
                        },
                        (Parse::TextInto(f, make), _) => {
                            match line_text().and_then(|t| out.put_filled(*make, |v| f(t, v))) {
                                Ok(()) => break 'line,
                                Err(reason) => Err(reason),
                            }
                        }
                        (Parse::CsvInto(f, make) | Parse::Plain(_, f, make), _) => {
                            let filled = line_text().and_then(|t| {
                                let mut split = heapless::Vec::new();
                                let split = (!scan.quote && fields(t, &mut split)).then_some(&split[..]);
                                out.put_filled(*make, |v| f(t, split, v))
                            });
                            match filled {
                                Ok(()) => break 'line,
                                Err(reason) => Err(reason),
                            }
                        }
                    };
                    match parsed {
                        Ok(v) => out.put(v),
                        Err(reason) => bad.report(*line, &reason, raw)?,
                    }
                }
            }
            *offset += (next - pos) as u64;
            pos = next;
        }
        *start += pos;
        Ok(())
    }

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

/// Puts the fields of a line's text `t` between its `n` commas, whose
/// positions `commas` holds (the first ones; counted from `skip` bytes
/// before `t`), into `fields`; false when there are more than
/// [`MAX_CSV_FIELDS`].
#[inline(always)]
fn csv_fields<'t>(
    t: &'t str,
    skip: usize,
    commas: &[usize],
    n: usize,
    fields: &mut heapless::Vec<&'t str, MAX_CSV_FIELDS>,
) -> bool {
    let Some(commas) = commas.get(..n) else { return false };
    let mut from = 0;
    for &c in commas {
        let c = c - skip;
        if fields.push(&t[from..c]).is_err() {
            return false;
        }
        from = c + 1;
    }
    fields.push(&t[from..]).is_ok()
}

fn long_line_reason(len: u64) -> String {
    format!(
        "line of {len} bytes is longer than the limit of {MAX_LINE_BYTES}; its first {LONG_LINE_PREFIX} bytes follow"
    )
}

#[cfg(test)]
#[path = "file_tests.rs"]
mod tests;
